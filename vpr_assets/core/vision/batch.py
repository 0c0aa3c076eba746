"""The image-embedding stage of one scan batch: vectors from the active model, incremental.

A scan keeps the vector its previous run made when the same model version made it, so a re-run
embeds only new scans and a new champion re-embeds everything. Failures (an unreadable file since
ingestion, say) are reported per scan and leave the rest of the batch embedded."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from vpr_assets.storage.catalog import arrow_to_vectors, vectors_to_arrow


@dataclass
class BatchEmbeddings:
    scan_ids: list[str]  # the batch's scans that have a vector, in the batch's order
    vectors: np.ndarray  # (len(scan_ids), dim), L2-normalised
    model_version: str
    embedded_now: int = 0
    reused: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # scan_id -> why it has no vector
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return round(self.embedded_now / self.seconds, 2) if self.embedded_now and self.seconds > 0 else 0.0

    def table(self, batch: str) -> pa.Table:
        """The `image_embeddings` partition of the batch."""
        n = len(self.scan_ids)
        return pa.table({
            "scan_id": pa.array(self.scan_ids, pa.string()),
            "batch": pa.array([batch] * n, pa.string()),
            "model_version": pa.array([self.model_version] * n, pa.string()),
            "dim": pa.array([self.vectors.shape[1] if n else 0] * n, pa.int32()),
            "embedding": vectors_to_arrow(self.vectors) if n else pa.array([], pa.list_(pa.float32())),
        })


def reusable_vectors(previous: pa.Table | None, model_version: str) -> dict[str, np.ndarray]:
    """scan_id -> vector of a previous partition's rows that this model version made."""
    if previous is None or not previous.num_rows:
        return {}
    vecs = arrow_to_vectors(previous.column("embedding"))
    return {sid: v for sid, ver, v in zip(previous.column("scan_id").to_pylist(),
                                          previous.column("model_version").to_pylist(), vecs) if ver == model_version}


def embed_batch(scans: pd.DataFrame, root: Path, embedder, model_version: str, previous: pa.Table | None = None,
                image_size: int | None = None, batch_size: int = 16, num_workers: int | None = None,
                progress: Callable[[int, int], None] | None = None, runtime: str = "torch",
                onnx_cache: Path | None = None) -> BatchEmbeddings:
    """Vectors for `scans` (scan_id, path under `root`) with `embedder`, reusing `previous` rows made
    by the same `model_version`. `progress(done, total)` after every chunk (about 10% of the work).
    `runtime`, `onnx_cache`: as `embed_paths` ("onnx": ONNX Runtime on a CPU, the same vectors)."""
    from vpr_assets.core.vision.embedder import embed_paths

    reused = reusable_vectors(previous, model_version)
    todo = scans[~scans.scan_id.isin(reused)]
    t0 = time.perf_counter()
    new_vecs: dict[str, np.ndarray] = {}
    failures: dict[str, str] = {}
    chunk = max(256, len(todo) // 10)
    for start in range(0, len(todo), chunk):
        part = todo.iloc[start : start + chunk]
        result = embed_paths(embedder, [Path(root) / p for p in part.path], image_size=image_size,
                             batch_size=batch_size, num_workers=num_workers, runtime=runtime,
                             onnx_cache=onnx_cache)
        for i, sid in enumerate(part.scan_id):
            if result.ok[i]:
                new_vecs[sid] = result.vectors[i]
            else:
                failures[sid] = result.failures.get(i, "failed")
        if progress is not None:
            progress(start + len(part), len(todo))
    ordered = [sid for sid in scans.scan_id if sid in reused or sid in new_vecs]
    dim = embedder.embedding_dim
    vectors = np.stack([reused.get(s, new_vecs.get(s)) for s in ordered]).astype(np.float32) if ordered \
        else np.zeros((0, dim), np.float32)
    return BatchEmbeddings(ordered, vectors, model_version, embedded_now=len(new_vecs),
                           reused=sum(s in reused for s in ordered), failures=failures,
                           seconds=time.perf_counter() - t0)
