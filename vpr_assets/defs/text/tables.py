"""The small conversions from core text results to the rows of the text tables (schemas in
`vpr_assets.storage.schemas`)."""

import json
import math
from typing import Optional

from vpr_assets.core.text.text_embeddings import MODEL_NAME
from vpr_assets.storage.schemas import BOX_TYPE, GEO_WORDS_SCHEMA, OCR_TEXT_SCHEMA, PLACE_TYPE, TEXT_EMBEDDINGS_SCHEMA  # noqa: F401

TEXT_MODEL = MODEL_NAME


def _num(x) -> Optional[float]:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def ocr_row(scan_id: str, batch: str, result, engine: str, seconds: float) -> dict:
    """An ocr_text row from a core OcrResult."""
    boxes = [{"text": b.text, "confidence": float(b.confidence), "x0": int(b.bbox[0]), "y0": int(b.bbox[1]),
              "x1": int(b.bbox[2]), "y1": int(b.bbox[3]), "line": int(b.line), "script": b.script,
              "engine": b.engine} for b in result.boxes]
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
