"""Table schemas of the text assets and the small conversions from core results to their rows.

Fixed Arrow schemas (not inferred from the rows) so that every partition file has the same column
types, an empty batch included: the DuckDB views read all partitions with `union_by_name`, and a
`null`-typed column in one file would make them disagree.
"""

import json
import math
from typing import Optional

import pyarrow as pa

from vpr_assets.core.text.text_embeddings import EMBED_DIM, MODEL_NAME

BOX_TYPE = pa.struct([
    ("text", pa.string()),
    ("confidence", pa.float32()),
    ("x0", pa.int32()),  # pixels of the decoded (upright) scan
    ("y0", pa.int32()),
    ("x1", pa.int32()),
    ("y1", pa.int32()),
    ("line", pa.int32()),  # reading-order line number
])

OCR_TEXT_SCHEMA = pa.schema([
    ("scan_id", pa.string()),
    ("batch", pa.string()),
    ("text", pa.string()),  # "" when nothing was read (or the scan failed: see error)
    ("boxes", pa.list_(BOX_TYPE)),
    ("n_boxes", pa.int32()),
    ("mean_confidence", pa.float32()),  # null when no box
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("settings_hash", pa.string()),
    ("settings_json", pa.string()),
    ("engine", pa.string()),
    ("seconds", pa.float32()),  # OCR time of this card (decode included); as first measured when reused
    ("error", pa.string()),  # null when the scan was read
])

PLACE_TYPE = pa.struct([
    ("name", pa.string()),
    ("country", pa.string()),  # ISO 3166-1 alpha-2; null only for a landmark not tied to a city
    ("lat", pa.float64()),
    ("lon", pa.float64()),
    ("score", pa.float32()),
    ("kind", pa.string()),  # city | country | landmark
    ("matched", pa.string()),  # the folded phrase of the text that matched
    ("city", pa.string()),  # landmarks: the city they are placed in
    ("population", pa.int64()),  # cities and countries
])

GEO_WORDS_SCHEMA = pa.schema([
    ("scan_id", pa.string()),
    ("batch", pa.string()),
    ("words", pa.list_(pa.string())),
    ("places", pa.list_(PLACE_TYPE)),
    ("text_source", pa.string()),  # ocr | description | both | none: which inputs held text
    ("lexicon_version", pa.string()),  # the landmark lexicon used (sha of what it was fitted on)
])

TEXT_EMBEDDINGS_SCHEMA = pa.schema([
    ("scan_id", pa.string()),
    ("batch", pa.string()),
    ("model", pa.string()),
    ("text", pa.string()),
    ("embedding", pa.list_(pa.float32(), EMBED_DIM)),  # DuckDB FLOAT[384]
    ("source", pa.string()),  # which text: "ocr+description" or "ocr" (training.variants.text_source_key)
])

TEXT_MODEL = MODEL_NAME


def _num(x) -> Optional[float]:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def ocr_row(scan_id: str, batch: str, result, engine: str, seconds: float) -> dict:
    """An ocr_text row from a core OcrResult."""
    boxes = [{"text": b.text, "confidence": float(b.confidence), "x0": int(b.bbox[0]), "y0": int(b.bbox[1]),
              "x1": int(b.bbox[2]), "y1": int(b.bbox[3]), "line": int(b.line)} for b in result.boxes]
    conf = sum(b["confidence"] for b in boxes) / len(boxes) if boxes else None
    return {"scan_id": scan_id, "batch": batch, "text": result.text, "boxes": boxes, "n_boxes": len(boxes),
            "mean_confidence": conf, "width": result.width, "height": result.height,
            "settings_hash": result.settings_hash, "settings_json": json.dumps(result.settings, sort_keys=True),
            "engine": engine, "seconds": round(seconds, 3), "error": None}


def ocr_error_row(scan_id: str, batch: str, settings_hash: str, settings_json: str, engine: str, seconds: float,
                  error: str) -> dict:
    """A scan that could not be read stays in the table (empty text) with the reason."""
    return {"scan_id": scan_id, "batch": batch, "text": "", "boxes": [], "n_boxes": 0, "mean_confidence": None,
            "width": None, "height": None, "settings_hash": settings_hash, "settings_json": settings_json,
            "engine": engine, "seconds": round(seconds, 3), "error": error[:500]}


def place_struct(p: dict) -> dict:
    """A core place dict (cities/countries carry population, landmarks carry city) as a PLACE_TYPE row."""
    pop = p.get("population")
    return {"name": p.get("name"), "country": p.get("country") or None, "lat": _num(p.get("lat")),
            "lon": _num(p.get("lon")), "score": _num(p.get("score")), "kind": p.get("kind"),
            "matched": p.get("matched"), "city": p.get("city"), "population": int(pop) if pop is not None else None}


def text_source(ocr_text: Optional[str], description: Optional[str]) -> str:
    has_ocr = bool(ocr_text and ocr_text.strip())
    has_desc = bool(description and description.strip())
    return {(True, True): "both", (True, False): "ocr", (False, True): "description"}.get((has_ocr, has_desc), "none")


def md_cell(text: Optional[str], limit: int = 80) -> str:
    """One markdown table cell: single line, pipes escaped, shortened."""
    s = " / ".join((text or "").split("\n"))
    s = s.replace("|", "\\|")
    return s if len(s) <= limit else s[: limit - 1] + "…"
