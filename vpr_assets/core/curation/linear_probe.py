"""A logistic regression on the curation backbone's pooled features, shipped as a small `.npz`.

Two learned decisions read the features `scan_quality` already computes for every scan (lite0,
224 px, pooled pre-logits) and cost one dot product each: is this the address side of a card
(`card_back_model`), and does this picture show a place (`landmark_probe`). One class holds both,
so saving, loading, versioning and the feature contract are written once.

The features are L2-normalised before the dot product; a standardisation fitted with the weights is
folded into them (`fit_linear_probe(standardise=True)`), so a probe is always `sigmoid(w . x + b)`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vpr_assets.core.curation.landmark_classifier import backbone
from vpr_assets.core.versions import content_version
from vpr_assets.storage.atomic import atomic_write_bytes


def l2_normalised(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class LinearProbe:
    """p = sigmoid(w . l2(x) + b); `threshold` turns it into a yes/no answer."""

    weights: np.ndarray  # (d,)
    bias: float
    threshold: float = 0.5
    backbone: str = "tf_efficientnet_lite0"  # the features it reads: GAP pre-logits of this model
    image_size: int = 224
    provenance: dict = field(default_factory=dict)  # what it was fitted on, and its figures

    @property
    def version(self) -> str:
        """Short content hash: changes whenever the weights or the threshold change."""
        return content_version([self.weights.astype(np.float32).tobytes().hex(), repr(self.bias), repr(self.threshold)])

    def probability(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.weights.shape[0]:
            raise ValueError(f"this probe expects (n, {self.weights.shape[0]}) features, got {x.shape}")
        return 1.0 / (1.0 + np.exp(-(l2_normalised(x) @ self.weights + self.bias)))

    def decide(self, features: np.ndarray) -> np.ndarray:
        return self.probability(features) >= self.threshold

    def save(self, path: str | Path) -> Path:
        import io

        buf = io.BytesIO()
        np.savez(buf, weights=self.weights.astype(np.float32), bias=np.float64(self.bias),
                 threshold=np.float64(self.threshold), backbone=np.str_(self.backbone),
                 image_size=np.int64(self.image_size), provenance=np.str_(json.dumps(self.provenance, sort_keys=True)))
        atomic_write_bytes(Path(path), buf.getvalue())
        return Path(path)


def load_linear_probe(path: str | Path, cls: type[LinearProbe] = LinearProbe) -> LinearProbe:
    with np.load(Path(path), allow_pickle=False) as z:
        return cls(
            weights=z["weights"].astype(np.float64), bias=float(z["bias"]), threshold=float(z["threshold"]),
            backbone=str(z["backbone"]), image_size=int(z["image_size"]), provenance=json.loads(str(z["provenance"])),
        )


def fit_linear_probe(features: np.ndarray, positive: np.ndarray, c: float = 1.0, threshold: float = 0.5,
                     standardise: bool = False, backbone: str = "tf_efficientnet_lite0", image_size: int = 224,
                     provenance: dict | None = None, cls: type[LinearProbe] = LinearProbe) -> LinearProbe:
    """Balanced logistic regression (both classes needed; equal weight whatever their counts).
    `standardise`: features scaled to unit variance after L2 (one `c` then suits every dimension),
    folded back into the weights."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"features {x.shape} and labels {y.shape} do not match")
    if y.all() or not y.any():
        raise ValueError("a probe needs examples of both classes to learn from")
    x = l2_normalised(x)
    mean, std = (x.mean(axis=0), np.maximum(x.std(axis=0), 1e-9)) if standardise else (0.0, 1.0)
    lr = LogisticRegression(class_weight="balanced", C=c, max_iter=5000).fit((x - mean) / std, y)
    w = lr.coef_[0] / std
    b = float(lr.intercept_[0] - np.sum(lr.coef_[0] * mean / std))
    return cls(weights=np.asarray(w, dtype=np.float64), bias=b, threshold=threshold, backbone=backbone,
                       image_size=image_size, provenance=dict(provenance or {}))


def backbone_outputs(images, chunk: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(pooled features, ImageNet probabilities) as `scan_quality` computes them: each image (PIL, or
    a path) resized to the curation backbone's input. Read and embedded `chunk` at a time, so a
    large set never sits in memory at full size."""
    from PIL import Image

    preprocess, feats, probs, batch = backbone().preprocess, [], [], []

    def flush() -> None:
        if batch:
            f, p = backbone().embed(batch)
            feats.append(f)
            probs.append(p)
            batch.clear()

    for im in images:
        im = im if isinstance(im, Image.Image) else Image.open(im)
        batch.append(preprocess.resized(im.convert("RGB")))  # small at once: a chunk never sits at full size
        if len(batch) >= chunk:
            flush()
    flush()
    if not feats:
        return np.zeros((0, backbone().model.num_features), np.float32), np.zeros((0, 1000), np.float32)
    return np.concatenate(feats), np.concatenate(probs)


def probe_features(images, chunk: int = 16) -> np.ndarray:
    """The features a probe reads (`backbone_outputs`' first half)."""
    return backbone_outputs(images, chunk)[0]
