"""Curate one batch, end to end, without Dagster: the `scan_quality` asset and any script call this.

Steps: decode and measure every scan (card backs, multi-card scans split into crops); score "is
this a landmark" and "is this a card back" in one backbone pass (the landmark classifier that
`fit_landmark_classifier` saved from the curators' labels, else the ImageNet prior; a batch never
trains it); apply curators' labels and decisions; group near duplicates against every other batch
and write both tables, the read-decide-write step under the catalog's writer lock, so two batches
curated at once still keep one representative per group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from vpr_assets.core.curation.assessment import assess_scans, derived_table
from vpr_assets.core.curation.card_back_model import apply_card_back_model, shipped_card_back_model
from vpr_assets.core.curation.curator_files import (
    DECISIONS_FILE,
    LABELS_FILE,
    LABELS_LOG,
    Decisions,
    read_curator_labels,
    read_decisions,
)
from vpr_assets.core.curation.duplicate_groups import (
    DuplicateResult,
    eligible_for_duplicates,
    embeddings_for,
    other_batch_scans,
    resolve_duplicates,
)
from vpr_assets.core.curation.duplicates import NearDupConfig
from vpr_assets.core.curation.landmark_scoring import (
    BACKBONE_NAME,
    PRE_LABEL_SCORER,
    ClassifierInfo,
    backbone,
    clear_landmark_classifier,
    embed,
    landmark_classifier,
    landmark_scores,
    saved_landmark_classifier,
)
from vpr_assets.core.curation.quality import QualityThresholds
from vpr_assets.core.curation.tables import apply_duplicates, finalise_rows, quality_table
from vpr_assets.storage import Catalog

Log = Callable[[str], None]


@dataclass(frozen=True)
class CurationSettings:
    thresholds: QualityThresholds = field(default_factory=QualityThresholds)
    near_duplicates: NearDupConfig = field(default_factory=NearDupConfig)
    no_landmark_below: float = 0.5  # trained classifier only: a lower score adds reason no_landmark
    workers: int = 1  # threads measuring scans (OpenCV and PIL release the GIL)
    learned_backs: bool = True  # card backs decided by the shipped learned model (False: the OpenCV heuristic alone)
    backbone_runtime: str = "onnx"  # on a CPU: the backbone pass through ONNX Runtime (same features, ~3x cheaper) or "torch"


@dataclass
class CurationResult:
    """What curating a batch decided and wrote; the asset turns it into metadata."""

    batch: str
    rows: list[dict]  # the scan_quality rows written
    derived: pd.DataFrame  # the derived_scans rows written (crops)
    scorer: str  # landmark_probe (PRE_LABEL_SCORER) | classifier
    back_model: str  # "learned <version>" or "heuristic"
    classifier: ClassifierInfo
    labels: dict[str, str]
    label_problems: list[str]
    decisions: Decisions
    duplicates: DuplicateResult
    embedding_version: str | None  # image embeddings that confirmed duplicates, if any
    thumbnails: dict[str, str]  # scan_id -> thumbnail path under the data root
    device: str

    @property
    def confirmed_pairs(self) -> int:
        p = self.duplicates.pairs
        return int(p["confirmed"].sum()) if len(p) else 0

    @property
    def confirmed_by_embedding(self) -> int:
        p = self.duplicates.pairs
        return int((p["confirmed"].astype(bool) & (p["evidence"] == "embedding")).sum()) if len(p) else 0

    def summary(self) -> str:
        rows = self.rows
        return (f"batch {self.batch!r}: {len(rows)} rows, {sum(r['label'] == 'bad' for r in rows)} bad, "
                f"{sum(r['status'] == 'duplicate' for r in rows)} duplicates, {len(self.derived)} crops")


def known_scans(cat: Catalog, batch: str, derived_now: pd.DataFrame) -> pd.DataFrame:
    """scan_id, batch, path, file_name of every scan (for labels.csv): raw scans, other batches'
    crops and this batch's new crops."""
    cols = ["scan_id", "batch", "path", "file_name"]
    parts = [cat.read("raw_scans", columns=cols)]
    if cat.has("derived_scans"):
        parts.append(cat.read("derived_scans", columns=cols, where="batch <> ?", params=[batch]))
    if len(derived_now):
        parts.append(derived_now[cols])
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def _has_label_files(root: Path) -> bool:
    return (root / LABELS_FILE).exists() or (root / LABELS_LOG).exists() or any((root / "inbox").glob("*/labels.csv"))


@dataclass
class ClassifierStage:
    """What the `landmark_classifier` stage decided: the classifier (fitted, reused or none), the
    labels it read and their problems, and whether a saved classifier was removed."""

    classifier: ClassifierInfo
    labels: dict[str, str]
    label_problems: list[str]
    removed_stale: bool = False


def fit_landmark_classifier(cat: Catalog, info: Log | None = None, warn: Log | None = None) -> ClassifierStage:
    """The collection's curator labels (labels.csv files and the browser's log) of raw scans -> the
    saved landmark classifier: refitted when the labels changed, reused when not, removed when the
    labels no longer allow one (then every batch is scored with the ImageNet prior). Crops are not
    read: they are written in the same step as scan_quality, which reads this stage's result."""
    info = info or (lambda msg: None)
    warn = warn or (lambda msg: None)
    root = cat.home
    labels: dict[str, str] = {}
    problems: list[str] = []
    cols = ["scan_id", "batch", "path", "file_name"]
    scans = cat.read("raw_scans", columns=cols) if cat.has("raw_scans") else pd.DataFrame(columns=cols)
    if _has_label_files(root):
        labels, problems = read_curator_labels(root, scans)
    for p in problems[:50]:
        warn(f"labels: {p}")
    clf = landmark_classifier(root, labels, scans, {})
    removed = clf.classifier is None and clear_landmark_classifier(root)
    info(f"landmark classifier: {clf.note}" + (" (the saved one was removed)" if removed else ""))
    return ClassifierStage(clf, labels, problems, removed)


