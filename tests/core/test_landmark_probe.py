"""The landmark probe: a linear probe on the curation backbone, combined with the ImageNet prior and
the card-back model into the score non-landmark rejection reads; rules fitted on another score are
not applied."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vpr_assets.core.curation.landmark_probe import (
    place_scores,
    place_scores_from_features,
    scorer_version,
    shipped_landmark_probe,
)
from vpr_assets.core.curation.linear_probe import backbone_outputs, fit_linear_probe, load_linear_probe


def test_a_standardised_probe_is_the_sklearn_pipeline_folded_into_one_dot_product(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer, StandardScaler

    rng = np.random.default_rng(0)
    scale = np.r_[np.full(8, 100.0), np.full(8, 0.01)]  # scales that differ by orders of magnitude
    x = rng.normal(size=(120, 16)) * scale + np.outer(np.r_[np.ones(40), np.zeros(80)], scale)
    y = np.r_[np.ones(40, bool), np.zeros(80, bool)]
    probe = fit_linear_probe(x, y, c=0.1, standardise=True)
    ref = make_pipeline(Normalizer(), StandardScaler(), LogisticRegression(C=0.1, class_weight="balanced", max_iter=5000))
    assert np.allclose(probe.probability(x), ref.fit(x, y).predict_proba(x)[:, 1], atol=1e-6)
    again = load_linear_probe(probe.save(tmp_path / "p.npz"))
    assert np.allclose(again.probability(x), probe.probability(x), atol=1e-5) and again.version == probe.version
    with pytest.raises(ValueError, match="both classes"):
        fit_linear_probe(x, np.zeros(120, bool))


def test_the_shipped_probe_says_where_it_came_from():
    probe = shipped_landmark_probe()
    prov = probe.provenance
    assert prov["script"] == "scripts/fit_landmark_probe.py" and prov["n_places"] > 100 and prov["n_other"] > 50
    grid = prov["c_grid_out_of_group"]  # C is the grid's lowest out-of-group log-loss
    assert str(prov["c"]) == min(grid, key=lambda c: grid[c]["log_loss"])
    assert probe.weights.shape == (1280,) and probe.backbone == "tf_efficientnet_lite0"
    # fitted on today's committed sets, under the licence rule it records (a stale probe fails here)
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from fit_landmark_probe import DEFAULT_EXCLUDED_LICENCES, training_pictures

    pics = training_pictures(prov["excluded_licences"] or None)
    assert prov["excluded_licences"] == DEFAULT_EXCLUDED_LICENCES
    assert (sum(p["is_place"] for p in pics), sum(not p["is_place"] for p in pics)) == (prov["n_places"], prov["n_other"])
    assert not any(p["licence"].startswith("CC-BY-NC") for p in pics)


def test_the_score_is_zero_for_nothing_and_bounded(realsample_dir):
    assert place_scores([]).shape == (0,)
    s = place_scores([realsample_dir / "london_bridge__1.jpg", realsample_dir / "none__pc_mp23_verso.jpg"])
    assert ((s >= 0) & (s <= 1)).all() and s[0] > s[1]


def test_on_real_postcards_the_score_separates_places_better_than_the_imagenet_prior(realsample_dir):
    """Old colourised cards of ruins, a sculpture and mountains get almost no ImageNet "landmark"
    mass; the probe, fitted on other real postcards and photos (never on these), lifts them above
    the cards of people and the address sides."""
    from sklearn.metrics import roc_auc_score

    from vpr_assets.core.curation.landmark_classifier import prior_landmark_score

    manifest = pd.read_csv(realsample_dir / "MANIFEST.tsv", sep="\t")
    cards = manifest[manifest.file.str.contains("__pc")]
    is_place = (cards.label != "none").to_numpy()
    assert is_place.sum() >= 6 and (~is_place).sum() >= 4
    feats, probs = backbone_outputs([realsample_dir / f for f in cards.file])
    shipped = roc_auc_score(is_place, place_scores_from_features(feats, probs))
    prior = roc_auc_score(is_place, prior_landmark_score(probs))
    assert shipped > prior, (shipped, prior)


def _record(cat, eid: str, metrics: dict) -> None:
    from vpr_assets.storage.schemas import EVALUATIONS_SCHEMA

    now = datetime.now(timezone.utc)
    cat.append_rows("evaluations", [{"evaluation_id": eid, "evaluated_at": now, "model_version": "pretrained:x",
                                     "manifest": "m.tsv", "metric": k, "value": float(v), "source": "test"}
                                    for k, v in metrics.items()], EVALUATIONS_SCHEMA)


def test_search_never_applies_a_rule_fitted_on_another_landmark_score(tmp_path):
    from vpr_assets.core.search.state import evaluation_rule
    from vpr_assets.storage import Catalog

    cat = Catalog(tmp_path)
    base = {"rejection_out_of_sample": 1.0, "NonLandmarkPrecision": 0.9, "NonLandmarkRecall": 0.9,
            "NonLandmarkPrecision_similarity": 0.6, "NonLandmarkRecall_similarity": 0.6,
            "rejection_w_similarity": 5.0, "rejection_bias": -3.0}
    _record(cat, "current", {**base, "rejection_w_score": 1.5, "rejection_score_version": scorer_version()})
    _record(cat, "other", {**base, "rejection_w_score": 1.5, "rejection_score_version": scorer_version() + 1})
    _record(cat, "legacy", {**base, "rejection_w_score": 1.5})  # recorded before scores were versioned
    _record(cat, "similarity", base)  # a rule on similarity alone reads no score
    rule = evaluation_rule(cat, "current")
    assert rule is not None and rule.uses_score and rule.score_version == scorer_version()
    assert evaluation_rule(cat, "other") is None and evaluation_rule(cat, "legacy") is None
    plain = evaluation_rule(cat, "similarity")
    assert plain is not None and not plain.uses_score
