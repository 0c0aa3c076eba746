"""Is this the address side of a card? A learned rule on the ImageNet backbone's features.

The hand-set OpenCV rule in `postcard_traps` finds half of the real backs of a collection it was
not tuned on (47.7% on the Campero test split, docs/benchmarks.md): real backs are yellowed,
stamped, handwritten over, printed in every layout. The ImageNet backbone that already runs on every
scan for the landmark score sees "envelope / letter" in them, and a logistic regression on its
pooled features, fitted on the backs and fronts of one collection, carries over to the others
(test split 149/149 backs, 0/152 fronts). The weights ship with the package (`card_back_model.npz`,
about 10 KB) and are rebuilt by `scripts/fit_card_back_model.py` from `data/backs_testset`.

The heuristic stays: its measured features and cues explain a decision to a curator, and it is the
answer for a scan the backbone did not see.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from vpr_assets.core.curation.linear_probe import LinearProbe, fit_linear_probe, load_linear_probe

MODEL_FILE = Path(__file__).with_name("card_back_model.npz")

LEARNED_CUE = "learned_back_model"


class CardBackModel(LinearProbe):
    """p(back) = sigmoid(w . l2(x) + b) on the curation backbone's features (`linear_probe`)."""

    def is_back(self, features: np.ndarray) -> np.ndarray:
        return self.decide(features)


def load_card_back_model(path: str | Path = MODEL_FILE) -> CardBackModel:
    return load_linear_probe(path, cls=CardBackModel)


@lru_cache(maxsize=1)
def shipped_card_back_model() -> CardBackModel:
    """The model that ships with the package (read once per process)."""
    return load_card_back_model(MODEL_FILE)


def fit_card_back_model(features: np.ndarray, is_back: np.ndarray, c: float = 1.0, threshold: float = 0.5,
                        backbone: str = "tf_efficientnet_lite0", image_size: int = 224,
                        provenance: dict | None = None) -> CardBackModel:
    """Fit on labelled pages (both classes needed); classes weighted equally whatever their counts."""
    y = np.asarray(is_back, dtype=bool)
    if y.all() or not y.any():
        raise ValueError("a card-back model needs both backs and fronts to learn from")
    return fit_linear_probe(features, is_back, c=c, threshold=threshold, backbone=backbone, image_size=image_size,
                            provenance=provenance, cls=CardBackModel)


def apply_card_back_model(row: dict, probability: float, model: CardBackModel) -> dict:
    """A scan row measured by the heuristic, decided by the learned model: `is_postcard_back`,
    `back_score` (the model's probability), `back_cues` (the model's cue first, then the heuristic's
    cues for the curator) and the `postcard_back` reason follow the model."""
    r = dict(row)
    back = bool(probability >= model.threshold)
    cues = [c for c in r.get("back_cues", []) if c != LEARNED_CUE]
    r["back_cues"] = ([LEARNED_CUE] if back else []) + cues
    r["back_score"] = float(probability)
    r["is_postcard_back"] = back
    reasons = [x for x in r.get("reasons", []) if x != "postcard_back"]
    if back:
        reasons.append("postcard_back")
    r["reasons"] = reasons
    return r