def curate_batch(cat: Catalog, batch: str, settings: CurationSettings | None = None,
                 info: Log | None = None, warn: Log | None = None,
                 tables: tuple[str, ...] = ("scan_quality", "derived_scans"),
                 onnx_cache: Path | None = None) -> CurationResult:
    """Curate `batch` of `raw_scans` and write its partitions of `tables` (both by default; a subset
    run writes only what it selected). `onnx_cache`: folder of the backbone's ONNX export
    (`settings.backbone_runtime`; None: this user's cache).

    Raises LookupError when the batch has no raw_scans partition. Curator-file problems are passed
    to `warn` and counted, never fatal."""
    settings = settings or CurationSettings()
    info = info or (lambda msg: None)
    warn = warn or (lambda msg: None)
    root = cat.home
    if not cat.has("raw_scans", batch):
        raise LookupError(f"raw_scans has no partition {batch!r}: materialise raw_scans first")
    scans = cat.read("raw_scans", batch)
    decisions = read_decisions(root / DECISIONS_FILE)
    for p in decisions.problems:
        warn(f"decisions.csv: {p}")
    bb = backbone()
    info(f"batch {batch!r}: assessing {len(scans)} scans on {bb.device}")
    step = max(1, len(scans) // 10)

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            info(f"scan_quality {batch}: {done}/{total} scans assessed")

    assessed = assess_scans(root, scans, settings.thresholds, preprocess=bb.preprocess, workers=settings.workers,
                            progress=progress)
    derived = derived_table(assessed)
    derived_df = derived.to_pandas()

    # landmark score: one backbone pass over the batch (crops included)
    with_input = [i for i, a in enumerate(assessed) if a.model_input is not None]
    feats, probs = embed([assessed[i].model_input for i in with_input], settings.backbone_runtime, onnx_cache)
    back_model = shipped_card_back_model() if settings.learned_backs else None
    if back_model is not None and (back_model.backbone, back_model.image_size) != (BACKBONE_NAME, bb.image_size):
        warn(f"card-back model reads {back_model.backbone}@{back_model.image_size}, the backbone is "
             f"{BACKBONE_NAME}@{bb.image_size}: card backs decided by the heuristic alone")
        back_model = None
    if back_model is not None and with_input:
        for i, p in zip(with_input, back_model.probability(feats)):
            assessed[i].row = apply_card_back_model(assessed[i].row, float(p), back_model)
    labels: dict[str, str] = {}
    label_problems: list[str] = []
    known = pd.DataFrame(columns=["scan_id", "path"])
    if _has_label_files(root):
        known = known_scans(cat, batch, derived_df)
        labels, label_problems = read_curator_labels(root, known)
    for p in label_problems[:50]:
        warn(f"labels: {p}")
    clf = saved_landmark_classifier(root, labels)
    info(f"landmark scorer: {'classifier' if clf.classifier else PRE_LABEL_SCORER} ({clf.note})")
    scores = np.full(len(assessed), np.nan)
    scorer = PRE_LABEL_SCORER
    if with_input:
        sub, scorer = landmark_scores(feats, probs, clf.classifier)
        scores[with_input] = sub
    rows = finalise_rows(assessed, scores, scorer, labels, decisions, settings.no_landmark_below)

    # near duplicates against the whole collection; the read-decide-write step runs under the lock
    hashes = pd.concat([scans[["scan_id", "phash", "dhash", "thumbnail"]],
                        derived_df[["scan_id", "phash", "dhash", "thumbnail"]]], ignore_index=True)
    new = pd.DataFrame([{"scan_id": r["scan_id"], "label": r["label"], "quality_score": r["quality_score"]}
                        for r in rows if eligible_for_duplicates(r)], columns=["scan_id", "label", "quality_score"])
    new = new.merge(hashes[["scan_id", "phash", "dhash"]], on="scan_id", how="left")
    versions: list = []

    def lookup(ids: set) -> dict:
        vecs, version = embeddings_for(cat, ids)
        versions.append(version)
        return vecs

    with cat.writer_lock():
        existing = other_batch_scans(cat, batch)
        dups = resolve_duplicates(new, existing, decisions, lookup, settings.near_duplicates)
        rows = apply_duplicates(rows, dups.table)
        if "scan_quality" in tables:
            cat.write_partition("scan_quality", batch, quality_table(rows), sync=False)
        if "derived_scans" in tables:
            cat.write_partition("derived_scans", batch, derived, sync=False)
    cat.sync_views([t for t in ("scan_quality", "derived_scans") if t in tables])
    result = CurationResult(
        batch=batch, rows=rows, derived=derived_df, scorer=scorer,
        back_model=f"learned {back_model.version}" if back_model is not None else "heuristic", classifier=clf, labels=labels,
        label_problems=label_problems, decisions=decisions, duplicates=dups,
        embedding_version=next((v for v in versions if v), None),
        thumbnails=dict(zip(hashes.scan_id, hashes.thumbnail)), device=str(bb.device),
    )
    info(result.summary())
    return result
