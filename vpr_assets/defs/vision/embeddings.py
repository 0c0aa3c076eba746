"""`image_embeddings`: one L2-normalised vector per scan, from the active model, per batch."""

import dagster as dg

from vpr_assets.defs.metadata import catalog_views_metadata, data_version_of, table_metadata
from vpr_assets.defs.partitions import scan_batches
from vpr_assets.defs.resources import CatalogResource, ModelRegistryResource

IMAGE_EMBEDDINGS_CODE_VERSION = "image-embeddings-v1"

# eager: a new batch, or a new champion (a changed data version of the observed `champion_alias`),
# re-embeds. An alias never observed means "pretrained" and must not hold a new batch back.
FOLLOWS_CHAMPION = dg.AutomationCondition.eager().replace(
    "any_deps_missing",
    dg.AutomationCondition.any_deps_missing().ignore(dg.AssetSelection.assets("champion_alias")),
)


class ImageEmbeddingConfig(dg.Config):
    image_size: int = 0  # 0 = the model's default on GPU (448), 320 on CPU
    batch_size: int = 16
    num_workers: int = -1  # -1 = decide from the machine
    model_version: str = ""  # "" = champion, else pretrained; or an explicit registry version
    runtime: str = "onnx"  # on a CPU: "onnx" (ONNX Runtime, the same vectors, ~3x cheaper) or "torch"


@dg.asset(
    metadata=table_metadata('image_embeddings'),
    partitions_def=scan_batches,
    deps=["raw_scans", "champion_alias"],
    group_name="vision",
    code_version=IMAGE_EMBEDDINGS_CODE_VERSION,
    kinds={"pytorch", "parquet"},
    pool="torch",
    automation_condition=FOLLOWS_CHAMPION,
    description="EfficientNet + GeM embedding of every scan of a batch, from the champion model (the "
    "pretrained backbone until one is registered); each row records the model version that made it.",
)
def image_embeddings(context: dg.AssetExecutionContext, config: ImageEmbeddingConfig, catalog: CatalogResource,
                     model_registry: ModelRegistryResource):
    from vpr_assets.core.vision.batch import embed_batch
    from vpr_assets.paths import embedder_export_cache

    batch = context.partition_key
    cat = catalog.catalog
    scans = cat.read("raw_scans", batch, columns=["scan_id", "path"])
    model = model_registry.active(config.model_version or None)
    context.log.info(f"embedding {len(scans)} scans of {batch!r} with {model.version}")
    res = embed_batch(
        scans, catalog.root, model.embedder, model.version,
        previous=cat.arrow("image_embeddings", batch) if cat.has("image_embeddings", batch) else None,
        image_size=config.image_size or None, batch_size=config.batch_size,
        num_workers=None if config.num_workers < 0 else config.num_workers,
        runtime=config.runtime, onnx_cache=embedder_export_cache(catalog.root),
        progress=lambda done, total: context.log.info(f"image_embeddings {batch}: {done}/{total} scans embedded"),
    )
    cat.write_partition("image_embeddings", batch, res.table(batch))
    for sid, why in res.failures.items():
        context.log.warning(f"scan {sid[:12]} not embedded: {why}")
    return dg.MaterializeResult(
        data_version=data_version_of([model.version] + res.scan_ids),
        metadata={**catalog_views_metadata(context, cat),
            "dagster/row_count": len(res.scan_ids),
            "model_version": model.version,
            "model_source": model.source,
            "runtime": config.runtime,
            "dim": model.embedder.embedding_dim,
            "embedded_now": res.embedded_now,
            "reused": res.reused,
            "failed": len(res.failures),
            "images_per_second": res.images_per_second,
        },
    )
