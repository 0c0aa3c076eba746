"""`landmark_score` (0-1): does a scan show a place worth geolocating (a building, a monument, a
view), rather than a portrait, an interior, a still life or a text?

The parts (`landmark_scoring.landmark_scores` chooses between the two scorers):
- The ImageNet prior. The offline EfficientNet-Lite0 weights include the 1000-class head; the prior
  is the probability mass the head puts on the ImageNet classes that are landmarks or landscapes
  (`LANDMARK_IMAGENET_CLASSES`: church, mosque, palace, castle, bridges, lighthouse, cliff, alp,
  seashore ...). It needs no labels and is explainable class by class, but is weak on crowds in
  front of a monument and on old stylised cards; before curators have labelled anything the score
  is `landmark_probe`'s, which combines it with a probe fitted on real photos and postcards.
- Once `labels.csv` exists: a scikit-learn pipeline (StandardScaler + balanced LogisticRegression)
  on the image embeddings, P(landmark) as the score, accuracy from stratified cross-validation.

Embeddings are plain numpy arrays, whatever produced them (the project's embedder in
vpr_assets/core/vision/, or `ImageNetBackbone.embed` here: global-average-pooled Lite0 features).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from pydantic import field_validator, model_validator

from vpr_assets.core.csv_rows import CsvRow, read_rows

LABELS = ("landmark", "non_landmark", "low_interest")
POSITIVE_LABEL = "landmark"

# ImageNet-1k indices (timm / torchvision order) of classes that show a landmark or a landscape.
LANDMARK_IMAGENET_CLASSES: dict[int, str] = {
    437: "beacon/lighthouse",
    442: "bell cote",
    449: "boathouse",
    458: "memorial tablet",
    460: "breakwater",
    483: "castle",
    497: "church",
    500: "cliff dwelling",
    525: "dam",
    538: "dome",
    562: "fountain",
    576: "gondola",
    624: "library",
    649: "megalith",
    663: "monastery",
    668: "mosque",
    682: "obelisk",
    698: "palace",
    706: "patio/terrace",
    718: "pier",
    727: "planetarium",
    743: "prison",
    821: "steel arch bridge",
    825: "stone wall",
    832: "stupa",
    839: "suspension bridge",
    863: "totem pole",
    873: "triumphal arch",
    888: "viaduct",
    900: "water tower",
    970: "alp",
    972: "cliff",
    973: "coral reef",
    974: "geyser",
    975: "lakeside",
    976: "promontory",
    977: "sandbar",
    978: "seashore",
    979: "valley",
    980: "volcano",
}


# --------------------------------------------------------------------------------------------
# Backbone (embeddings + ImageNet probabilities), offline weights
# --------------------------------------------------------------------------------------------


class ImageNetBackbone:
    """timm `tf_efficientnet_lite0` with its ImageNet head, weights from the offline package.

    `embed(images)` -> (GAP features (n, 1280), softmax probabilities (n, 1000)).
    """

    def __init__(self, name: str = "tf_efficientnet_lite0", image_size: int = 224, device: str | None = None):
        import timm
        import torch

        from vpr_assets.core.vision.preprocess import Preprocess
        from vpr_assets.core.vision.weights import imagenet_weight_path, load_state_dict_file, map_by_position

        self.torch = torch
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model = timm.create_model(name, pretrained=False)  # with the 1000-class head
        model.load_state_dict(map_by_position(load_state_dict_file(imagenet_weight_path(name)), model, include_classifier=True))
        self.model = model.eval().to(self.device)
        self.image_size = image_size
        self.name = name
        # the whole scan squashed in one bilinear step: what the card-back weights were fitted on
        self.preprocess = replace(Preprocess.of(model, image_size, resize="squash"), reducing_gap=None)

    def _onnx(self, onnx_cache: Path | None):
        from vpr_assets.core.vision.onnx_embedder import OnnxModule, exported

        torch = self.torch

        class PooledAndLogits(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                fmap = self.m.forward_features(x)
                return self.m.forward_head(fmap, pre_logits=True), self.m.forward_head(fmap)

        path, session = exported(PooledAndLogits(self.model), f"imagenet|{self.name}|pooled,logits", self.image_size,
                                 ("pooled", "logits"), "backbone", onnx_cache)
        return OnnxModule(session, path)

    def _batch(self, images: Sequence):
        arr = np.stack([self.preprocess.pixels(im.convert("RGB")) for im in images])
        return self.preprocess.normalise(self.torch.from_numpy(arr), channels_last_input=True).to(self.device)

    def embed(self, images: Sequence, batch_size: int = 16, runtime: str = "torch",
              onnx_cache: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`runtime="onnx"`: on a CPU, through ONNX Runtime (`core/vision/onnx_embedder.py`, exported once
        into `onnx_cache`): the same features to 1e-6, about 3x cheaper."""
        from vpr_assets.core.onnx_sessions import RUNTIMES

        if runtime not in RUNTIMES:
            raise ValueError(f"unknown backbone runtime {runtime!r}; one of {RUNTIMES}")
        onnx = self._onnx(onnx_cache) if runtime == "onnx" and self.device.type == "cpu" else None
        feats, probs = [], []
        with self.torch.inference_mode():
            for k in range(0, len(images), batch_size):
                x = self._batch(images[k : k + batch_size])
                if onnx is not None:
                    pooled, logits = (self.torch.from_numpy(a) for a in onnx.run(x.numpy()))
                else:
                    fmap = self.model.forward_features(x)
                    pooled = self.model.forward_head(fmap, pre_logits=True)
                    logits = self.model.forward_head(fmap)
                feats.append(pooled.float().cpu().numpy())
                probs.append(self.torch.softmax(logits.float(), dim=1).cpu().numpy())
        if not feats:
            return np.zeros((0, self.model.num_features), np.float32), np.zeros((0, 1000), np.float32)
        return np.concatenate(feats), np.concatenate(probs)


