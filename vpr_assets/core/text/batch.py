"""The text stages of one batch, each one call: caption OCR, geo-words, text embeddings.

`ocr_text`, `geo_words` and `text_embeddings` (and anything else, e.g. a benchmark) call these
with plain inputs (the batch's scans as a DataFrame, the earlier rows, a reader or encoder) and
write what they return. Rows follow `vpr_assets.storage.schemas`.

- `read_batch_captions`: OCR is seconds per card on a CPU, so a card already read with the same
  settings hash keeps its earlier row and a failed card is read again. `keep_older` also keeps rows
  read with other settings (an older OCR pipeline): re-reading a collection after an OCR change is
  then a decision, not a side effect of re-running a batch. A scan that cannot be
  decoded or read becomes a row with empty text and an `error`, never a failed batch.
- `batch_geo_words`: search words and places of every card, from OCR text and description.
- `embed_batch_texts`: one row per card and text source set a model variant fuses (the texts of
  `training.variants.text_for_sources`, the one definition training, index, evaluation and queries
  share); equal texts are embedded once, and texts embedded earlier with the same model are reused.
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from vpr_assets.core.heap import batch_heap

if TYPE_CHECKING:
    from vpr_assets.core.text.ocr import OcrTools

Progress = Callable[[int], None]


def _no_progress(done: int) -> None:
    return None


# ----------------------------------------------------------------------------------------------
# Rows
# ----------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------
# Caption OCR
# ----------------------------------------------------------------------------------------------


def ocr_engine_name(settings, gpu: bool, tools: OcrTools | None = None) -> str:
    """What read the captions, as recorded in every row: engine versions, second engine, settings."""
    from importlib.metadata import version

    from vpr_assets.core.text.ocr import OcrTools
    from vpr_assets.core.text.second_engine import usable_languages

    second = "+".join(usable_languages(settings.other_scripts, (tools or OcrTools()).tesseract))
    second = f" + tesseract {second}" if second else ""
    return f"easyocr {version('easyocr')} english_g2 craft_mlt_25k{second} {settings.version} {'cuda' if gpu else 'cpu'}"


@dataclass
class OcrBatch:
    rows: list[dict]  # one per scan, in the scans' order
    read_now: int
    reused: int
    failed: int
    engine: str  # "" when nothing had to be read
    reader_load_seconds: float
    ocr_seconds: float
    settings_hash: str  # what the rows read with these settings and tools record
    kept_older: int = 0  # rows kept although other settings read them (`keep_older`)

    @property
    def images_per_second(self) -> float:
        return self.read_now / self.ocr_seconds if self.read_now and self.ocr_seconds > 0 else 0.0

    def row_keys(self) -> list[str]:
        """One string per row that changes whenever what the row read changes (what a data version hashes)."""
        return [f"{r['scan_id']}|{r['settings_hash']}|{r['text']}|{r['error'] or ''}" for r in self.rows]

    def summary(self) -> dict:
        """The batch in figures, as `ocr_text` records them with each materialisation."""
        confidences = [c for c in (_num(r["mean_confidence"]) for r in self.rows) if c is not None]
        return {"ocr_now": self.read_now, "reused": self.reused, "kept_on_older_settings": self.kept_older,
                "failed": self.failed,
                "cards_with_text": sum(1 for r in self.rows if r["text"].strip()),
                "mean_confidence": round(sum(confidences) / len(confidences), 3) if confidences else 0.0,
                "images_per_second": round(self.images_per_second, 3),
                "reader_load_seconds": round(self.reader_load_seconds, 2),
                "settings_hash": self.settings_hash, "engine": self.engine or "(nothing read this run)"}


def read_batch_captions(scans: pd.DataFrame, root: Path, batch: str, settings, previous_rows: Sequence[dict],
                        open_reader: Callable[[], object], gpu: bool, force: bool = False,
                        progress: Progress = _no_progress, warn: Callable[[str], None] = lambda m: None,
                        tools: OcrTools | None = None, keep_older: bool = False) -> OcrBatch:
    """OCR rows for every scan (`scan_id`, `path` under `root`). `previous_rows`: the batch's earlier
    ocr_text rows; those read with the same settings and without error are kept unless `force`.
    `keep_older`: rows read without error under other settings are kept too (each row's settings_hash
    and settings_json still say what read it); only unread and failed cards are read.
    `open_reader()` returns the CaptionOCR; it is called only when some card must be read, and
    `reader.streams` cards are read at once (same rows, in the scans' order). `tools`:
    the reader's OcrTools (which Tesseract languages it has is part of the settings hash)."""
    from vpr_assets.core.images.decode import load_rgb

    shash = settings.hash(tools)
    settings_json = json.dumps(settings.as_dict(tools), sort_keys=True)
    if force and keep_older:
        raise ValueError("force re-reads every card and keep_older keeps earlier reads: choose one")
    previous = {} if force else {r["scan_id"]: r for r in previous_rows
                                 if (keep_older or r.get("settings_hash") == shash) and not r.get("error")}
    todo = scans[~scans.scan_id.isin(previous)]
    new_rows: dict[str, dict] = {}
    engine, load_s, ocr_s = "", 0.0, 0.0
    if len(todo):
        engine = ocr_engine_name(settings, gpu, tools)
        t0 = time.perf_counter()
        reader = open_reader()
        load_s = time.perf_counter() - t0
        t_all = time.perf_counter()

        def read_one(sid: str, path: str) -> tuple[dict, str | None]:
            t1 = time.perf_counter()
            try:
                result = reader.read(load_rgb(Path(root) / path))
                return ocr_row(sid, batch, result, engine, time.perf_counter() - t1), None
            except Exception as exc:  # noqa: BLE001 - one bad scan never stops the batch
                why = f"{type(exc).__name__}: {exc}"
                return ocr_error_row(sid, batch, shash, settings_json, engine, time.perf_counter() - t1, why), \
                    f"scan {sid[:12]} ({path}) not read: {why}"

        streams = min(int(getattr(reader, "streams", 1) or 1), len(todo))
        with batch_heap(), \
                ThreadPoolExecutor(streams, thread_name_prefix="ocr") if streams > 1 else nullcontext() as pool:
            rows_in_order = (pool.map(read_one, todo.scan_id, todo.path) if pool is not None
                             else map(read_one, todo.scan_id, todo.path))
            for done, (sid, (row, problem)) in enumerate(zip(todo.scan_id, rows_in_order), start=1):
                new_rows[sid] = row
                if problem:
                    warn(problem)  # from this thread: the caller's logger need not be thread-safe
                progress(len(scans) - len(todo) + done)  # cards of the batch done, the kept ones included
        ocr_s = time.perf_counter() - t_all
    rows = [previous.get(s) or new_rows[s] for s in scans.scan_id]
    return OcrBatch(rows, len(new_rows), len(rows) - len(new_rows), sum(1 for r in rows if r.get("error")),
                    engine, load_s, ocr_s, shash,
                    kept_older=sum(1 for s in scans.scan_id if s in previous and previous[s].get("settings_hash") != shash))


# ----------------------------------------------------------------------------------------------
# Geo-words
# ----------------------------------------------------------------------------------------------


@dataclass
class GeoWordsBatch:
    rows: list[dict]  # one per scan, in the scans' order
    lexicon_version: str | None  # the landmark lexicon the places were found with (None: gazetteer only)

    def row_keys(self) -> list[str]:
        """One string per row that changes whenever its words or places do (what a data version hashes)."""
        return [f"{r['scan_id']}|{json.dumps(r['words'], ensure_ascii=False)}|{json.dumps(r['places'], sort_keys=True)}"
                f"|{json.dumps(r['place'], sort_keys=True)}" for r in self.rows]

    def summary(self) -> dict:
        """The batch in figures, as `geo_words` records them with each materialisation."""
        def with_kind(kind: str) -> int:
            return sum(1 for r in self.rows if any(p["kind"] == kind for p in r["places"]))

        with_places = sum(1 for r in self.rows if r["places"])
        return {"cards_with_places": with_places,
                "cards_with_a_resolved_place": sum(1 for r in self.rows if r["place"]),
                "cards_with_city": with_kind("city"), "cards_with_landmark": with_kind("landmark"),
                "cards_without_places": len(self.rows) - with_places}


def batch_geo_words(scans: pd.DataFrame, ocr_by_scan: Mapping[str, str], batch: str, extractor,
                    lexicon_version: str | None, fuzzy_description: bool = False,
                    progress: Progress = _no_progress) -> GeoWordsBatch:
    """One geo_words row per scan (`scan_id`, `description`): words, places and the resolved place."""
    from vpr_assets.core.text.places import resolve_place

    rows = []
    for done, (sid, desc) in enumerate(zip(scans.scan_id, scans.description), start=1):
        text = ocr_by_scan.get(sid)
        desc = desc if isinstance(desc, str) else None
        found = extractor.extract(text, desc, fuzzy_description=fuzzy_description)
        chosen = resolve_place(found, "\n".join(t for t in (text, desc) if t))
        rows.append({"scan_id": sid, "batch": batch, "words": found["words"],
                     "places": [place_struct(p) for p in found["places"]],
                     "text_source": text_source(text, desc), "lexicon_version": lexicon_version,
                     "place": place_struct(chosen.place) if chosen.place else None, "place_evidence": chosen.reason})
        progress(done)
    return GeoWordsBatch(rows, lexicon_version)


# ----------------------------------------------------------------------------------------------
# Text embeddings
# ----------------------------------------------------------------------------------------------


@dataclass
class TextEmbeddingBatch:
    keys: list[tuple[str, str]]  # (scan_id, source), in scan order
    texts: list[str]
    vectors: np.ndarray  # (len(keys), dim) float32
    reused: int  # distinct texts whose earlier vector was kept
    embedded: int  # distinct texts embedded now
    cards_with_text: int
    seconds: float


def embed_batch_texts(scans: pd.DataFrame, ocr_by_scan: Mapping[str, str], previous: Mapping[str, np.ndarray],
                      encode: Callable[[list[str]], tuple[np.ndarray, list[int]]], dim: int) -> TextEmbeddingBatch:
    """Vectors of every (card, text source) with text. `previous`: {text: vector} embedded earlier by
    the same model; `encode(texts) -> (vectors, indices of non-empty texts)`."""
    from vpr_assets.core.training.variants import FUSED_TEXT_SOURCES, text_for_sources

    texts: dict[tuple[str, str], str] = {}
    for sid, desc in zip(scans.scan_id, scans.description):
        for source in FUSED_TEXT_SOURCES:
            t = text_for_sources(source.split("+"), ocr_by_scan.get(sid), desc if isinstance(desc, str) else None)
            if t is not None:
                texts[(sid, source)] = t
    wanted = set(texts.values())
    kept = {t: v for t, v in previous.items() if t in wanted}
    todo = sorted(wanted - set(kept))  # each distinct text once, whatever its cards and sources
    t0 = time.perf_counter()
    new: dict[str, np.ndarray] = {}
    if todo:
        vecs, idx = encode(todo)
        new = {todo[i]: vecs[j] for j, i in enumerate(idx)}
    seconds = time.perf_counter() - t0
    keys = [k for k in texts if texts[k] in kept or texts[k] in new]
    vectors = np.stack([kept.get(texts[k], new.get(texts[k])) for k in keys]).astype(np.float32) if keys \
        else np.zeros((0, dim), np.float32)
    return TextEmbeddingBatch(keys, [texts[k] for k in keys], vectors, len(kept), len(new),
                              len({sid for sid, _ in texts}), seconds)
