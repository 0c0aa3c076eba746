"""The learned card-back model: real backs found, real fronts and photos left alone, and its file
round-trips (the shipped weights are what the pipeline reads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vpr_assets.core.curation.card_back_model import (
    LEARNED_CUE,
    CardBackModel,
    apply_card_back_model,
    fit_card_back_model,
    load_card_back_model,
    shipped_card_back_model,
)
from vpr_assets.core.curation.linear_probe import probe_features

GEO_FRONTS = Path(__file__).resolve().parents[2] / "data" / "geo_testset" / "images"


def test_shipped_model_finds_every_real_back_and_nothing_else(realsample_dir, realsample_manifest):
    """Real sample: 3 card backs among landmark photos, postcards and distractors it never saw.

    Pages of plain text (a scanned page, a handwritten letter) are not judged: they show no place
    either way, and the model, fitted on cards only, puts them near its threshold (0.49, 0.68)."""
    model = shipped_card_back_model()
    m = realsample_manifest[realsample_manifest.kind != "text"]
    files = list(m.file)
    p = model.probability(probe_features(realsample_dir / f for f in files))
    truth = (m.kind == "postcard_back").to_numpy()
    assert truth.sum() >= 3 and len(files) >= 40
    wrong = [(f, round(float(q), 3)) for f, q, t in zip(files, p, truth) if (q >= model.threshold) != t]
    assert not wrong, wrong


def test_shipped_model_calls_no_real_front_a_back():
    """The committed fronts of the geo test set (postcards of four countries, other collections
    than the model was fitted on) stay fronts."""
    files = sorted(GEO_FRONTS.glob("*/*.jpg"))
    assert len(files) >= 100
    model = shipped_card_back_model()
    p = model.probability(probe_features(files))
    assert int((p >= model.threshold).sum()) <= 1, [f.name for f, q in zip(files, p) if q >= model.threshold]


def test_fit_save_load_round_trip_and_version(tmp_path):
    rng = np.random.default_rng(0)
    direction = rng.normal(size=32)
    x = rng.normal(size=(80, 32)) + np.outer(np.r_[np.ones(40), -np.ones(40)], direction)
    y = np.r_[np.ones(40, bool), np.zeros(40, bool)]
    model = fit_card_back_model(x, y, provenance={"fitted_on": "test"})
    assert model.is_back(x).mean() > 0.0 and (model.is_back(x) == y).mean() >= 0.95
    loaded = load_card_back_model(model.save(tmp_path / "m.npz"))
    assert np.allclose(loaded.probability(x), model.probability(x), atol=1e-6)
    assert loaded.provenance == {"fitted_on": "test"} and loaded.version == model.version
    other = CardBackModel(weights=model.weights * 0.5, bias=model.bias)
    assert other.version != model.version
    with pytest.raises(ValueError, match="both backs and fronts"):
        fit_card_back_model(x, np.ones(80, bool))
    with pytest.raises(ValueError, match="expects"):
        model.probability(x[:, :10])


def test_learned_decision_overrides_the_heuristic_both_ways():
    model = CardBackModel(weights=np.ones(4), bias=0.0, threshold=0.5)
    heuristic_back = {"reasons": ["blurry", "postcard_back"], "is_postcard_back": True, "back_score": 0.8,
                      "back_cues": ["plain_paper", "dividing_line"]}
    r = apply_card_back_model(heuristic_back, 0.1, model)
    assert not r["is_postcard_back"] and r["reasons"] == ["blurry"] and r["back_score"] == 0.1
    assert r["back_cues"] == ["plain_paper", "dividing_line"]  # the measured cues stay, to explain
    missed = {"reasons": [], "is_postcard_back": False, "back_score": 0.2, "back_cues": []}
    r = apply_card_back_model(missed, 0.9, model)
    assert r["is_postcard_back"] and r["reasons"] == ["postcard_back"] and r["back_cues"] == [LEARNED_CUE]
    again = apply_card_back_model(r, 0.9, model)  # idempotent: no doubled reason or cue
    assert again["reasons"] == ["postcard_back"] and again["back_cues"] == [LEARNED_CUE]
    assert heuristic_back["is_postcard_back"]  # the input row is not modified
