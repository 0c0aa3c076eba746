"""Is this card a landmark? The shipped landmark probe (`landmark_probe`: ImageNet prior, a probe
fitted on real photos and postcards, P(front)) until curators have labelled both kinds, then a
classifier trained on their labels: reused while the labels are unchanged, retrained (and
logged to MLflow experiment `vpr_curation`) when they change.

Two entry points, one per stage of the graph: `landmark_classifier` fits or reuses the classifier
for the collection's labels (the `landmark_classifier` asset), `saved_landmark_classifier` only
reads what that stage saved (`scan_quality` scores a batch with it and never trains)."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from vpr_assets.core.curation.landmark_classifier import BACKBONE_NAME, LandmarkClassifier, backbone
from vpr_assets.core.curation.landmark_probe import place_scores_from_features
from vpr_assets.core.images.decode import ImageRejected, decode_image
from vpr_assets.storage.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

CLASSIFIER_DIR = "models/landmark_classifier"

CLASSIFIER_FILE = "classifier.joblib"

CLASSIFIER_META = "meta.json"

MLFLOW_EXPERIMENT = "vpr_curation"

PRE_LABEL_SCORER = "landmark_probe"  # `landmark_scorer` of a scan scored before curators' labels allow a classifier



def embed(images: Sequence[Image.Image], runtime: str = "torch",
          onnx_cache: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    bb = backbone()
    return bb.embed(list(images), runtime=runtime, onnx_cache=onnx_cache)


def landmark_scores(embeddings: np.ndarray, imagenet_probs: np.ndarray,
                    classifier: LandmarkClassifier | None = None) -> tuple[np.ndarray, str]:
    """Scores of the backbone's outputs and the scorer used: the curators' trained classifier when
    there is one, else the shipped landmark probe (`PRE_LABEL_SCORER`)."""
    if classifier is not None and classifier.pipeline is not None:
        return classifier.score(embeddings), "classifier"
    return place_scores_from_features(embeddings, imagenet_probs), PRE_LABEL_SCORER


@dataclass
class ClassifierInfo:
    classifier: LandmarkClassifier | None
    fingerprint: str | None = None
    trained_now: bool = False
    cv_accuracy: float | None = None
    cv_folds: int = 0
    n_train: int = 0
    class_counts: dict = field(default_factory=dict)
    mlflow_run_id: str | None = None
    note: str = ""


def labels_fingerprint(labels: dict[str, str]) -> str:
    h = hashlib.sha256(BACKBONE_NAME.encode())
    for sid in sorted(labels):
        h.update(f"\0{sid}={labels[sid]}".encode())
    return h.hexdigest()[:16]


def saved_landmark_classifier(home: Path, labels: dict[str, str]) -> ClassifierInfo:
    """The classifier the `landmark_classifier` stage saved last, whatever labels it was fitted on
    (the note says when the labels have changed since); None (prior) when there is none."""
    folder = home / CLASSIFIER_DIR
    meta_path, model_path = folder / CLASSIFIER_META, folder / CLASSIFIER_FILE
    if not (meta_path.exists() and model_path.exists()):
        return ClassifierInfo(None, note="no landmark classifier materialised: landmark probe")
    try:
        meta = json.loads(meta_path.read_text())
        clf = LandmarkClassifier.load(model_path)
    except Exception as exc:  # a damaged file means the prior, never a failed batch
        log.warning("landmark classifier at %s not readable (%s): landmark probe", folder, exc)
        return ClassifierInfo(None, note=f"saved landmark classifier not readable ({exc}): landmark probe")
    fp = meta.get("fingerprint")
    current = bool(labels) and fp == labels_fingerprint(labels)
    note = "saved, fitted on the current labels" if current else (
        "saved, fitted on earlier labels: materialise landmark_classifier to refit")
    return ClassifierInfo(clf, fp, False, clf.cv_accuracy, clf.cv_folds, clf.n_train, clf.class_counts,
                          meta.get("mlflow_run_id"), note)


def clear_landmark_classifier(home: Path) -> bool:
    """Remove the saved classifier (labels no longer allow one); True when something was removed."""
    folder = home / CLASSIFIER_DIR
    removed = False
    for name in (CLASSIFIER_META, CLASSIFIER_FILE):
        if (folder / name).exists():
            (folder / name).unlink()
            removed = True
    return removed


def landmark_classifier(
    home: Path,
    labels: dict[str, str],
    scans: pd.DataFrame,
    known_features: dict[str, np.ndarray],
) -> ClassifierInfo:
    """The trained classifier for these labels: reused from disk when the labels are unchanged,
    else trained (features of labelled scans not in `known_features` are computed from their
    files), cross-validated, saved atomically and logged to MLflow. None (prior) without usable
    labels."""
    if not labels:
        return ClassifierInfo(None, note="no curator labels yet: landmark probe")
    targets = LandmarkClassifier.targets(list(labels.values()))
    if len(set(targets.tolist())) < 2:
        return ClassifierInfo(None, note="labels need landmark and non-landmark examples: landmark probe")
    fp = labels_fingerprint(labels)
    saved = saved_landmark_classifier(home, labels)  # a damaged file reads as none: retrained, never fatal
    if saved.classifier is not None and saved.fingerprint == fp:
        saved.note = "reused"
        return saved
    folder = home / CLASSIFIER_DIR
    meta_path, model_path = folder / CLASSIFIER_META, folder / CLASSIFIER_FILE
    ids = sorted(labels)
    missing = [s for s in ids if s not in known_features]
    if missing:
        paths = scans.set_index("scan_id")["path"].to_dict()
        preprocess = backbone().preprocess
        imgs, ok = [], []
        for s in missing:
            try:
                imgs.append(preprocess.resized(decode_image(home / paths[s]).image))
                ok.append(s)
            except (KeyError, ImageRejected, OSError) as exc:
                log.warning("labelled scan %s not readable: %s", s[:12], exc)
        if imgs:
            feats, _ = embed(imgs)
            known_features = {**known_features, **dict(zip(ok, feats))}
    ids = [s for s in ids if s in known_features]
    y = [labels[s] for s in ids]
    if len(set(LandmarkClassifier.targets(y).tolist())) < 2:
        return ClassifierInfo(None, fp, note="labelled scans readable for only one class: landmark probe")
    X = np.stack([known_features[s] for s in ids]).astype(np.float32)
    clf = LandmarkClassifier()
    clf.fit(X, y)
    clf.save(model_path)
    run_id = _log_mlflow(home, clf, fp)
    meta = {"fingerprint": fp, "backbone": BACKBONE_NAME, "cv_accuracy": clf.cv_accuracy, "cv_folds": clf.cv_folds,
            "n_train": clf.n_train, "class_counts": clf.class_counts, "mlflow_run_id": run_id}
    atomic_write_bytes(meta_path, json.dumps(meta, indent=2).encode())
    return ClassifierInfo(clf, fp, True, clf.cv_accuracy, clf.cv_folds, clf.n_train, clf.class_counts, run_id, "trained")


def _log_mlflow(home: Path, clf: LandmarkClassifier, fp: str) -> str | None:
    """One MLflow run per training: parameters, CV accuracy, the fitted model file."""
    try:
        from vpr_assets.core import tracking

        c = tracking.client(home)
        run = c.create_run(tracking.experiment_id(home, MLFLOW_EXPERIMENT), tags={"mlflow.runName": f"landmark-classifier-{fp}"})
        rid = run.info.run_id
        params = {"backbone": BACKBONE_NAME, "C": clf.C, "cv_folds": clf.cv_folds, "n_train": clf.n_train,
                  "labels_fingerprint": fp, **{f"n_{k}": v for k, v in clf.class_counts.items()}}
        for k, v in params.items():
            c.log_param(rid, k, v)
        metrics = tracking.mlflow_metrics({"cv_accuracy": clf.cv_accuracy if clf.cv_accuracy is not None else float("nan")})
        for k, v in metrics.items():
            c.log_metric(rid, k, v)
        c.log_artifact(rid, str(home / CLASSIFIER_DIR / CLASSIFIER_FILE), "landmark_classifier")
        c.set_terminated(rid)
        return rid
    except Exception as exc:  # tracking is a record, not a gate
        log.warning("MLflow logging of the landmark classifier failed: %s", exc)
        return None
