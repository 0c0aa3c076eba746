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
from collections import Counter

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from vpr_assets.core.text.ocr_version import OCR_PIPELINE_VERSION
from vpr_assets.core.text.text_embeddings import MODEL_NAME
from vpr_assets.defs.metadata import counts_markdown, data_version_of, md_cell, written_partition_metadata
from vpr_assets.defs.partitions import scan_batches
from vpr_assets.defs.resources import CaptionOcrResource, CatalogResource, TextEncoderResource
from vpr_assets.paths import gazetteer_cache
from vpr_assets.storage.catalog import arrow_to_vectors, vectors_to_arrow
from vpr_assets.storage.schemas import GEO_WORDS_SCHEMA, OCR_TEXT_SCHEMA, TEXT_EMBEDDINGS_SCHEMA

# The OCR pipeline's own version is part of the code version: a change that alters what it reads marks
# every batch's ocr_text as changed code in the UI, but eager automation does not re-run it (a full
# re-read of the collection); a backfill of the batches does, unless the caption_ocr resource keeps older reads.
OCR_TEXT_CODE_VERSION = f"ocr-text-v1+{OCR_PIPELINE_VERSION}"
GEO_WORDS_CODE_VERSION = "geo-words-v3"  # v2: the resolved place per card; v3: Han variant forms, Edo, capitals as evidence, room words
TEXT_EMBEDDINGS_CODE_VERSION = "text-embeddings-v2"  # v2: one row per text source set
LEXICON_CODE_VERSION = "landmark-lexicon-v2"  # v2: phrases placed at the city their cards resolve to


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

    Any change alters the settings hash, so every card of the batch is read again (unless the
    caption_ocr resource keeps older reads)."""

    det_max_side: int = 640  # detection on the scan downscaled to this longest side
    rec_max_side: int = 1600  # recognition crops from the scan capped at this side
    caption_first: bool = True  # read the top/bottom bands first, the middle only without a caption
    middle_probe_side: int = 320  # ... and, if the bands hold no box, only when CRAFT at this side finds text there; 0: always
    min_confidence: float = 0.15  # boxes below are dropped
    # Tesseract languages for regions EasyOCR's Latin weights cannot read; [] turns the second engine off
    other_scripts: list[str] = ["jpn", "chi_tra", "kor", "rus"]
    # re-read every card even when an earlier row has the same settings hash (and even when the
    # caption_ocr resource keeps older reads)
    force: bool = False


def ocr_sample_markdown(rows: list[dict], n: int = 8) -> dg.MetadataValue:
    """The first `n` cards with text, so a glance at the run shows what was read."""
    def confidence(r: dict) -> str:
        return "" if r["mean_confidence"] is None else f"{r['mean_confidence']:.2f}"

    lines = [f"| {r['scan_id'][:12]} | {md_cell(r['text'])} | {confidence(r)} |" for r in rows if r["text"].strip()]
    if not lines:
        return dg.MetadataValue.md("_no text read_")
    return dg.MetadataValue.md("\n".join(["| scan | text | confidence |", "|---|---|---|", *lines[:n]]))


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
    "settings (with any, when the caption_ocr resource keeps older reads) are kept as they were; unreadable "
    "scans get empty text and an error.",
)
def ocr_text(context: dg.AssetExecutionContext, config: OcrConfig, catalog: CatalogResource,
             caption_ocr: CaptionOcrResource):
    from vpr_assets.core.text.batch import read_batch_captions
    from vpr_assets.core.text.ocr import OcrSettings

    batch = context.partition_key
    try:
        keep_older = caption_ocr.keeps_older_reads and not config.force
    except ValueError as exc:  # a mistyped $VPR_OCR_KEEP_OLDER_READS
        raise dg.Failure(description=str(exc)) from exc
    cat = catalog.catalog
    scans = _batch_scans(cat, batch, ["scan_id", "path"])
    settings = OcrSettings(det_max_side=config.det_max_side, rec_max_side=config.rec_max_side,
                           caption_first=config.caption_first, middle_probe_side=config.middle_probe_side,
                           min_confidence=config.min_confidence,
                           other_scripts=tuple(config.other_scripts))
    previous = cat.arrow("ocr_text", batch).to_pylist() if cat.has("ocr_text", batch) else []
    res = read_batch_captions(scans, catalog.root, batch, settings, previous, lambda: caption_ocr.open(settings),
                              gpu=caption_ocr.gpu, force=config.force, progress=_progress(context, f"ocr {batch}", len(scans)),
                              warn=context.log.warning, tools=caption_ocr.tools,
                              keep_older=keep_older)
    context.log.info(f"ocr {batch!r}: {len(scans)} scans, {res.reused} kept (settings {res.settings_hash}"
                     + (f"; {res.kept_older} of them read with other settings" if res.kept_older else "")
                     + f"), {res.read_now} read by {res.engine or 'nothing'}")
    table = pa.Table.from_pylist(res.rows, schema=OCR_TEXT_SCHEMA)
    path = cat.write_partition("ocr_text", batch, table)
    return dg.MaterializeResult(
        data_version=data_version_of(res.row_keys()),
        metadata={**written_partition_metadata(context, cat, table, path), **res.summary(),
                  "sample": ocr_sample_markdown(res.rows)},
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
    lexicon, info = load_or_fit_lexicon(descriptions, catalog.root / LEXICON_PATH, get_gazetteer(cache_dir=gazetteer_cache()), config.min_cards,
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


def geo_words_metadata(res) -> dict:
    """A GeoWordsBatch's figures, with the tables the UI shows: which inputs held text, the places found."""
    return {**res.summary(), "lexicon_version": res.lexicon_version or "none",
            "text_sources": counts_markdown(pd.Series([r["text_source"] for r in res.rows], dtype=object), "text_source"),
            "top_places": top_places_markdown([r["places"] for r in res.rows])}


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
    from vpr_assets.core.text.batch import batch_geo_words
    from vpr_assets.core.text.gazetteer import get_gazetteer
    from vpr_assets.core.text.geowords import GeoWordExtractor
    from vpr_assets.core.text.lexicon_store import LEXICON_PATH, read_lexicon

    batch = context.partition_key
    cat = catalog.catalog
    scans, ocr_by_scan = _scans_with_ocr(cat, batch)
    missing_ocr = int((~scans.scan_id.isin(ocr_by_scan)).sum())
    if missing_ocr:
        context.log.warning(f"{missing_ocr} scans of {batch!r} have no ocr_text row (description only)")

    lexicon_path = catalog.root / LEXICON_PATH
    lexicon, lexicon_version = read_lexicon(lexicon_path)
    if lexicon is None:
        context.log.warning(f"no landmark lexicon at {lexicon_path}: gazetteer places only; materialise "
                            "landmark_lexicon (automation re-runs geo_words when it appears)")
    extractor = GeoWordExtractor(get_gazetteer(cache_dir=gazetteer_cache()), lexicon)
    res = batch_geo_words(scans, ocr_by_scan, batch, extractor, lexicon_version, config.fuzzy_description,
                          progress=_progress(context, f"geo_words {batch}", len(scans)))
    table = pa.Table.from_pylist(res.rows, schema=GEO_WORDS_SCHEMA)
    path = cat.write_partition("geo_words", batch, table)
    dv = data_version_of(res.row_keys())
    return dg.MaterializeResult(
        data_version=dv,
        metadata={**written_partition_metadata(context, cat, table, path), **geo_words_metadata(res),
                  "lexicon_size": len(lexicon) if lexicon is not None else 0, "data_version": dv.value},
    )