def prior_landmark_score(imagenet_probs: np.ndarray) -> np.ndarray:
    """Default score before any label: ImageNet probability mass on landmark/landscape classes."""
    probs = np.asarray(imagenet_probs, dtype=np.float64)
    idx = np.fromiter(LANDMARK_IMAGENET_CLASSES, dtype=np.int64)
    return np.clip(probs[:, idx].sum(axis=1), 0.0, 1.0)


BACKBONE_NAME = "tf_efficientnet_lite0"


@lru_cache(maxsize=1)
def backbone() -> ImageNetBackbone:
    """The curation backbone, loaded once per process (CUDA when torch sees it): scan_quality's
    features and landmark score, the features and prior of the probes (card backs, the landmark score
    of non-landmark rejection)."""
    return ImageNetBackbone(BACKBONE_NAME)


# --------------------------------------------------------------------------------------------
# Curator labels
# --------------------------------------------------------------------------------------------


class LabelRow(CsvRow):
    """One row of a curator `labels.csv`: `scan_id` or `file`, and a label ("Non-Landmark" and
    "low interest" are read as non_landmark / low_interest)."""

    scan_id: str = ""
    file: str = ""
    label: str

    @field_validator("label", mode="before")
    @classmethod
    def _known_label(cls, value: str) -> str:
        label = str(value).lower().replace("-", "_").replace(" ", "_")
        if label not in LABELS:
            raise ValueError(f"unknown label {value!r} (expected one of {LABELS})")
        return label

    @model_validator(mode="after")
    def _has_key(self) -> "LabelRow":
        if not (self.scan_id or self.file):
            raise ValueError("no scan_id or file")
        return self

    @property
    def key_kind(self) -> str:
        return "scan_id" if self.scan_id else "file"

    @property
    def key(self) -> str:
        return self.scan_id or self.file


