"""Collection-wide reads of the catalog that assets, search, training and the CLI share: the current
model's embeddings, the cards curation set aside, the text vectors a variant fuses. Assets
read them here, never through IO managers (see dagster#19220)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vpr_assets.storage import Catalog
from vpr_assets.storage.catalog import arrow_to_vectors


def current_embeddings(cat: Catalog, model_version: str) -> tuple[pd.DataFrame, np.ndarray, int]:
    """Rows of `image_embeddings` made by `model_version`: (scan_id/batch frame, vectors, stale rows)."""
    if not cat.has("image_embeddings"):
        return pd.DataFrame({"scan_id": [], "batch": []}), np.zeros((0, 0), np.float32), 0
    with cat.connect() as con:
        stale = con.execute("SELECT count(*) FROM image_embeddings WHERE model_version <> ?", [model_version]).fetchone()[0]
        tbl = con.execute("SELECT scan_id, batch, embedding FROM image_embeddings WHERE model_version = ? ORDER BY batch, scan_id",
                          [model_version]).to_arrow_table()
    vecs = arrow_to_vectors(tbl.column("embedding"))
    return tbl.select(["scan_id", "batch"]).to_pandas(), vecs, int(stale)


def ocr_pipeline_versions(cat: Catalog) -> dict[str, int]:
    """Cards per OCR pipeline version that read them (`settings_json`'s version), so that cards left on
    an older pipeline (kept by the re-read policy, or in batches not run since) can be counted."""
    if not cat.has("ocr_text"):
        return {}
    df = cat.query("SELECT coalesce(json_extract_string(settings_json, '$.version'), '?') AS version, count(*) AS n "
                   "FROM ocr_text GROUP BY 1 ORDER BY 1")
    return {str(v): int(n) for v, n in zip(df.version, df.n)}


def set_aside_scan_ids(cat: Catalog) -> set[str]:
    """Scans curation set aside (label not good, or a duplicate; card backs are labelled bad). Cards
    of batches not curated yet are not among them: they count as kept until their batch is curated,
    as every card does before any curation."""
    if not cat.has("scan_quality"):
        return set()
    q = cat.read("scan_quality")
    out = ~q["label"].eq("good") if "label" in q else pd.Series(False, index=q.index)
    if "duplicate_of" in q:
        out |= q["duplicate_of"].notna()
    return set(q.loc[out, "scan_id"])


def clustering_inputs(cat: Catalog, model_version: str) -> tuple[list[str], np.ndarray, dict, int]:
    """What `landmark_clusters` clusters: the current embeddings of every card curation has not set
    aside (`set_aside_scan_ids`), their geo-words
    (scan_id -> (places, words)) and how many embedding rows of other model versions were left out."""
    ids_df, vecs, stale = current_embeddings(cat, model_version)
    aside = set_aside_scan_ids(cat)
    if aside:
        mask = ~ids_df.scan_id.isin(aside).to_numpy()
        ids_df, vecs = ids_df[mask].reset_index(drop=True), vecs[mask]
    geo = cat.read("geo_words") if cat.has("geo_words") else pd.DataFrame(columns=["scan_id", "words", "places"])
    geo_by_scan = {r.scan_id: (r.places, r.words) for r in geo.drop_duplicates("scan_id").itertuples()}
    return list(ids_df.scan_id), vecs, geo_by_scan, stale


def text_vectors_by_scan(cat: Catalog, source: str = "ocr+description") -> dict:
    """scan_id -> MiniLM vector of the card's text from `source` (a `text_source_key`: the text a
    variant sees, `core.training.variants.variant_text_sources`), for every card with such text."""
    from vpr_assets.core.training.variants import LEGACY_TEXT_SOURCE

    if not source or not cat.has("text_embeddings"):
        return {}
    with cat.connect() as con:  # rows from before the `source` column hold the legacy text
        columns = {d[0] for d in con.execute("SELECT * FROM text_embeddings LIMIT 0").description}
        src = "coalesce(source, ?)" if "source" in columns else "?"
        te = con.execute(f"SELECT scan_id, embedding FROM text_embeddings WHERE {src} = ?",
                         [LEGACY_TEXT_SOURCE, source]).to_arrow_table()
    return dict(zip(te.column("scan_id").to_pylist(), arrow_to_vectors(te.column("embedding"))))
