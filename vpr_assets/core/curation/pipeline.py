"""Curation of one batch, end to end, without Dagster: the glue between the curation core and the
catalog, used by the `scan_quality` asset (vpr_assets/defs/curation/).

Steps for a batch: decode every scan once; measure quality; detect card backs; split multi-card
scans into crops (new files under `$VPR_HOME/derived/<batch>/`, originals untouched); score
"is this a landmark"; apply curators' labels and decisions; find near duplicates against every
other batch; pick one representative per duplicate group.

Curator files (read, never written, by the pipeline; both optional):

`$VPR_HOME/curation/decisions.csv`, header `scan_id,decision`, one decision per row (a scan may
have several rows, e.g. `keep` and a `not_duplicate:`)::

    scan_id,decision
    3f2a...,keep                    # keep it whatever the measures say (label good, never a duplicate)
    9b41...,reject                  # reject it (label bad, reason curator_reject, never a representative)
    3f2a...,not_duplicate:77c0...   # these two are different cards: never grouped, even through a third

A `keep` and a `reject` of the same scan: the first row wins and the clash is reported. Unknown
decisions and malformed rows are reported, never fatal.

`$VPR_HOME/curation/labels.csv` (and `inbox/<batch>/labels.csv`, whose `file` column names files
of that batch), header `scan_id` or `file`, and `label` in landmark / non_landmark / low_interest.
A global `file` is a path under the data root (`inbox/b1/x.jpg`), `<batch>/<file>`, or a bare file
name when only one scan has it. Labels train the landmark classifier; a curator's non_landmark /
low_interest label also becomes a reject reason for that scan.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
from PIL import Image

from vpr_assets.core.curation.duplicates import NearDupConfig, find_near_duplicates, group_duplicates
from vpr_assets.core.curation.landmark_classifier import LandmarkClassifier, parse_labels_csv
from vpr_assets.core.curation.postcard_traps import BackThresholds, detect_postcard_back, split_multiple_cards
from vpr_assets.core.curation.quality import QualityThresholds, assess
from vpr_assets.core.images.decode import DEFAULT_MAX_PIXELS, ImageRejected, decode_image
from vpr_assets.core.images.hashing import perceptual_hashes, sha256_bytes
from vpr_assets.core.images.thumbnails import write_thumbnail
from vpr_assets.core.ingest import RAW_SCANS_SCHEMA
from vpr_assets.storage import Catalog
from vpr_assets.storage.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

DECISIONS_FILE = "curation/decisions.csv"
LABELS_FILE = "curation/labels.csv"
DERIVED_DIR = "derived"
CLASSIFIER_DIR = "models/landmark_classifier"
CLASSIFIER_FILE = "classifier.joblib"
CLASSIFIER_META = "meta.json"
MLFLOW_EXPERIMENT = "vpr_curation"
BACKBONE_NAME = "tf_efficientnet_lite0"

# Scans with these reasons take no part in the near-duplicate search: a blank card or a card back
# collides with every other one on perceptual hashes, and a multi-card scan is replaced by its crops.
NO_DUPLICATE_SEARCH = frozenset({"blank", "postcard_back", "multiple_cards", "decode_failed"})

FEATURE_COLUMNS = (
    "width", "height", "megapixels", "min_side", "aspect_ratio", "sharpness", "mean_luminance", "dark_clipped",
    "bright_clipped", "contrast_std", "contrast_range", "colourfulness", "edge_density", "border_share",
    "content_share",
)

SCAN_QUALITY_SCHEMA = pa.schema(
    [
        ("scan_id", pa.string()),
        ("batch", pa.string()),
        ("path", pa.string()),
        ("source_scan_id", pa.string()),  # set for a crop split out of a multi-card scan
        ("label", pa.string()),  # good | bad
        ("reasons", pa.list_(pa.string())),  # every defect found (may stay listed on a curator-kept scan)
        ("status", pa.string()),  # keep | duplicate | rejected
        ("duplicate_of", pa.string()),  # the group's representative, or null
        ("group_id", pa.string()),
        ("group_size", pa.int32()),
        ("is_representative", pa.bool_()),
        ("duplicate_evidence", pa.string()),  # embedding | hash | null: how the closest pair was confirmed
        ("duplicate_hash_distance", pa.int32()),
        ("duplicate_cosine", pa.float32()),
        ("landmark_score", pa.float32()),
        ("landmark_scorer", pa.string()),  # imagenet_prior | classifier
        ("curator_label", pa.string()),
        ("curator_decision", pa.string()),  # keep | reject | null
        ("is_postcard_back", pa.bool_()),
        ("back_score", pa.float32()),
        ("back_cues", pa.list_(pa.string())),
        ("multiple_cards", pa.bool_()),
        ("n_cards", pa.int32()),
        ("quality_score", pa.float64()),
        *[(c, pa.float64()) for c in FEATURE_COLUMNS],
    ]
)

DERIVED_SCANS_SCHEMA = pa.schema(
    list(RAW_SCANS_SCHEMA) + [("crop_index", pa.int32()), ("box", pa.list_(pa.int32()))]
)


# --------------------------------------------------------------------------------------------
# Curator files
# --------------------------------------------------------------------------------------------


@dataclass
class Decisions:
    keep: set[str] = field(default_factory=set)
    reject: set[str] = field(default_factory=set)
    not_duplicates: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rows: int = 0

    def decision_of(self, scan_id: str) -> str | None:
        return "keep" if scan_id in self.keep else "reject" if scan_id in self.reject else None


def read_decisions(path: str | Path) -> Decisions:
    """Parse `decisions.csv` (format in the module docstring); bad rows are problems, not errors."""
    path = Path(path)
    d = Decisions()
    if not path.exists():
        return d
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        d.problems.append(f"{path.name}: unreadable ({exc})")
        return d
    reader = csv.DictReader(text.splitlines())
    fields = {(f or "").strip().lower() for f in (reader.fieldnames or [])}
    if not {"scan_id", "decision"} <= fields:
        d.problems.append(f"{path.name}: header must be `scan_id,decision`, got {reader.fieldnames}")
        return d
    seen_pairs: set[tuple[str, str]] = set()
    for line_no, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        sid, decision = row.get("scan_id", ""), row.get("decision", "")
        kind, _, other = decision.partition(":")
        kind = kind.strip().lower().replace("-", "_")
        if not sid:
            d.problems.append(f"line {line_no}: no scan_id")
            continue
        d.rows += 1
        if kind in ("keep", "reject") and not other:
            clash = d.reject if kind == "keep" else d.keep
            if sid in clash:
                d.problems.append(f"line {line_no}: {sid[:12]} is both keep and reject; kept the first decision")
                continue
            (d.keep if kind == "keep" else d.reject).add(sid)
        elif kind == "not_duplicate" and other.strip():
            other = other.strip()
            if other == sid:
                d.problems.append(f"line {line_no}: {sid[:12]} marked not_duplicate of itself")
                continue
            pair = (sid, other) if sid <= other else (other, sid)
            if pair not in seen_pairs:
                seen_pairs.add(pair)
                d.not_duplicates.append(pair)
        else:
            d.problems.append(f"line {line_no}: unknown decision {decision!r} for {sid[:12]} "
                              "(expected keep, reject or not_duplicate:<scan_id>)")
    return d


def read_curator_labels(home: Path, scans: pd.DataFrame) -> tuple[dict[str, str], list[str]]:
    """{scan_id: label} from the global and per-batch labels.csv files, and the problems found.

    `scans`: every known scan (scan_id, batch, path, file_name). The global file wins over a
    batch's own file when both label the same scan.
    """
    known = set(scans["scan_id"]) if len(scans) else set()
    by_path = dict(zip(scans["path"], scans["scan_id"])) if len(scans) else {}
    by_batch_file = {(b, f): s for b, f, s in zip(scans["batch"], scans["file_name"], scans["scan_id"])} if len(scans) else {}
    names = scans.groupby("file_name")["scan_id"].agg(list).to_dict() if len(scans) else {}
    labels: dict[str, str] = {}
    problems: list[str] = []

    def resolve(key: str, kind: str, batch: str | None) -> str | None:
        if kind == "scan_id":
            return key if key in known else None
        key = key.replace("\\", "/").lstrip("./")
        if batch is not None:
            return by_batch_file.get((batch, key))
        if key in by_path:
            return by_path[key]
        if "/" in key:
            b, _, f = key.rpartition("/")
            return by_batch_file.get((b.rpartition("/")[2], f))
        hits = names.get(key, [])
        if len(hits) > 1:
            problems.append(f"labels: file {key!r} is ambiguous ({len(hits)} scans have that name); use scan_id")
        return hits[0] if len(hits) == 1 else None

    sources = [(home / LABELS_FILE, None)]
    inbox = home / "inbox"
    if inbox.is_dir():
        sources += [(p / "labels.csv", p.name) for p in sorted(inbox.iterdir()) if (p / "labels.csv").is_file()]
    for path, batch in sources:
        if not path.exists():
            continue
        rows, probs = parse_labels_csv(path)
        where = f"{batch}/labels.csv" if batch else LABELS_FILE
        problems += [f"{where}: {p}" for p in probs]
        for r in rows:
            sid = resolve(r["key"], r["key_kind"], batch)
            if sid is None:
                problems.append(f"{where}: no scan for {r['key_kind']} {r['key'][:40]!r} (not ingested yet?)")
                continue
            if batch is not None and sid in labels:
                continue  # the global file already labels it
            labels[sid] = r["label"]
    return labels, problems


# --------------------------------------------------------------------------------------------
# Per-scan assessment
# --------------------------------------------------------------------------------------------


@dataclass
class Assessed:
    """One scan (or crop) after the image measurements, before scores, decisions and duplicates."""

    row: dict
    model_input: Image.Image | None  # square, backbone-sized copy (small: a batch stays in memory)
    crops: list["Assessed"] = field(default_factory=list)
    derived: dict | None = None  # the derived_scans row of a crop


def _nan_features() -> dict:
    return {c: float("nan") for c in FEATURE_COLUMNS} | {"quality_score": float("nan")}


def _measure(image: Image.Image, thresholds: QualityThresholds, back_thresholds: BackThresholds) -> dict:
    q = assess(image, image.width, image.height, thresholds)
    back = detect_postcard_back(image, back_thresholds)
    reasons = list(q.reasons)
    if back.is_back:
        reasons.append("postcard_back")
    return {
        "reasons": reasons,
        "is_postcard_back": bool(back.is_back),
        "back_score": float(back.score),
        "back_cues": list(back.cues),
        "quality_score": float(q.features["quality_score"]),
        **{c: float(q.features[c]) for c in FEATURE_COLUMNS},
    }


def crop_relpath(batch: str, source_scan_id: str, k: int) -> str:
    from vpr_assets.storage.names import partition_file_stem

    return f"{DERIVED_DIR}/{partition_file_stem(batch)}/{source_scan_id}_crop{k}.jpg"


def save_crop(home: Path, rel: str, crop: Image.Image, quality: int = 92) -> bytes:
    """Encode a crop as JPEG and write it atomically (only when its content changed)."""
    buf = io.BytesIO()
    crop.convert("RGB").save(buf, format="JPEG", quality=quality, optimize=True)
    data = buf.getvalue()
    target = home / rel
    if not (target.exists() and target.read_bytes() == data):
        atomic_write_bytes(target, data)
    return data


def assess_scan(
    home: Path,
    scan: dict,
    thresholds: QualityThresholds,
    back_thresholds: BackThresholds,
    model_size: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Assessed:
    """Measure one raw scan; a multi-card scan also yields one assessed crop per card."""
    base = {"scan_id": scan["scan_id"], "batch": scan["batch"], "path": scan["path"], "source_scan_id": None,
            "multiple_cards": False, "n_cards": 1}
    try:
        image = decode_image(home / scan["path"], max_pixels).image
    except (ImageRejected, OSError) as exc:
        log.warning("scan %s not decodable: %s", scan["scan_id"][:12], exc)
        row = {**base, "reasons": ["decode_failed"], "is_postcard_back": False, "back_score": float("nan"),
               "back_cues": [], **_nan_features()}
        return Assessed(row, None)
    row = {**base, **_measure(image, thresholds, back_thresholds)}
    out = Assessed(row, image.resize((model_size, model_size), Image.BILINEAR))
    if row["is_postcard_back"]:
        return out
    split = split_multiple_cards(image)
    if not split.is_multiple:
        return out
    row["reasons"].append("multiple_cards")
    row["multiple_cards"], row["n_cards"] = True, len(split.boxes)
    for k, (box, crop) in enumerate(zip(split.boxes, split.crops)):
        rel = crop_relpath(scan["batch"], scan["scan_id"], k)
        data = save_crop(home, rel, crop)
        decoded = decode_image(data)  # describe the file exactly as a scan of it would be
        cim = decoded.image
        sid = sha256_bytes(data)
        small = cim.copy()
        small.thumbnail((512, 512))  # as ingestion does, so hashes compare with raw scans
        derived = {
            "scan_id": sid, "batch": scan["batch"], "path": rel, "file_name": Path(rel).name, "bytes": len(data),
            "format": decoded.format, "width": decoded.width, "height": decoded.height, "mode": decoded.mode,
            "exif_orientation": 1, **perceptual_hashes(small), "description": _str_or_none(scan.get("description")),
            "thumbnail": write_thumbnail(small, home, sid), "source_scan_id": scan["scan_id"],
            "ingested_at": _timestamp_or_none(scan.get("ingested_at")), "crop_index": k, "box": [int(v) for v in box],
        }
        crow = {"scan_id": sid, "batch": scan["batch"], "path": rel, "source_scan_id": scan["scan_id"],
                "multiple_cards": False, "n_cards": 1, **_measure(cim, thresholds, back_thresholds)}
        out.crops.append(Assessed(crow, cim.resize((model_size, model_size), Image.BILINEAR), derived=derived))
    return out


def assess_scans(
    home: Path,
    scans: pd.DataFrame,
    thresholds: QualityThresholds | None = None,
    back_thresholds: BackThresholds | None = None,
    model_size: int = 224,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[Assessed]:
    """Every raw scan of a batch, then its crops right after it (order is stable across runs)."""
    thresholds = thresholds or QualityThresholds()
    back_thresholds = back_thresholds or BackThresholds()
    records = scans.to_dict("records")

    def one(rec: dict) -> Assessed:
        return assess_scan(home, rec, thresholds, back_thresholds, model_size)

    out: list[Assessed] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # OpenCV and PIL release the GIL
        for i, a in enumerate(pool.map(one, records), start=1):
            out.append(a)
            if progress:
                progress(i, len(records))
    flat: list[Assessed] = []
    for a in out:
        flat.append(a)
        flat.extend(a.crops)
    return flat


# --------------------------------------------------------------------------------------------
# Landmark score
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def backbone():
    """The ImageNet backbone, loaded once per process (CUDA when torch sees it)."""
    from vpr_assets.core.curation.landmark_classifier import ImageNetBackbone

    return ImageNetBackbone(BACKBONE_NAME)


def embed(images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
    bb = backbone()
    return bb.embed(list(images))


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


def landmark_classifier(
    home: Path,
    labels: dict[str, str],
    scans: pd.DataFrame,
    known_features: dict[str, np.ndarray],
) -> ClassifierInfo:
    """The trained classifier for these labels: reused from disk when the labels are unchanged,
    else trained (features of labelled scans outside the batch are computed from their files),
    cross-validated, saved atomically and logged to MLflow. None (prior) without usable labels."""
    if not labels:
        return ClassifierInfo(None, note="no curator labels yet: ImageNet prior")
    targets = LandmarkClassifier.targets(list(labels.values()))
    if len(set(targets.tolist())) < 2:
        return ClassifierInfo(None, note="labels need landmark and non-landmark examples: ImageNet prior")
    fp = labels_fingerprint(labels)
    folder = home / CLASSIFIER_DIR
    meta_path, model_path = folder / CLASSIFIER_META, folder / CLASSIFIER_FILE
    if meta_path.exists() and model_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("fingerprint") == fp:
                clf = LandmarkClassifier.load(model_path)
                return ClassifierInfo(clf, fp, False, clf.cv_accuracy, clf.cv_folds, clf.n_train, clf.class_counts,
                                      meta.get("mlflow_run_id"), "reused")
        except Exception as exc:  # a damaged file is retrained, never fatal
            log.warning("landmark classifier at %s not reusable (%s): retraining", folder, exc)
    ids = sorted(labels)
    missing = [s for s in ids if s not in known_features]
    if missing:
        paths = scans.set_index("scan_id")["path"].to_dict()
        size = backbone().image_size
        imgs, ok = [], []
        for s in missing:
            try:
                imgs.append(decode_image(home / paths[s]).image.resize((size, size), Image.BILINEAR))
                ok.append(s)
            except (KeyError, ImageRejected, OSError) as exc:
                log.warning("labelled scan %s not readable: %s", s[:12], exc)
        if imgs:
            feats, _ = embed(imgs)
            known_features = {**known_features, **dict(zip(ok, feats))}
    ids = [s for s in ids if s in known_features]
    y = [labels[s] for s in ids]
    if len(set(LandmarkClassifier.targets(y).tolist())) < 2:
        return ClassifierInfo(None, fp, note="labelled scans readable for only one class: ImageNet prior")
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


# --------------------------------------------------------------------------------------------
# Near duplicates across batches
# --------------------------------------------------------------------------------------------


def other_batch_scans(cat: Catalog, batch: str) -> pd.DataFrame:
    """Every scan (raw and derived) of the other batches, with what their own scan_quality says
    (status, quality_score; null when not curated yet); ineligible ones are left out."""
    sources = [t for t in ("raw_scans", "derived_scans") if cat.has(t)]
    cols = ["scan_id", "batch", "phash", "dhash", "status", "quality_score"]
    if not sources:
        return pd.DataFrame(columns=cols)
    union = " UNION ALL ".join(f"SELECT scan_id, batch, phash, dhash FROM {t} WHERE batch <> $batch" for t in sources)
    if cat.has("scan_quality"):
        skip = ", ".join(f"'{r}'" for r in sorted(NO_DUPLICATE_SEARCH))
        sql = (f"SELECT s.scan_id, s.batch, s.phash, s.dhash, q.status, q.quality_score FROM ({union}) s "
               f"LEFT JOIN (SELECT scan_id, status, quality_score, reasons FROM scan_quality WHERE batch <> $batch) q "
               f"USING (scan_id) WHERE q.reasons IS NULL OR NOT list_has_any(q.reasons, [{skip}]) ORDER BY s.batch, s.scan_id")
    else:
        sql = f"SELECT scan_id, batch, phash, dhash, NULL AS status, NULL AS quality_score FROM ({union}) ORDER BY batch, scan_id"
    with cat.connect() as con:
        return con.execute(sql, {"batch": batch}).fetch_df()[cols]


def embeddings_for(cat: Catalog, scan_ids: Iterable[str]) -> tuple[dict[str, np.ndarray], str | None]:
    """Image embeddings of these scans from the collection's most common model version."""
    ids = sorted(set(scan_ids))
    if not ids or not cat.has("image_embeddings"):
        return {}, None
    from vpr_assets.storage.catalog import arrow_to_vectors

    with cat.connect() as con:
        top = con.execute("SELECT model_version, count(*) n FROM image_embeddings GROUP BY 1 ORDER BY n DESC, 1 LIMIT 1").fetchone()
        if top is None:
            return {}, None
        version = top[0]
        tbl = con.execute("SELECT scan_id, embedding FROM image_embeddings WHERE model_version = ? AND scan_id IN "
                          "(SELECT unnest(?::VARCHAR[]))", [version, ids]).to_arrow_table()
    vecs = arrow_to_vectors(tbl.column("embedding"))
    return dict(zip(tbl.column("scan_id").to_pylist(), vecs)), version


