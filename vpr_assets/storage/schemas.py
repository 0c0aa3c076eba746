"""Every catalog table's Arrow schema, in one place, and the check that a write matches it.

Fixed schemas (never inferred from rows) keep every partition file of a table alike, an empty batch
included: the DuckDB views read all partitions with `union_by_name`, and a `null`-typed column in
one file would make them disagree. `Catalog` conforms every write to a table named here
(`conform`), and the Dagster assets publish the same schema as `dagster/column_schema`.
"""

from __future__ import annotations

import pyarrow as pa

TEXT_EMBED_DIM = 384  # all-MiniLM-L6-v2 (core.text.text_embeddings.EMBED_DIM; a test keeps them equal)

RAW_SCANS_SCHEMA = pa.schema(
    [
        ("scan_id", pa.string()),
        ("batch", pa.string()),
        ("path", pa.string()),
        ("file_name", pa.string()),
        ("bytes", pa.int64()),
        ("format", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("mode", pa.string()),
        ("exif_orientation", pa.int16()),
        ("phash", pa.string()),
        ("dhash", pa.string()),
        ("whash", pa.string()),
        ("description", pa.string()),
        ("thumbnail", pa.string()),
        ("source_scan_id", pa.string()),  # set for crops split out of a multi-card scan
        ("ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)

SCAN_REJECTS_SCHEMA = pa.schema(
    [
        ("batch", pa.string()),
        ("path", pa.string()),
        ("file_name", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("sha256", pa.string()),
        ("bytes", pa.int64()),
        ("duplicate_of", pa.string()),
        ("rejected_at", pa.timestamp("us", tz="UTC")),
        ("description", pa.string()),  # a duplicate file's own description, kept here (never lost)
    ]
)

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
        ("landmark_scorer", pa.string()),  # landmark_probe | classifier (imagenet_prior before scan-quality-v3)
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

BOX_TYPE = pa.struct([
    ("text", pa.string()),
    ("confidence", pa.float32()),
    ("x0", pa.int32()),  # pixels of the decoded (upright) scan
    ("y0", pa.int32()),
    ("x1", pa.int32()),
    ("y1", pa.int32()),
    ("line", pa.int32()),  # reading-order line number
    ("script", pa.string()),  # latin | cyrillic | han | japanese | hangul | ... (null: no letter; older rows)
    ("engine", pa.string()),  # easyocr | tesseract:<lang> (null in rows written before the second engine)
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
    ("place", PLACE_TYPE),  # the place the card shows (core.text.places.resolve_place); null = no place
    ("place_evidence", pa.string()),  # why that place, or why none
])

TEXT_EMBEDDINGS_SCHEMA = pa.schema([
    ("scan_id", pa.string()),
    ("batch", pa.string()),
    ("model", pa.string()),
    ("text", pa.string()),
    ("embedding", pa.list_(pa.float32(), TEXT_EMBED_DIM)),  # DuckDB FLOAT[384]
    ("source", pa.string()),  # which text: "ocr+description" or "ocr" (training.variants.text_source_key)
])

VPR_MODELS_SCHEMA = pa.schema([
    ("variant", pa.string()), ("registered_model", pa.string()), ("version", pa.string()), ("run_id", pa.string()),
    ("mAP_at_5", pa.float64()), ("landmark_accuracy", pa.float64()), ("n_classes", pa.int32()),
    ("n_items", pa.int32()), ("train_seconds", pa.float64()), ("input_data_versions", pa.string()),
    ("eval_manifest", pa.string()), ("dagster_run_id", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")),
])

EVALUATIONS_SCHEMA = pa.schema([
    ("evaluation_id", pa.string()), ("evaluated_at", pa.timestamp("us", tz="UTC")), ("model_version", pa.string()),
    ("manifest", pa.string()), ("metric", pa.string()), ("value", pa.float64()), ("source", pa.string()),
])

INDEX_BUILDS_SCHEMA = pa.schema([
    ("build_id", pa.string()), ("path", pa.string()), ("factory", pa.string()), ("index_type", pa.string()),
    ("count", pa.int64()), ("dim", pa.int32()), ("model_version", pa.string()),
    ("embedding_data_version", pa.string()), ("mode", pa.string()), ("fused_text", pa.bool_()),
    ("build_seconds", pa.float64()), ("created_at", pa.timestamp("us", tz="UTC")), ("dagster_run_id", pa.string()),
])

IMAGE_EMBEDDINGS_SCHEMA = pa.schema([
    ("scan_id", pa.string()),
    ("batch", pa.string()),
    ("model_version", pa.string()),  # the ModelRef label of the model that made the vector
    ("dim", pa.int32()),
    ("embedding", pa.list_(pa.float32())),  # L2-normalised; variable length (the dim changes with the model)
])

LANDMARK_CLUSTERS_SCHEMA = pa.schema([
    ("scan_id", pa.string()), ("cluster_id", pa.int32()), ("cluster_name", pa.string()),
    ("cluster_size", pa.int32()), ("status", pa.string()), ("representative_scan_id", pa.string()),
    ("model_version", pa.string()), ("places_json", pa.string()),
    # where the landmark stands and who said so: "curator" (a `locate` decision), "city" or "country"
    # (its top place's point: no offline gazetteer of monuments exists), or null when unknown
    ("lat", pa.float64()), ("lon", pa.float64()), ("location_source", pa.string()),
])

SCHEMAS: dict[str, pa.Schema] = {
    "raw_scans": RAW_SCANS_SCHEMA,
    "scan_rejects": SCAN_REJECTS_SCHEMA,
    "scan_quality": SCAN_QUALITY_SCHEMA,
    "derived_scans": DERIVED_SCANS_SCHEMA,
    "ocr_text": OCR_TEXT_SCHEMA,
    "geo_words": GEO_WORDS_SCHEMA,
    "text_embeddings": TEXT_EMBEDDINGS_SCHEMA,
    "image_embeddings": IMAGE_EMBEDDINGS_SCHEMA,
    "landmark_clusters": LANDMARK_CLUSTERS_SCHEMA,
    "vpr_models": VPR_MODELS_SCHEMA,
    "evaluations": EVALUATIONS_SCHEMA,
    "faiss_indexes": INDEX_BUILDS_SCHEMA,
}


class SchemaMismatch(ValueError):
    """A write whose columns are not the table's (missing, extra, or not castable)."""


def conform(table: str, data: pa.Table) -> pa.Table:
    """`data` with the columns of `table`'s schema, in its order and types; tables not named in
    SCHEMAS pass unchanged. Raises SchemaMismatch naming the columns that do not fit."""
    schema = SCHEMAS.get(table)
    if schema is None:
        return data
    have, want = set(data.column_names), set(schema.names)
    if have != want:
        raise SchemaMismatch(f"{table}: missing columns {sorted(want - have)}, unexpected {sorted(have - want)}")
    try:
        return data.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as e:
        raise SchemaMismatch(f"{table}: {e}") from e
