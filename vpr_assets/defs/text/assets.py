"""`ocr_text`, `geo_words` and `text_embeddings`: per-batch text assets (thin wrappers over
vpr_assets.core.text).

- `ocr_text`: one row per raw scan of the batch, caption text in reading order and its boxes.
  OCR is the expensive step (seconds per card on CPU), so a card already read with the same
  settings hash keeps its earlier row; cards that failed are retried. A scan that cannot be
  decoded or read becomes a row with empty text and an `error`, never a failed run.
- `landmark_lexicon` (unpartitioned): the `LandmarkLexicon` fitted on the descriptions of *every*
  batch, saved as `$VPR_HOME/models/landmark_lexicon.json`; materialised only when those
  descriptions change, and each new version re-runs `geo_words` of every batch (eager automation).
- `geo_words`: one row per raw scan: search words and places (gazetteer cities and countries, and
  landmarks of the collection's lexicon) from the OCR text plus the human description.
- `text_embeddings`: all-MiniLM-L6-v2 of the raw card text (not the cleaned geo-words), one row per
  card and text source set a model variant fuses (`source` "ocr+description" and "ocr", from
  `core.training.variants.text_for_sources`, the one definition training, index, evaluation and
  queries share). A card without such text gets no row for that source; equal texts are embedded once.

Every partition write replaces the batch's file (atomic), so re-running never duplicates rows; an
empty batch still writes a schema-only file so stale rows disappear.
"""

import hashlib
import json
import time
from collections import Counter

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from vpr_assets.defs.metadata import catalog_views_metadata, column_schema, counts_markdown, data_version_of
from vpr_assets.defs.partitions import scan_batches
from vpr_assets.defs.resources import CatalogResource
from vpr_assets.defs.text.tables import (
    GEO_WORDS_SCHEMA,
    OCR_TEXT_SCHEMA,
    TEXT_EMBEDDINGS_SCHEMA,
    TEXT_MODEL,
    md_cell,
    ocr_error_row,
    ocr_row,
    place_struct,
    text_source,
)
from vpr_assets.storage.catalog import arrow_to_vectors, vectors_to_arrow

OCR_TEXT_CODE_VERSION = "ocr-text-v1"
GEO_WORDS_CODE_VERSION = "geo-words-v2"  # v2: the resolved place per card
TEXT_EMBEDDINGS_CODE_VERSION = "text-embeddings-v2"  # v2: one row per text source set
LEXICON_CODE_VERSION = "landmark-lexicon-v1"


def _batch_scans(cat, batch: str, columns: list) -> pd.DataFrame:
    """The raw scans of a batch (the table every text asset has one row per scan of)."""
    if not cat.has("raw_scans", batch):
        raise dg.Failure(description=f"raw_scans has no partition {batch!r}: materialise raw_scans first")
    return cat.read("raw_scans", batch, columns=columns)


def _scans_with_ocr(cat, batch: str):
    """The batch's scans (scan_id, description) and their OCR text by scan_id."""
    scans = _batch_scans(cat, batch, ["scan_id", "description"])
    if not cat.has("ocr_text", batch):
        raise dg.Failure(description=f"ocr_text has no partition {batch!r}: materialise ocr_text first")
    ocr = cat.read("ocr_text", batch, columns=["scan_id", "text"])
    return scans, dict(zip(ocr.scan_id, ocr.text))