def parse_labels_csv(path: str | Path) -> tuple[list[dict], list[str]]:
    """Rows of a curator `labels.csv` (`scan_id` or `file`, `label`) and a list of problems.

    Bad rows (unknown label, no key, duplicate key with a different label) become problems, never
    a crash, so one typo does not block a batch. Returns ([{"key", "key_kind", "label"}], problems).
    """
    read = read_rows(path, LabelRow, required=[("label", "scan_id"), ("label", "file")])
    rows: list[dict] = []
    problems = list(read.problems)
    seen: dict[str, str] = {}
    for line_no, row in read:
        if row.key in seen:
            if seen[row.key] != row.label:
                problems.append(f"line {line_no}: {row.key} labelled {seen[row.key]!r} and {row.label!r}; kept the first")
            continue
        seen[row.key] = row.label
        rows.append({"key": row.key, "key_kind": row.key_kind, "label": row.label})
    return rows, problems


# --------------------------------------------------------------------------------------------
# Trained classifier
# --------------------------------------------------------------------------------------------


@dataclass
class LandmarkClassifier:
    """StandardScaler + LogisticRegression(class_weight='balanced') on embeddings."""

    C: float = 1.0
    pipeline: object | None = None
    cv_accuracy: float | None = None
    cv_folds: int = 0
    n_train: int = 0
    class_counts: dict[str, int] = field(default_factory=dict)

    def _new_pipeline(self):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(C=self.C, class_weight="balanced", max_iter=5000))

    @staticmethod
    def targets(labels: Sequence[str]) -> np.ndarray:
        """landmark -> 1; non_landmark and low_interest -> 0 (neither is worth geolocating)."""
        return np.array([1 if lab == POSITIVE_LABEL else 0 for lab in labels], dtype=np.int64)

    def cross_validate(self, X: np.ndarray, labels: Sequence[str], folds: int = 5, seed: int = 0) -> tuple[float, np.ndarray]:
        """Stratified k-fold accuracy and the out-of-fold P(landmark) of every sample."""
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        y = self.targets(labels)
        k = int(min(folds, np.bincount(y, minlength=2).min()))
        if k < 2:
            raise ValueError("cross-validation needs at least 2 examples of each class")
        cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        proba = cross_val_predict(self._new_pipeline(), np.asarray(X, np.float32), y, cv=cv, method="predict_proba")[:, 1]
        self.cv_folds = k
        return float(((proba >= 0.5).astype(int) == y).mean()), proba

    def fit(self, X: np.ndarray, labels: Sequence[str], folds: int = 5) -> float | None:
        """Fit on all labels; returns (and stores) the cross-validated accuracy (None if too few)."""
        X = np.asarray(X, np.float32)
        y = self.targets(labels)
        if len(set(y.tolist())) < 2:
            raise ValueError("labels need both landmark and non-landmark examples")
        try:
            self.cv_accuracy, _ = self.cross_validate(X, labels, folds)
        except ValueError:
            self.cv_accuracy = None
        self.pipeline = self._new_pipeline().fit(X, y)
        self.n_train = len(y)
        self.class_counts = {lab: int(sum(1 for x in labels if x == lab)) for lab in LABELS}
        return self.cv_accuracy

    def score(self, X: np.ndarray) -> np.ndarray:
        if self.pipeline is None:
            raise RuntimeError("classifier not trained")
        return self.pipeline.predict_proba(np.asarray(X, np.float32))[:, 1]

    def save(self, path: str | Path) -> Path:
        """Atomic joblib dump (a crash never leaves a half-written model)."""
        import joblib

        from vpr_assets.storage.atomic import atomic_write

        return atomic_write(path, lambda p: joblib.dump(self, p))

    @staticmethod
    def load(path: str | Path) -> "LandmarkClassifier":
        import joblib

        obj = joblib.load(path)
        if not isinstance(obj, LandmarkClassifier):
            raise TypeError(f"{path} holds a {type(obj).__name__}, not a LandmarkClassifier")
        return obj
