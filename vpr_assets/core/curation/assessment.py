"""Per-scan assessment: decode once, measure quality, detect card backs, split multi-card scans
into crops (new files under `$VPR_HOME/derived/<batch>/`, originals untouched)."""

from __future__ import annotations

import io
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pandas as pd
import pyarrow as pa
from PIL import Image

from vpr_assets.core.curation.postcard_traps import BackThresholds, detect_postcard_back, split_multiple_cards
from vpr_assets.core.curation.quality import QualityThresholds, assess
from vpr_assets.core.curation.tables import DERIVED_SCANS_SCHEMA, FEATURE_COLUMNS, _str_or_none, _timestamp_or_none
from vpr_assets.core.images.decode import DEFAULT_MAX_PIXELS, ImageRejected, decode_image
from vpr_assets.core.images.hashing import perceptual_hashes, sha256_bytes
from vpr_assets.core.images.thumbnails import write_thumbnail
from vpr_assets.storage.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from vpr_assets.core.vision.preprocess import Preprocess

log = logging.getLogger(__name__)

DERIVED_DIR = "derived"


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
    preprocess: Preprocess,
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
    out = Assessed(row, preprocess.resized(image))  # the backbone's own resize, done here in the thread
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
        out.crops.append(Assessed(crow, preprocess.resized(cim), derived=derived))
    return out


def assess_scans(
    home: Path,
    scans: pd.DataFrame,
    thresholds: QualityThresholds | None = None,
    back_thresholds: BackThresholds | None = None,
    preprocess: Preprocess | None = None,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[Assessed]:
    """Every raw scan of a batch, then its crops right after it (order is stable across runs).
    `preprocess`: the curation backbone's (`backbone().preprocess`), so that each card's model input
    is cut in the worker thread exactly as the backbone would cut it."""
    if preprocess is None:
        from vpr_assets.core.curation.landmark_classifier import backbone

        preprocess = backbone().preprocess
    thresholds = thresholds or QualityThresholds()
    back_thresholds = back_thresholds or BackThresholds()
    records = scans.to_dict("records")

    def one(rec: dict) -> Assessed:
        return assess_scan(home, rec, thresholds, back_thresholds, preprocess)

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


def derived_table(assessed: list[Assessed]) -> pa.Table:
    return pa.Table.from_pylist([a.derived for a in assessed if a.derived is not None], schema=DERIVED_SCANS_SCHEMA)
