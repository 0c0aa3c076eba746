"""Metrics against hand-computed values (definitions in vpr_assets/core/metrics.py)."""

import math

import pytest

from vpr_assets.core.metrics import (
    average_precision_at_k,
    evaluate_rankings,
    global_average_precision,
    mean_average_precision_at_k,
    precision_at_k,
    r_precision,
    recall_at_k,
    recall_at_k_capped,
)

RELS = [1, 0, 1, 0, 0]  # 3 relevant items exist in the gallery


def test_precision_at_k():
    assert precision_at_k(RELS, 1) == 1.0
    assert precision_at_k(RELS, 3) == pytest.approx(2 / 3)
    assert precision_at_k(RELS, 5) == pytest.approx(2 / 5)
    assert precision_at_k([1], 5) == pytest.approx(1 / 5)  # a short list counts as misses


def test_r_precision():
    assert r_precision(RELS, 3) == pytest.approx(2 / 3)
    assert r_precision(RELS, 1) == 1.0
    assert math.isnan(r_precision(RELS, 0))


def test_recall_plain_and_capped_differ_when_rel_exceeds_k():
    assert recall_at_k(RELS, 1, 3) == pytest.approx(1 / 3)  # REL_k / REL
    assert recall_at_k_capped(RELS, 1, 3) == 1.0  # REL_k / min(k, REL)
    assert recall_at_k(RELS, 5, 3) == pytest.approx(2 / 3)
    assert recall_at_k_capped(RELS, 5, 3) == pytest.approx(2 / 3)


def test_average_precision_at_k():
    # (1/min(K,REL)) * sum P@k rel(k): (1/3) * (1 + 2/3) = 5/9
    assert average_precision_at_k(RELS, 5, 3) == pytest.approx(5 / 9)
    assert average_precision_at_k(RELS, 3, 3) == pytest.approx(5 / 9)
    assert average_precision_at_k(RELS, 1, 3) == 1.0
    # [0,1,1], REL=2: (1/2) * (1/2 + 2/3) = 7/12
    assert average_precision_at_k([0, 1, 1], 3, 2) == pytest.approx(7 / 12)
    assert average_precision_at_k([1, 1, 1], 3, 3) == 1.0
    assert average_precision_at_k([0, 0, 0], 3, 3) == 0.0


def test_map_skips_queries_without_relevant_items():
    got = mean_average_precision_at_k([(RELS, 3), ([0, 1, 1], 2), ([0, 0], 0)], 3)
    assert got == pytest.approx((5 / 9 + 7 / 12) / 2)


LABELS = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "b2": "B", "n1": "none", "n2": "none"}


def test_evaluate_rankings_hand_example():
    rankings = {
        "a1": ["a1", "a2", "n1", "a3", "b1"],  # the query itself is dropped
        "b1": ["a1", "b2", "n1"],
        "n1": ["a1", "a2"],  # no-landmark queries are not retrieval queries
    }
    m = evaluate_rankings(rankings, LABELS, ks=(1, 3))
    assert m["n_queries"] == 2
    assert m["P@1"] == pytest.approx(0.5)
    assert m["Accuracy@1"] == pytest.approx(0.5)
    assert m["mAP@3"] == pytest.approx((5 / 6 + 1 / 2) / 2)  # a1: (1/2)(1+2/3); b1: (1/1)(1/2)
    assert m["R-precision"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["Recall@3"] == pytest.approx((2 / 2 + 1 / 1) / 2)
    assert m["RecallCapped@1"] == pytest.approx((1 + 0) / 2)
    assert m["Recall@1"] == pytest.approx((1 / 2 + 0) / 2)


def test_rejection_precision_recall():
    preds = {"a1": True, "b1": False, "n1": False, "n2": True}
    m = evaluate_rankings({}, LABELS, is_landmark_pred=preds)
    assert m["NonLandmarkPrecision"] == pytest.approx(0.5)  # b1 wrongly rejected
    assert m["NonLandmarkRecall"] == pytest.approx(0.5)  # n2 missed


def test_global_average_precision():
    truth = {"a1": "A", "b1": "B", "a2": "A", "n1": "none"}
    preds = {"a1": ("A", 0.9), "b1": ("A", 0.8), "a2": ("A", 0.3), "n1": ("none", 0.99)}
    assert global_average_precision(preds, truth) == pytest.approx((1 + 2 / 3) / 3)
