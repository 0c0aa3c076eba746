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

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np

from vpr_assets.storage.atomic import atomic_write_bytes

MODEL_FILE = Path(__file__).with_name("card_back_model.npz")

LEARNED_CUE = "learned_back_model"


@dataclass(frozen=True)
class CardBackModel:
    """Logistic regression on L2-normalised backbone features: p(back) = sigmoid(w . x + b)."""

    weights: np.ndarray  # (d,)
    bias: float
    threshold: float = 0.5
    backbone: str = "tf_efficientnet_lite0"  # the features it reads: GAP pre-logits of this model
    image_size: int = 224
    provenance: dict = field(default_factory=dict)  # what it was fitted on, and its dev/test figures

    @property
    def version(self) -> str:
        """Short content hash: changes whenever the weights or the threshold change."""
        from vpr_assets.core.versions import content_version

        return content_version([self.weights.astype(np.float32).tobytes().hex(), repr(self.bias), repr(self.threshold)])

    def probability(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.weights.shape[0]:
            raise ValueError(f"card-back model expects (n, {self.weights.shape[0]}) features, got {x.shape}")
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return 1.0 / (1.0 + np.exp(-(x @ self.weights + self.bias)))

    def is_back(self, features: np.ndarray) -> np.ndarray:
        return self.probability(features) >= self.threshold

    def save(self, path: str | Path) -> Path:
        import io

        buf = io.BytesIO()
        np.savez(buf, weights=self.weights.astype(np.float32), bias=np.float64(self.bias),
                 threshold=np.float64(self.threshold), backbone=np.str_(self.backbone),
                 image_size=np.int64(self.image_size), provenance=np.str_(json.dumps(self.provenance, sort_keys=True)))
        atomic_write_bytes(Path(path), buf.getvalue())
        return Path(path)


def load_card_back_model(path: str | Path = MODEL_FILE) -> CardBackModel:
    with np.load(Path(path), allow_pickle=False) as z:
        return CardBackModel(
            weights=z["weights"].astype(np.float64), bias=float(z["bias"]), threshold=float(z["threshold"]),
            backbone=str(z["backbone"]), image_size=int(z["image_size"]), provenance=json.loads(str(z["provenance"])),
        )


@lru_cache(maxsize=1)
def shipped_card_back_model() -> CardBackModel:
    """The model that ships with the package (read once per process)."""
    return load_card_back_model(MODEL_FILE)


def card_features(images: Iterable, chunk: int = 16) -> np.ndarray:
    """The features the model reads, as `scan_quality` computes them: each image (PIL, or a path)
    resized to the curation backbone's input, pooled pre-logits. Read and embedded `chunk` at a
    time, so a large set never sits in memory at full size."""
    from PIL import Image

    from vpr_assets.core.curation.landmark_scoring import backbone, embed

    preprocess, out, batch = backbone().preprocess, [], []

    def flush() -> None:
        if batch:
            out.append(embed(batch)[0])
            batch.clear()

    for im in images:
        im = im if isinstance(im, Image.Image) else Image.open(im)
        batch.append(preprocess.resized(im.convert("RGB")))  # small at once: a chunk never sits at full size
        if len(batch) >= chunk:
            flush()
    flush()
    return np.concatenate(out) if out else np.zeros((0, backbone().model.num_features), np.float32)


def fit_card_back_model(features: np.ndarray, is_back: np.ndarray, c: float = 1.0, threshold: float = 0.5,
                        backbone: str = "tf_efficientnet_lite0", image_size: int = 224,
                        provenance: dict | None = None) -> CardBackModel:
    """Fit on labelled pages (both classes needed); classes weighted equally whatever their counts."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(is_back, dtype=bool)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"features {x.shape} and labels {y.shape} do not match")
    if y.all() or not y.any():
        raise ValueError("a card-back model needs both backs and fronts to learn from")
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    lr = LogisticRegression(class_weight="balanced", C=c, max_iter=5000).fit(x, y)
    return CardBackModel(weights=lr.coef_[0].astype(np.float64), bias=float(lr.intercept_[0]), threshold=threshold,
                         backbone=backbone, image_size=image_size, provenance=dict(provenance or {}))


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