@dataclass
class DuplicateResult:
    table: pd.DataFrame  # one row per scan of the batch: duplicate_of, group_id, ...
    pairs: pd.DataFrame
    embedding_version: str | None
    incumbents_used: int


def resolve_duplicates(
    new: pd.DataFrame,
    existing: pd.DataFrame,
    decisions: Decisions,
    embeddings: dict[str, np.ndarray] | Callable[[set[str]], dict[str, np.ndarray]],
    config: NearDupConfig = NearDupConfig(),
    embedding_version: str | None = None,
) -> DuplicateResult:
    """Group the batch's scans with their near copies anywhere in the collection.

    `new`: this batch's eligible scans (scan_id, phash, dhash, label, quality_score).
    `existing`: other batches' eligible scans (scan_id, phash, dhash, status, quality_score).
    `embeddings`: {scan_id: vector}, or a function giving them for a set of scan_ids.

    Rule (documented in the asset): candidates are hash pairs; a pair whose two scans both have an
    image embedding is confirmed only if their cosine reaches `config.min_cosine`; a pair without
    embeddings is confirmed by the hashes. In a group, if some scan of another batch is already
    that batch's kept representative (status keep) and not rejected by a curator, it stays the
    representative (the best of them if several) and this batch's copies point to it: earlier
    partitions are never rewritten, so the collection keeps one kept scan per group. Otherwise the
    representative is the best scan of this batch (curator keep, not curator reject, label good,
    higher quality_score, then scan_id). A curator-kept scan never points to anything.
    """
    cols = ["scan_id", "duplicate_of", "group_id", "group_size", "is_representative", "duplicate_evidence",
            "duplicate_hash_distance", "duplicate_cosine"]
    if new.empty:
        return DuplicateResult(pd.DataFrame(columns=cols), pd.DataFrame(), embedding_version, 0)
    existing = existing[~existing.scan_id.isin(set(new.scan_id))].drop_duplicates("scan_id").reset_index(drop=True)
    pairs = find_near_duplicates(existing[["scan_id", "phash", "dhash"]], new[["scan_id", "phash", "dhash"]],
                                 not_duplicates=decisions.not_duplicates, config=config)
    if len(pairs):
        if callable(embeddings):  # fetched for the candidate pairs only, never the whole collection
            embeddings = embeddings(set(pairs.scan_a) | set(pairs.scan_b))
        cos = [float(np.dot(embeddings[a], embeddings[b]) / max(1e-12, np.linalg.norm(embeddings[a]) * np.linalg.norm(embeddings[b])))
               if a in embeddings and b in embeddings else float("nan") for a, b in zip(pairs.scan_a, pairs.scan_b)]
        pairs["cosine"] = np.array(cos, dtype=np.float64)
        has = pairs["cosine"].notna()
        pairs["confirmed"] = pairs["confirmed"].astype(bool) & (~has | (pairs["cosine"] >= config.min_cosine))
        pairs["evidence"] = np.where(has, "embedding", "hash")
        pairs["hash_distance"] = pairs[["phash_dist", "dhash_dist"]].min(axis=1).astype(int)
    conf = pairs[pairs["confirmed"].astype(bool)] if len(pairs) else pairs
    other_ids = set(conf["scan_a"]) | set(conf["scan_b"]) if len(conf) else set()
    ex = existing[existing.scan_id.isin(other_ids)]
    everyone = pd.concat([new[["scan_id", "quality_score"]], ex[["scan_id", "quality_score"]]], ignore_index=True)
    everyone = everyone.drop_duplicates("scan_id")
    groups = group_duplicates(everyone.fillna({"quality_score": -math.inf}), conf, decisions.not_duplicates)
    group_of = dict(zip(groups.scan_id, groups.group_id))
    members: dict[str, list[str]] = {}
    for s, g in group_of.items():
        members.setdefault(g, []).append(s)
    current = set(new.scan_id)
    nq = new.set_index("scan_id")
    oq = ex.set_index("scan_id")
    keep, reject = decisions.keep, decisions.reject
    closest: dict[str, dict] = {}
    for r in conf.itertuples(index=False) if len(conf) else []:
        for s in (r.scan_a, r.scan_b):
            prev = closest.get(s)
            if prev is None or r.hash_distance < prev["hash_distance"]:
                closest[s] = {"hash_distance": r.hash_distance, "cosine": r.cosine, "evidence": r.evidence}
    rows, incumbents_used = [], 0
    for g, ms in members.items():
        cur = sorted(s for s in ms if s in current)
        if not cur:
            continue
        incumbents = [s for s in ms if s not in current and oq.at[s, "status"] == "keep" and s not in reject]
        if incumbents:
            rep = min(incumbents, key=lambda s: (s not in keep, -_score(oq.at[s, "quality_score"]), s))
            incumbents_used += 1
        else:
            rep = min(cur, key=lambda s: (s not in keep, s in reject, nq.at[s, "label"] != "good",
                                          -_score(nq.at[s, "quality_score"]), s))
        for s in cur:
            pointer = None if (s == rep or s in keep or len(ms) == 1) else rep
            near = closest.get(s, {})
            rows.append({"scan_id": s, "duplicate_of": pointer, "group_id": g, "group_size": len(ms),
                         "is_representative": s == rep and s not in reject and len(ms) > 1,
                         "duplicate_evidence": near.get("evidence"), "duplicate_hash_distance": near.get("hash_distance"),
                         "duplicate_cosine": near.get("cosine")})
    return DuplicateResult(pd.DataFrame(rows, columns=cols), pairs, embedding_version, incumbents_used)