# ------------------------------------------------------------------------------------------------
# text_embeddings
# ------------------------------------------------------------------------------------------------


def text_embedding_table(keys: list[tuple[str, str]], batch: str, texts: list, vectors: np.ndarray,
                         model: str = MODEL_NAME) -> pa.Table:
    """Rows for (scan_id, source) keys with their texts and vectors."""
    n = len(keys)
    vectors = vectors.reshape(n, TEXT_EMBEDDINGS_SCHEMA.field("embedding").type.list_size)
    return pa.table({
        "scan_id": pa.array([k[0] for k in keys], pa.string()),
        "batch": pa.array([batch] * n, pa.string()),
        "model": pa.array([model] * n, pa.string()),
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
def text_embeddings(context: dg.AssetExecutionContext, catalog: CatalogResource, text_encoder: TextEncoderResource):
    from vpr_assets.core.text.batch import embed_batch_texts
    from vpr_assets.core.training.variants import FUSED_TEXT_SOURCES

    batch = context.partition_key
    cat = catalog.catalog
    scans, ocr_by_scan = _scans_with_ocr(cat, batch)
    previous: dict[str, np.ndarray] = {}  # incremental: same model, same text -> same vector
    old = cat.arrow("text_embeddings", batch) if cat.has("text_embeddings", batch) else None
    if old is not None and old.num_rows:
        for model, text, v in zip(old.column("model").to_pylist(), old.column("text").to_pylist(),
                                  arrow_to_vectors(old.column("embedding"))):
            if model == text_encoder.model_name:
                previous[text] = v
    res = embed_batch_texts(scans, ocr_by_scan, previous, text_encoder.encode, text_encoder.dim)
    context.log.info(f"text embeddings {batch!r}: {len(scans)} scans, {res.cards_with_text} with text, "
                     f"{len(res.keys)} rows, {res.reused} texts unchanged, {res.embedded} embedded")
    table = text_embedding_table(res.keys, batch, res.texts, res.vectors, text_encoder.model_name)
    path = cat.write_partition("text_embeddings", batch, table)  # an empty batch still replaces old rows
    return dg.MaterializeResult(
        data_version=data_version_of([text_encoder.model_name] + [
            f"{sid}|{src}|{hashlib.sha1(text.encode()).hexdigest()}" for (sid, src), text in zip(res.keys, res.texts)]),
        metadata={**written_partition_metadata(context, cat, table, path),
            "model": text_encoder.model_name,
            "dim": int(res.vectors.shape[1]),
            "cards_without_text": len(scans) - res.cards_with_text,
            "rows_per_source": dg.MetadataValue.json({src: sum(1 for _, s in res.keys if s == src) for src in FUSED_TEXT_SOURCES}),
            "embedded_now": res.embedded,
            "reused": res.reused,
            "texts_per_second": round(res.embedded / res.seconds, 2) if res.embedded and res.seconds > 0 else 0.0,
            "text_input": "text_for_sources(source, ocr_text.text, raw_scans.description): raw, uncleaned",
        },
    )
