"""`faiss_index`: the search index over the current embeddings (core/vision/index_builds.py decides
update or rebuild, records the build in `faiss_indexes` and keeps the newest builds' files)."""

import dagster as dg

from vpr_assets.core.collection_reads import current_embeddings, text_vectors_by_scan
from vpr_assets.core.vision.index_builds import IndexSettings, update_or_rebuild
from vpr_assets.defs.metadata import catalog_views_metadata, record_history_table
from vpr_assets.defs.resources import CatalogResource, ModelRegistryResource

FAISS_INDEX_CODE_VERSION = "faiss-index-v2"  # v2: fastscan_refine above exact_below


class IndexConfig(dg.Config):
    exact_below: int = 50_000  # exact search below this many cards, IVF-HNSW above
    # 4-bit fast-scan codes choose candidates, float16 copies re-score them, and queries in no dense
    # region are answered exhaustively: recall@10 0.998 at p50 0.9 ms on 1M (bench_faiss_1m; sq8: 0.83)
    codec: str = "fastscan_refine"
    force_rebuild: bool = False
    keep_builds: int = 3  # index build folders kept on disk; older ones are deleted (history rows stay)

    def settings(self) -> IndexSettings:
        return IndexSettings(self.exact_below, self.codec, self.force_rebuild, self.keep_builds)


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
    description="FAISS index over the current model's embeddings (exact for small collections, IVF-HNSW + SQ8 "
    "for millions), written atomically and recorded in `faiss_indexes` with model and data versions; new "
    "batches are added without a rebuild while the model is unchanged; the newest builds' files are kept.",
)
def faiss_index(context: dg.AssetExecutionContext, config: IndexConfig, catalog: CatalogResource,
                model_registry: ModelRegistryResource):
    cat = catalog.catalog
    version = model_registry.label()
    model = model_registry.active(version)
    ids_df, vecs, stale = current_embeddings(cat, version)
    if stale:
        context.log.warning(f"{stale} embedding rows from other model versions left out (re-embedding pending)")
    if not len(ids_df):
        raise dg.Failure(f"no image embeddings made by {version}: materialise image_embeddings first")
    scan_ids = list(ids_df.scan_id)
    vecs, fused = fused_vectors(model, scan_ids, vecs, cat)
    build = update_or_rebuild(cat, scan_ids, vecs, version, fused, config.settings(), run_id=context.run.run_id)
    row = build.row
    if build.removed:
        context.log.info(f"removed {len(build.removed)} old index builds: {', '.join(build.removed)}")
    if build.mode != "unchanged":
        record_history_table(context, "faiss_indexes", cat, 1)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(row["embedding_data_version"]),
        metadata={**catalog_views_metadata(context, cat), "dagster/row_count": build.index.count, "model_version": version, "factory": row["factory"],
                  "mode": build.mode, "build_id": row["build_id"], "fused_text": fused,
                  "build_seconds": round(float(row["build_seconds"]), 3) if build.mode != "unchanged" else 0.0,
                  "old_builds_removed": len(build.removed),
                  "path": dg.MetadataValue.path(str(catalog.root / row["path"])),
                  "embedding_data_version": row["embedding_data_version"]},
    )