def _score(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return -math.inf
    return -math.inf if math.isnan(f) else f


# --------------------------------------------------------------------------------------------
# The batch, assembled
# --------------------------------------------------------------------------------------------


def finalise_rows(
    assessed: list[Assessed],
    scores: np.ndarray,
    scorer: str,
    curator_labels: dict[str, str],
    decisions: Decisions,
    no_landmark_below: float,
) -> list[dict]:
    """Add landmark scores, curator labels and decisions, and the label (before duplicates)."""
    rows = []
    for a, score in zip(assessed, scores):
        r = dict(a.row)
        r["reasons"] = list(r["reasons"])
        sid = r["scan_id"]
        r["landmark_score"] = float(score) if score == score else None
        r["landmark_scorer"] = scorer if score == score else None
        lab = curator_labels.get(sid)
        r["curator_label"] = lab
        if lab == "non_landmark":
            r["reasons"].append("no_landmark")
        elif lab == "low_interest":
            r["reasons"].append("low_interest")
        elif lab is None and scorer == "classifier" and score == score and score < no_landmark_below \
                and not r["is_postcard_back"] and not r["multiple_cards"]:
            r["reasons"].append("no_landmark")
        decision = decisions.decision_of(sid)
        r["curator_decision"] = decision
        if decision == "reject":
            r["reasons"].append("curator_reject")
        r["label"] = "good" if decision == "keep" or not r["reasons"] else "bad"
        rows.append(r)
    return rows


def apply_duplicates(rows: list[dict], dups: pd.DataFrame) -> list[dict]:
    by_id = dups.set_index("scan_id").to_dict("index") if len(dups) else {}
    out = []
    for r in rows:
        d = by_id.get(r["scan_id"], {})
        r = {**r, "duplicate_of": _str_or_none(d.get("duplicate_of")), "group_id": _str_or_none(d.get("group_id")) or r["scan_id"],
             "group_size": int(d.get("group_size", 1) or 1), "is_representative": bool(d.get("is_representative", False)),
             "duplicate_evidence": _str_or_none(d.get("duplicate_evidence")),
             "duplicate_hash_distance": _int_or_none(d.get("duplicate_hash_distance")),
             "duplicate_cosine": _float_or_none(d.get("duplicate_cosine"))}
        r["status"] = "rejected" if r["label"] == "bad" else "duplicate" if r["duplicate_of"] else "keep"
        r["is_representative"] = r["is_representative"] and r["status"] == "keep"  # a group of rejects has none
        out.append(r)
    return out


def _timestamp_or_none(v):
    return None if v is None or pd.isna(v) else pd.Timestamp(v).to_pydatetime()


def _str_or_none(v):
    return v if isinstance(v, str) else None


def _int_or_none(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)


def _float_or_none(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def quality_table(rows: list[dict]) -> pa.Table:
    clean = []
    for r in rows:
        c = {k: r.get(k) for k in SCAN_QUALITY_SCHEMA.names}
        for k in ("back_score", "quality_score", *FEATURE_COLUMNS):
            c[k] = _float_or_none(c[k])
        clean.append(c)
    return pa.Table.from_pylist(clean, schema=SCAN_QUALITY_SCHEMA)


def derived_table(assessed: list[Assessed]) -> pa.Table:
    return pa.Table.from_pylist([a.derived for a in assessed if a.derived is not None], schema=DERIVED_SCANS_SCHEMA)


def eligible_for_duplicates(row: dict) -> bool:
    return not (set(row["reasons"]) & NO_DUPLICATE_SEARCH)
