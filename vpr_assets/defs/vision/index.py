"""`faiss_index`: the search index over the current embeddings, and its history `faiss_indexes`."""

import time
from datetime import datetime, timezone

import dagster as dg
import numpy as np
import pyarrow as pa

from vpr_assets.core.active_model import active_model, model_version_label
from vpr_assets.defs.metadata import catalog_views_metadata, data_version_of
from vpr_assets.defs.resources import CatalogResource
from vpr_assets.defs.vision.loading import current_embeddings, text_vectors_by_scan

FAISS_INDEX_CODE_VERSION = "faiss-index-v1"
FAISS_INDEXES_SCHEMA = pa.schema([
    ("build_id", pa.string()), ("path", pa.string()), ("factory", pa.string()), ("index_type", pa.string()),
    ("count", pa.int64()), ("dim", pa.int32()), ("model_version", pa.string()),
    ("embedding_data_version", pa.string()), ("mode", pa.string()), ("fused_text", pa.bool_()),
    ("build_seconds", pa.float64()), ("created_at", pa.timestamp("us", tz="UTC")), ("dagster_run_id", pa.string()),
])


class IndexConfig(dg.Config):
    exact_below: int = 50_000  # exact search below this many cards, IVF-HNSW + PQ above
    codec: str = "sq8"  # SQ8 (512 B/vector) keeps recall@10 ~0.9 on clustered data; PQ64 fell to ~0.36 (bench_faiss_1m)
    force_rebuild: bool = False


def current_index_row(cat):
    """The latest `faiss_indexes` row (the index search uses), or None."""
    if not cat.has("faiss_indexes"):
        return None
    df = cat.read("faiss_indexes").sort_values("created_at")
    return None if df.empty else df.iloc[-1].to_dict()


def fused_vectors(model, scan_ids, vectors, cat):
    """Fuse image vectors with text vectors when the active model was trained with text."""
    if not model.uses_text or not cat.has("text_embeddings"):
        return vectors, False
    return model.recognizer.fuse_by_id(vectors, scan_ids, text_vectors_by_scan(cat, model.text_sources)), True


@dg.asset(
    deps=["image_embeddings", "text_embeddings"],
    group_name="vision",
    code_version=FAISS_INDEX_CODE_VERSION,
    kinds={"faiss"},
    pool="catalog_writer",
    automation_condition=dg.AutomationCondition.eager(),
    description="FAISS index over the current model's embeddings (exact for small collections, IVF-HNSW + PQ "
    "for millions), written atomically and recorded in `faiss_indexes` with model and data versions; new "
    "batches are added without a rebuild while the model is unchanged.",
)
def faiss_index(context: dg.AssetExecutionContext, config: IndexConfig, catalog: CatalogResource):
    from vpr_assets.core.vision.index import VectorIndex

    cat = catalog.catalog
    version = model_version_label(catalog.root)
    model = active_model(catalog.root, version if not version.startswith("pretrained") else None)
    ids_df, vecs, stale = current_embeddings(cat, version)
    if stale:
        context.log.warning(f"{stale} embedding rows from other model versions left out (re-embedding pending)")
    if not len(ids_df):
        raise dg.Failure(f"no image embeddings made by {version}: materialise image_embeddings first")
    scan_ids = list(ids_df.scan_id)
    vecs, fused = fused_vectors(model, scan_ids, vecs, cat)
    emb_version = data_version_of([version, str(fused)] + scan_ids).value
    t0 = time.perf_counter()
    prev = current_index_row(cat)
    mode = "rebuild"
    index = None
    if prev and not config.force_rebuild and prev["model_version"] == version and bool(prev["fused_text"]) == fused \
            and (catalog.root / prev["path"]).exists():
        old = VectorIndex.load(catalog.root / prev["path"])
        old_ids = set(old.reconstruct_ids(np.arange(old.count)))
        if old_ids <= set(scan_ids) and not old.should_rebuild(config.exact_below):
            new_mask = np.array([s not in old_ids for s in scan_ids])
            if new_mask.any():
                old.add(vecs[new_mask], [s for s, m in zip(scan_ids, new_mask) if m])
            index, mode = old, ("incremental" if new_mask.any() else "unchanged")
    if index is None:
        index = VectorIndex.build(vecs, scan_ids, model_version=version, data_version=emb_version,
                                  exact_below=config.exact_below, codec=config.codec)
    index.meta["data_version"] = emb_version
    build_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{context.run.run_id[:8]}"
    rel = f"indexes/{build_id}/index.faiss"
    index.save(catalog.root / rel)  # each file atomic; a build folder is referenced only once complete
    seconds = time.perf_counter() - t0
    row = {"build_id": build_id, "path": rel, "factory": index.meta.get("factory", ""),
           "index_type": type(index.index).__name__, "count": index.count, "dim": index.dim, "model_version": version,
           "embedding_data_version": emb_version, "mode": mode, "fused_text": fused, "build_seconds": seconds,
           "created_at": datetime.now(timezone.utc), "dagster_run_id": context.run.run_id}
    cat.append_rows("faiss_indexes", [row], FAISS_INDEXES_SCHEMA)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(emb_version),
        metadata={**catalog_views_metadata(context, cat), "dagster/row_count": index.count, "model_version": version, "factory": row["factory"],
                  "mode": mode, "fused_text": fused, "build_seconds": round(seconds, 3),
                  "path": dg.MetadataValue.path(str(catalog.root / rel)), "embedding_data_version": emb_version},
    )
