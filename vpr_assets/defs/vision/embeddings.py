"""`image_embeddings`: one L2-normalised vector per scan, from the active model, per batch."""

import time

import dagster as dg
import numpy as np
import pyarrow as pa

from vpr_assets.defs.metadata import catalog_views_metadata, data_version_of, table_metadata
from vpr_assets.defs.partitions import scan_batches
from vpr_assets.defs.resources import CatalogResource, ModelRegistryResource
from vpr_assets.storage.catalog import arrow_to_vectors, vectors_to_arrow

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


def embedding_table(scan_ids, batch: str, version: str, vectors: np.ndarray) -> pa.Table:
    n = len(scan_ids)
    return pa.table({
        "scan_id": pa.array(list(scan_ids), pa.string()),
        "batch": pa.array([batch] * n, pa.string()),
        "model_version": pa.array([version] * n, pa.string()),
        "dim": pa.array([vectors.shape[1] if n else 0] * n, pa.int32()),
        "embedding": vectors_to_arrow(vectors) if n else pa.array([], pa.list_(pa.float32())),
    })


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
    from vpr_assets.core.vision.embedder import embed_paths

    batch = context.partition_key
    cat = catalog.catalog
    scans = cat.read("raw_scans", batch, columns=["scan_id", "path"])
    model = model_registry.active(config.model_version or None)
    context.log.info(f"embedding {len(scans)} scans of {batch!r} with {model.version}")

    # incremental: keep vectors already made by this model for these scans
    previous = {}
    if cat.has("image_embeddings", batch):
        old = cat.arrow("image_embeddings", batch)
        if old.num_rows:
            vecs = arrow_to_vectors(old.column("embedding"))
            for sid, ver, v in zip(old.column("scan_id").to_pylist(), old.column("model_version").to_pylist(), vecs):
                if ver == model.version:
                    previous[sid] = v
    todo = scans[~scans.scan_id.isin(previous)]
    t0 = time.perf_counter()
    new_vecs = {}
    failures = {}
    chunk = max(256, len(todo) // 10)  # progress in the run log about every 10%
    for start in range(0, len(todo), chunk):
        part = todo.iloc[start : start + chunk]
        result = embed_paths(
            model.embedder, [catalog.root / p for p in part.path], image_size=config.image_size or None,
            batch_size=config.batch_size, num_workers=None if config.num_workers < 0 else config.num_workers,
        )
        for i, sid in enumerate(part.scan_id):
            if result.ok[i]:
                new_vecs[sid] = result.vectors[i]
            else:
                failures[sid] = result.failures.get(i, "failed")
        context.log.info(f"image_embeddings {batch}: {start + len(part)}/{len(todo)} scans embedded")
    seconds = time.perf_counter() - t0
    ordered = [sid for sid in scans.scan_id if sid in previous or sid in new_vecs]
    dim = model.embedder.embedding_dim
    vectors = np.stack([previous.get(s, new_vecs.get(s)) for s in ordered]).astype(np.float32) if ordered \
        else np.zeros((0, dim), np.float32)
    cat.write_partition("image_embeddings", batch, embedding_table(ordered, batch, model.version, vectors))
    for sid, why in failures.items():
        context.log.warning(f"scan {sid[:12]} not embedded: {why}")
    return dg.MaterializeResult(
        data_version=data_version_of([model.version] + ordered),
        metadata={**catalog_views_metadata(context, cat),
            "dagster/row_count": len(ordered),
            "model_version": model.version,
            "model_source": model.source,
            "dim": dim,
            "embedded_now": len(new_vecs),
            "reused": len(previous),
            "failed": len(failures),
            "images_per_second": round(len(new_vecs) / seconds, 2) if new_vecs and seconds > 0 else 0.0,
        },
    )
