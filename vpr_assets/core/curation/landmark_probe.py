"""Does a picture show a place? A linear probe fitted on real postcards and photos, shipped with the package.

The ImageNet prior (`landmark_classifier.prior_landmark_score`: probability mass on church, castle,
bridge, cliff ... classes) is near zero on old colourised postcards of ruins, sculptures and
mountains (0.01-0.03 on the real sample's Mitla, Tizoc and Kumgang cards, like its distractors'),
so a non-landmark answer built on it alone throws those cards out. The probe reads the same
backbone features and was fitted on real labelled pictures: the landmark corpus's photos and
distractors and the geo test set's postcard fronts, none under a non-commercial licence of its own
(`scripts/fit_landmark_probe.py`, C chosen by cross-validation grouped by source). Card backs are not
in its training data; the card-back model answers for them.

The score non-landmark rejection reads is sqrt(prior x probe) x P(front): the geometric mean was
the best way to combine the two on the dev sets (the corpus with out-of-source probes, the demo's
dev set), bench/bench_rejection.py, and it is reported on the real sample, which nothing was
fitted or chosen on (docs/benchmarks.md).

One score for "does this picture show a place" before curators have labelled anything: the
`landmark_score` of `scan_quality` (informative there: only a classifier trained on curators' labels
rejects a scan), and non-landmark rejection in `vpr evaluate`, the `evaluations` asset and
`vpr search`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from vpr_assets.core.curation.card_back_model import CardBackModel, shipped_card_back_model
from vpr_assets.core.curation.landmark_classifier import prior_landmark_score
from vpr_assets.core.curation.linear_probe import LinearProbe, backbone_outputs, fit_linear_probe, load_linear_probe
from vpr_assets.core.versions import content_version

MODEL_FILE = Path(__file__).with_name("landmark_probe.npz")

SCORER = "sqrt(imagenet_prior*landmark_probe)*front"

PRIOR_FLOOR = 1e-4  # the prior is exactly 0 on some pictures; the probe still speaks for them


@lru_cache(maxsize=1)
def shipped_landmark_probe() -> LinearProbe:
    """The probe that ships with the package (read once per process)."""
    return load_linear_probe(MODEL_FILE)


def fit_landmark_probe(features: np.ndarray, is_place: np.ndarray, c: float, provenance: dict | None = None,
                       backbone: str = "tf_efficientnet_lite0", image_size: int = 224) -> LinearProbe:
    """Standardised balanced logistic regression: the features' scales differ by orders of magnitude,
    so one `c` suits all of them only after standardising."""
    return fit_linear_probe(features, is_place, c=c, standardise=True, backbone=backbone, image_size=image_size,
                            provenance=provenance)


def place_scores_from_features(features: np.ndarray, imagenet_probs: np.ndarray, probe: LinearProbe | None = None,
                               back_model: CardBackModel | None = None) -> np.ndarray:
    """sqrt(ImageNet prior x P(place | probe)) x P(front), from the backbone's outputs for n pictures."""
    probe = probe or shipped_landmark_probe()
    back_model = back_model or shipped_card_back_model()
    x = np.asarray(features, dtype=np.float64)
    if not len(x):
        return np.zeros(0, dtype=np.float64)
    return combine(prior_landmark_score(imagenet_probs), probe.probability(x), back_model.probability(x))


def combine(prior: np.ndarray, p_place: np.ndarray, p_back: np.ndarray) -> np.ndarray:
    """The score from its parts (`SCORER`): sqrt(ImageNet prior x P(place)) x P(front)."""
    return np.sqrt(np.clip(prior, PRIOR_FLOOR, 1.0) * p_place) * (1.0 - p_back)


def place_scores(images: Sequence) -> np.ndarray:
    """The landmark score of pictures (PIL images or paths): what non-landmark rejection reads and
    `scan_quality` records before curators' labels."""
    if not len(images):
        return np.zeros(0, dtype=np.float64)
    return place_scores_from_features(*backbone_outputs(images))


def scorer_version() -> float:
    """What an evaluation records with its rejection rule (`rejection_score_version`): a rule fitted
    on one version of this score is never applied to another (a hash of the formula and of both
    shipped models' versions, as a float: evaluation figures are floats)."""
    return float(int(content_version([SCORER, shipped_landmark_probe().version, shipped_card_back_model().version])[:8], 16))
