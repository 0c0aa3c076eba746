"""Non-landmark rejection: similarity combined with the landmark score, figures from rules that did
not see the query."""

from __future__ import annotations

import numpy as np
import pytest

from vpr_assets.core.evaluation import evaluate_vectors
from vpr_assets.core.metrics import non_landmark_figures
from vpr_assets.core.rejection import NonLandmarkRule, cross_fitted_predictions


def _queries(seed: int = 0):
    """10 landmarks x 3 photos and 30 distractors. Top-1 similarity cannot tell them apart (the
    distractors are near-duplicate frames of a few rooms); the landmark score mostly can."""
    rng = np.random.default_rng(seed)
    labels = [f"lm{i}" for i in range(10) for _ in range(3)] + ["none"] * 30
    is_lm = np.array([lab != "none" for lab in labels])
    top1 = np.where(is_lm, rng.uniform(0.6, 0.85, len(labels)), rng.uniform(0.6, 0.88, len(labels)))
    score = np.where(is_lm, rng.uniform(0.1, 0.95, len(labels)), rng.uniform(0.001, 0.05, len(labels)))
    return labels, is_lm, top1, score


def test_landmark_score_rescues_rejection_where_similarity_fails():
    labels, is_lm, top1, score = _queries()
    sim_p, sim_r = non_landmark_figures(cross_fitted_predictions(top1, labels), is_lm)
    both_p, both_r = non_landmark_figures(cross_fitted_predictions(top1, labels, score), is_lm)
    assert both_p >= 0.9 and both_r >= 0.9
    assert min(sim_p, sim_r) < 0.8  # similarity alone is near chance here


def test_rule_round_trips_and_needs_both_kinds():
    labels, is_lm, top1, score = _queries(1)
    rule = NonLandmarkRule.fit(top1, is_lm, score)
    again = NonLandmarkRule.from_json(rule.to_json())
    assert np.array_equal(rule.is_landmark(top1, score), again.is_landmark(top1, score))
    assert rule.is_landmark([0.7], [0.9])[0] and not rule.is_landmark([0.7], [0.002])[0]
    with pytest.raises(ValueError):
        rule.probability(top1)  # a rule with a score needs scores
    with pytest.raises(ValueError):
        NonLandmarkRule.fit(top1[is_lm], is_lm[is_lm], score[is_lm])


def test_cross_fitting_never_lets_a_landmark_choose_its_own_answer():
    """One landmark whose photos look like distractors (low score): in-sample, a rule could bend to
    it; cross-fitted, its photos are judged by rules fitted on the other landmarks only, which
    answer them non-landmark."""
    labels, is_lm, top1, score = _queries(2)
    odd = np.array([lab == "lm0" for lab in labels])
    score = np.where(odd, 0.02, score)
    pred = cross_fitted_predictions(top1, labels, score)
    assert not pred[odd].any()


def test_evaluate_vectors_reports_out_of_sample_rejection():
    labels, is_lm, top1, score = _queries(3)
    rng = np.random.default_rng(0)
    v = rng.standard_normal((len(labels), 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    files = [f"f{i}" for i in range(len(labels))]
    m = evaluate_vectors(files, labels, v, landmark_scores=score).metrics
    assert m["rejection_out_of_sample"] == 1.0 and m["rejection_uses_landmark_score"] == 1.0
    assert m["NonLandmarkPrecision"] >= 0.9 and m["NonLandmarkRecall"] >= 0.9
    assert 0.0 <= m["NonLandmarkPrecision_similarity"] <= 1.0
    fixed = evaluate_vectors(files, labels, v, threshold=0.5, landmark_scores=score).metrics
    assert fixed["rejection_out_of_sample"] == 0.0 and "rejection_uses_landmark_score" not in fixed