def _progress(context, what: str, total: int):
    step = max(1, total // 10)

    def report(done: int) -> None:
        if done % step == 0 or done == total:
            context.log.info(f"{what}: {done}/{total}")

    return report


# ------------------------------------------------------------------------------------------------
# ocr_text
# ------------------------------------------------------------------------------------------------


class OcrConfig(dg.Config):
    """The OCR settings worth changing from the launchpad; the rest keep core defaults.

    Any change alters the settings hash, so every card of the batch is read again."""

    det_max_side: int = 640  # detection on the scan downscaled to this longest side
    rec_max_side: int = 1600  # recognition crops from the scan capped at this side
    caption_first: bool = True  # read the top/bottom bands first, the middle only without a caption
    min_confidence: float = 0.15  # boxes below are dropped
    # Tesseract languages for regions EasyOCR's Latin weights cannot read; [] turns the second engine off
    other_scripts: list[str] = ["jpn", "chi_tra", "kor", "rus"]
    use_gpu: bool = True  # CUDA when torch sees it; CPU otherwise
    force: bool = False  # re-read every card even when an earlier row has the same settings hash


def ocr_engine_name(settings, gpu: bool) -> str:
    from importlib.metadata import version

    from vpr_assets.core.text.second_engine import usable_languages

    second = "+".join(usable_languages(settings.other_scripts))
    second = f" + tesseract {second}" if second else ""
    return f"easyocr {version('easyocr')} english_g2 craft_mlt_25k{second} {settings.version} {'cuda' if gpu else 'cpu'}"


@dg.asset(
    partitions_def=scan_batches,
    deps=["raw_scans"],
    group_name="text",
    code_version=OCR_TEXT_CODE_VERSION,
    kinds={"easyocr", "pytorch", "parquet"},
    pool="ocr",
    automation_condition=dg.AutomationCondition.eager(),
    description="Caption OCR (EasyOCR, offline English weights) of every raw scan of a batch: the text in "
    "reading order, its boxes with confidences, the settings hash. Cards already read with the same "
    "settings are kept as they were; unreadable scans get empty text and an error.",
)
def ocr_text(context: dg.AssetExecutionContext, config: OcrConfig, catalog: CatalogResource):
    from vpr_assets.core.images.decode import load_rgb
    from vpr_assets.core.text.ocr import OcrSettings

    batch = context.partition_key
    cat = catalog.catalog
    scans = _batch_scans(cat, batch, ["scan_id", "path"])
    settings = OcrSettings(det_max_side=config.det_max_side, rec_max_side=config.rec_max_side,
                           caption_first=config.caption_first, min_confidence=config.min_confidence,
                           other_scripts=tuple(config.other_scripts))
    shash = settings.hash()
    settings_json = json.dumps(settings.as_dict(), sort_keys=True)

    previous: dict = {}  # incremental: rows read earlier with these settings (failures are retried)
    if not config.force and cat.has("ocr_text", batch):
        for r in cat.arrow("ocr_text", batch).to_pylist():
            if r.get("settings_hash") == shash and not r.get("error"):
                previous[r["scan_id"]] = r
    todo = scans[~scans.scan_id.isin(previous)]
    context.log.info(f"ocr {batch!r}: {len(scans)} scans, {len(scans) - len(todo)} already read with settings "
                     f"{shash}, {len(todo)} to read")

    new_rows: dict = {}
    engine, load_s, ocr_s = "", 0.0, 0.0
    if len(todo):
        import torch

        from vpr_assets.core.text.ocr import CaptionOCR

        gpu = bool(config.use_gpu and torch.cuda.is_available())
        engine = ocr_engine_name(settings, gpu)
        t0 = time.perf_counter()
        ocr = CaptionOCR(settings, gpu=gpu)  # the EasyOCR Reader is cached per process
        load_s = time.perf_counter() - t0
        context.log.info(f"ocr engine: {engine} (reader ready in {load_s:.1f} s)")
        report = _progress(context, f"ocr {batch}", len(todo))
        t_all = time.perf_counter()
        for done, (sid, path) in enumerate(zip(todo.scan_id, todo.path), start=1):
            t1 = time.perf_counter()
            try:
                result = ocr.read(load_rgb(catalog.root / path))
                new_rows[sid] = ocr_row(sid, batch, result, engine, time.perf_counter() - t1)
            except Exception as exc:  # one bad scan never stops the batch
                context.log.warning(f"scan {sid[:12]} ({path}) not read: {type(exc).__name__}: {exc}")
                new_rows[sid] = ocr_error_row(sid, batch, shash, settings_json, engine, time.perf_counter() - t1,
                                              f"{type(exc).__name__}: {exc}")
            report(done)
        ocr_s = time.perf_counter() - t_all
    rows = [previous.get(s) or new_rows[s] for s in scans.scan_id]
    table = pa.Table.from_pylist(rows, schema=OCR_TEXT_SCHEMA)
    path = cat.write_partition("ocr_text", batch, table)

    df = table.select(["scan_id", "text", "mean_confidence", "error", "settings_hash"]).to_pandas()
    with_text = df[df.text.str.strip().astype(bool)]
    sample = ["| scan | text | confidence |", "|---|---|---|"] + [
        f"| {r.scan_id[:12]} | {md_cell(r.text)} | {'' if pd.isna(r.mean_confidence) else f'{r.mean_confidence:.2f}'} |"
        for r in with_text.head(8).itertuples()]
    failed = int(df.error.notna().sum())
    mean_conf = float(df.mean_confidence.dropna().mean()) if df.mean_confidence.notna().any() else 0.0
    return dg.MaterializeResult(
        data_version=data_version_of(df.scan_id + "|" + df.settings_hash + "|" + df.text + "|" + df.error.fillna("")),
        metadata={**catalog_views_metadata(context, cat),
            "dagster/row_count": len(df),
            "dagster/column_schema": column_schema(OCR_TEXT_SCHEMA),
            "ocr_now": len(new_rows),
            "reused": len(previous),
            "failed": failed,
            "cards_with_text": len(with_text),
            "mean_confidence": round(mean_conf, 3),
            "images_per_second": round(len(new_rows) / ocr_s, 3) if new_rows and ocr_s > 0 else 0.0,
            "reader_load_seconds": round(load_s, 2),
            "settings_hash": shash,
            "engine": engine or "(nothing read this run)",
            "sample": dg.MetadataValue.md("\n".join(sample) if len(with_text) else "_no text read_"),
            "parquet": dg.MetadataValue.path(str(path)),
        },
    )


# ------------------------------------------------------------------------------------------------
# geo_words
# ------------------------------------------------------------------------------------------------


class LexiconConfig(dg.Config):
    min_cards: int = 2  # a capitalised phrase on this many cards' descriptions is a landmark


@dg.asset(
    deps=[dg.AssetDep("raw_scans", partition_mapping=dg.AllPartitionMapping())],
    group_name="text",
    code_version=LEXICON_CODE_VERSION,
    kinds={"python", "json"},
    automation_condition=dg.AutomationCondition.eager(),
    output_required=False,  # unchanged descriptions: no new materialisation, so geo_words is not re-run
    description="The collection's landmark lexicon (models/landmark_lexicon.json): capitalised phrases that "
    "recur in the descriptions of every batch, placed with the gazetteer. Materialised only when the "
    "descriptions or settings change; each new version re-runs geo_words of every batch (automation).",
)
def landmark_lexicon(context: dg.AssetExecutionContext, config: LexiconConfig, catalog: CatalogResource):
    from vpr_assets.core.text.gazetteer import get_gazetteer
    from vpr_assets.core.text.lexicon_store import LEXICON_PATH, collection_descriptions, load_or_fit_lexicon

    descriptions = collection_descriptions(catalog.catalog)
    lexicon, info = load_or_fit_lexicon(descriptions, catalog.root / LEXICON_PATH, get_gazetteer(), config.min_cards,
                                        warn=context.log.warning)
    last = context.instance.get_latest_materialization_event(context.asset_key)
    last_version = last.asset_materialization.tags.get("dagster/data_version") if last and last.asset_materialization else None
    if not info.refit and last_version == info.version:
        context.log.info(f"landmark lexicon {info.version} unchanged ({info.size} landmarks from "
                         f"{info.descriptions} descriptions): nothing to materialise")
        return
    context.log.info(f"landmark lexicon {info.version}: {info.size} landmarks from {info.descriptions} descriptions "
                     f"({'refitted' if info.refit else 'already on disk, recorded'})")
    yield dg.MaterializeResult(
        data_version=dg.DataVersion(info.version),
        metadata={
            "landmarks": info.size,
            "descriptions": info.descriptions,
            "refitted": info.refit,
            "fit_seconds": info.seconds,
            "top_landmarks": dg.MetadataValue.md("\n".join(
                f"- {md_cell(lm.name, 60)} ({lm.city or '?'}, {lm.country or '?'}; {lm.cards} cards)"
                for lm in sorted(lexicon.landmarks.values(), key=lambda lm: (-lm.cards, lm.name))[:15])
                or "_no landmarks yet_"),
            "path": dg.MetadataValue.path(str(info.path)),
        },
    )


class GeoWordsConfig(dg.Config):
    fuzzy_description: bool = False  # typed descriptions are matched exactly (OCR text is fuzzy-matched)


def top_places_markdown(places_per_card: list, n: int = 15) -> dg.MetadataValue:
    counts: Counter = Counter()
    for places in places_per_card:
        for key in {(p["name"], p["country"] or "", p["kind"]) for p in places}:
            counts[key] += 1
    if not counts:
        return dg.MetadataValue.md("_no places_")
    lines = ["| place | country | kind | cards |", "|---|---|---|---|"] + [
        f"| {md_cell(name, 60)} | {cc} | {kind} | {c} |" for (name, cc, kind), c in counts.most_common(n)]
    return dg.MetadataValue.md("\n".join(lines))


@dg.asset(
    partitions_def=scan_batches,
    deps=["ocr_text", "raw_scans", "landmark_lexicon"],
    group_name="text",
    code_version=GEO_WORDS_CODE_VERSION,
    kinds={"python", "duckdb", "parquet"},
    automation_condition=dg.AutomationCondition.eager(),
    description="Geo-words of every raw scan of a batch: search words and places (gazetteer cities and "
    "countries, collection landmarks of `landmark_lexicon`) from its OCR text and description.",
)
def geo_words(context: dg.AssetExecutionContext, config: GeoWordsConfig, catalog: CatalogResource):
    from vpr_assets.core.text.gazetteer import get_gazetteer
    from vpr_assets.core.text.geowords import GeoWordExtractor
    from vpr_assets.core.text.lexicon_store import LEXICON_PATH, read_lexicon
    from vpr_assets.core.text.places import resolve_place

    batch = context.partition_key
    cat = catalog.catalog
    scans, ocr_by_scan = _scans_with_ocr(cat, batch)
    missing_ocr = int((~scans.scan_id.isin(ocr_by_scan)).sum())
    if missing_ocr:
        context.log.warning(f"{missing_ocr} scans of {batch!r} have no ocr_text row (description only)")

    gaz = get_gazetteer()
    lexicon_path = catalog.root / LEXICON_PATH
    lexicon, lexicon_version = read_lexicon(lexicon_path)
    if lexicon is None:
        context.log.warning(f"no landmark lexicon at {lexicon_path}: gazetteer places only; materialise "
                            "landmark_lexicon (automation re-runs geo_words when it appears)")
    extractor = GeoWordExtractor(gaz, lexicon)
    report = _progress(context, f"geo_words {batch}", len(scans))
    rows = []
    for done, (sid, desc) in enumerate(zip(scans.scan_id, scans.description), start=1):
        text = ocr_by_scan.get(sid)
        desc = desc if isinstance(desc, str) else None
        found = extractor.extract(text, desc, fuzzy_description=config.fuzzy_description)
        chosen = resolve_place(found, "\n".join(t for t in (text, desc) if t))
        rows.append({"scan_id": sid, "batch": batch, "words": found["words"],
                     "places": [place_struct(p) for p in found["places"]],
                     "text_source": text_source(text, desc), "lexicon_version": lexicon_version,
                     "place": place_struct(chosen.place) if chosen.place else None, "place_evidence": chosen.reason})
        report(done)
    table = pa.Table.from_pylist(rows, schema=GEO_WORDS_SCHEMA)
    path = cat.write_partition("geo_words", batch, table)

    dv = data_version_of(
        f"{r['scan_id']}|{json.dumps(r['words'], ensure_ascii=False)}|{json.dumps(r['places'], sort_keys=True)}"
        f"|{json.dumps(r['place'], sort_keys=True)}"
        for r in rows)
    with_places = sum(1 for r in rows if r["places"])
    return dg.MaterializeResult(
        data_version=dv,
        metadata={**catalog_views_metadata(context, cat),
            "dagster/row_count": len(rows),
            "dagster/column_schema": column_schema(GEO_WORDS_SCHEMA),
            "cards_with_places": with_places,
            "cards_with_a_resolved_place": sum(1 for r in rows if r["place"]),
            "cards_with_city": sum(1 for r in rows if any(p["kind"] == "city" for p in r["places"])),
            "cards_with_landmark": sum(1 for r in rows if any(p["kind"] == "landmark" for p in r["places"])),
            "cards_without_places": len(rows) - with_places,
            "text_sources": counts_markdown(pd.Series([r["text_source"] for r in rows], dtype=object), "text_source"),
            "top_places": top_places_markdown([r["places"] for r in rows]),
            "lexicon_size": len(lexicon) if lexicon is not None else 0,
            "lexicon_version": lexicon_version or "none",
            "data_version": dv.value,
            "parquet": dg.MetadataValue.path(str(path)),
        },
    )


# ------------------------------------------------------------------------------------------------
# text_embeddings
# ------------------------------------------------------------------------------------------------


class TextEmbeddingConfig(dg.Config):
    batch_size: int = 64


def text_embedding_table(keys: list[tuple[str, str]], batch: str, texts: list, vectors: np.ndarray) -> pa.Table:
    """Rows for (scan_id, source) keys with their texts and vectors."""
    n = len(keys)
    vectors = vectors.reshape(n, TEXT_EMBEDDINGS_SCHEMA.field("embedding").type.list_size)
    return pa.table({
        "scan_id": pa.array([k[0] for k in keys], pa.string()),
        "batch": pa.array([batch] * n, pa.string()),
        "model": pa.array([TEXT_MODEL] * n, pa.string()),
        "text": pa.array(texts, pa.string()),
        "embedding": vectors_to_arrow(vectors),  # a (0, 384) array gives an empty FLOAT[384] column
        "source": pa.array([k[1] for k in keys], pa.string()),
    }, schema=TEXT_EMBEDDINGS_SCHEMA)


@dg.asset(
    partitions_def=scan_batches,
    deps=["ocr_text", "raw_scans"],  # what it reads: the raw OCR text and descriptions, not geo_words
    group_name="text",
    code_version=TEXT_EMBEDDINGS_CODE_VERSION,
    kinds={"pytorch", "parquet"},
    automation_condition=dg.AutomationCondition.eager(),
    description="all-MiniLM-L6-v2 sentence embedding (384-d, L2-normalised) of each card's raw text, one row "
    "per card and text source set a model variant fuses (`source`: description + OCR, or OCR alone), the same "
    "text that variant is trained, indexed, evaluated and queried with. Cards without such text get no row.",
)
def text_embeddings(context: dg.AssetExecutionContext, config: TextEmbeddingConfig, catalog: CatalogResource):
    from vpr_assets.core.text.text_embeddings import embed_texts
    from vpr_assets.core.training.variants import FUSED_TEXT_SOURCES, text_for_sources

    batch = context.partition_key
    cat = catalog.catalog
    scans, ocr_by_scan = _scans_with_ocr(cat, batch)
    texts: dict[tuple[str, str], str] = {}  # (scan_id, source) -> text
    for sid, desc in zip(scans.scan_id, scans.description):
        for source in FUSED_TEXT_SOURCES:
            t = text_for_sources(source.split("+"), ocr_by_scan.get(sid), desc if isinstance(desc, str) else None)
            if t is not None:
                texts[(sid, source)] = t

    previous: dict[str, np.ndarray] = {}  # incremental: same model, same text -> same vector
    if cat.has("text_embeddings", batch):
        old = cat.arrow("text_embeddings", batch)
        if old.num_rows:
            vecs = arrow_to_vectors(old.column("embedding"))
            for model, text, v in zip(old.column("model").to_pylist(), old.column("text").to_pylist(), vecs):
                if model == TEXT_MODEL:
                    previous[text] = v
    wanted = set(texts.values())
    previous = {t: v for t, v in previous.items() if t in wanted}
    todo = sorted(wanted - set(previous))  # each distinct text once, whatever its cards and sources
    n_cards = len({sid for sid, _ in texts})
    context.log.info(f"text embeddings {batch!r}: {len(scans)} scans, {n_cards} with text, {len(texts)} rows, "
                     f"{len(previous)} texts unchanged, {len(todo)} to embed")
    t0 = time.perf_counter()
    new = {}
    if todo:
        vecs, idx = embed_texts(todo, batch_size=config.batch_size)
        new = {todo[i]: vecs[j] for j, i in enumerate(idx)}
    seconds = time.perf_counter() - t0
    ordered = [k for k in texts if texts[k] in previous or texts[k] in new]
    vectors = np.stack([previous.get(texts[k], new.get(texts[k])) for k in ordered]).astype(np.float32) if ordered \
        else np.zeros((0, TEXT_EMBEDDINGS_SCHEMA.field("embedding").type.list_size), np.float32)
    table = text_embedding_table(ordered, batch, [texts[k] for k in ordered], vectors)
    path = cat.write_partition("text_embeddings", batch, table)  # an empty batch still replaces old rows
    return dg.MaterializeResult(
        data_version=data_version_of([TEXT_MODEL] + [f"{s}|{src}|{hashlib.sha1(texts[(s, src)].encode()).hexdigest()}"
                                                     for s, src in ordered]),
        metadata={**catalog_views_metadata(context, cat),
            "dagster/row_count": len(ordered),
            "dagster/column_schema": column_schema(TEXT_EMBEDDINGS_SCHEMA),
            "model": TEXT_MODEL,
            "dim": int(vectors.shape[1]),
            "cards_without_text": len(scans) - n_cards,
            "rows_per_source": dg.MetadataValue.json({src: sum(1 for _, s in ordered if s == src) for src in FUSED_TEXT_SOURCES}),
            "embedded_now": len(new),
            "reused": len(previous),
            "texts_per_second": round(len(new) / seconds, 2) if new and seconds > 0 else 0.0,
            "text_input": "text_for_sources(source, ocr_text.text, raw_scans.description): raw, uncleaned",
            "parquet": dg.MetadataValue.path(str(path)),
        },
    )
