"""Index builds of a collection: update the current FAISS index or rebuild it, record each build in
the `faiss_indexes` history table, and keep only the newest builds' files on disk.

Rule: while the model version and text fusion are unchanged and the current index holds only scans
still in the collection, new scans are added to it ("incremental"); nothing new means "unchanged"
(no new folder, no new row); anything else is a "rebuild". A build is written to
`indexes/<build_id>/` (every file atomic) and recorded only once complete, so search never sees a
half-written index; older build folders beyond `keep_builds` are then removed (their history rows
stay)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vpr_assets.core.versions import content_version
from vpr_assets.storage.schemas import INDEX_BUILDS_SCHEMA  # noqa: F401 (re-exported)

if TYPE_CHECKING:  # faiss loads only when an index is built or read (`vpr status` reads the table alone)
    from vpr_assets.core.vision.index import VectorIndex

INDEX_BUILDS_TABLE = "faiss_indexes"
INDEX_DIR = "indexes"


@dataclass(frozen=True)
class IndexSettings:
    exact_below: int = 50_000  # exact search below this many cards, IVF-HNSW above
    # 4-bit fast-scan codes choose candidates, float16 copies re-score them, and queries in no dense
    # region are answered exhaustively: recall@10 0.998 at p50 0.9 ms on 1M (bench_faiss_1m; sq8: 0.83)
    codec: str = "fastscan_refine"
    force_rebuild: bool = False
    keep_builds: int = 3  # build folders kept on disk (the current one and a few to roll back to)


@dataclass
class IndexBuild:
    row: dict  # the faiss_indexes row of the index search now uses
    index: VectorIndex
    mode: str  # rebuild | incremental | unchanged
    removed: list[str] = field(default_factory=list)  # build folders deleted by retention


def latest_index_build(cat) -> dict | None:
    """The latest `faiss_indexes` row: the index search uses (one definition for asset and search)."""
    if not cat.has(INDEX_BUILDS_TABLE):
        return None
    df = cat.read(INDEX_BUILDS_TABLE).sort_values(["created_at", "build_id"])
    return None if df.empty else df.iloc[-1].to_dict()


def _reusable(root: Path, prev: dict | None, model_version: str, fused: bool, settings: IndexSettings) -> bool:
    return bool(prev) and not settings.force_rebuild and prev["model_version"] == model_version \
        and bool(prev["fused_text"]) == fused and (root / prev["path"]).exists()


def update_or_rebuild(cat, scan_ids: list[str], vectors: np.ndarray, model_version: str, fused: bool,
                      settings: IndexSettings | None = None, run_id: str = "") -> IndexBuild:
    """Bring the collection's index up to `vectors` (one per scan id, made by `model_version`)."""
    from vpr_assets.core.vision.index import VectorIndex

    settings = settings or IndexSettings()
    root = Path(cat.home)
    t0 = time.perf_counter()
    emb_version = content_version([model_version, str(fused)] + list(scan_ids))
    prev = latest_index_build(cat)
    index, mode = None, "rebuild"
    if _reusable(root, prev, model_version, fused, settings):
        old = VectorIndex.load(root / prev["path"])
        old_ids = set(old.reconstruct_ids(np.arange(old.count)))
        if old_ids <= set(scan_ids) and not old.should_rebuild(settings.exact_below):
            new_mask = np.array([s not in old_ids for s in scan_ids], dtype=bool)
            if not new_mask.any():
                return IndexBuild(prev, old, "unchanged")
            old.add(vectors[new_mask], [s for s, m in zip(scan_ids, new_mask) if m])
            index, mode = old, "incremental"
    if index is None:
        index = VectorIndex.build(vectors, scan_ids, model_version=model_version, data_version=emb_version,
                                  exact_below=settings.exact_below, codec=settings.codec)
    index.meta["data_version"] = emb_version
    now = datetime.now(timezone.utc)
    build_id = f"{now:%Y%m%dT%H%M%S%f}-{(run_id or 'local')[:8]}"
    rel = f"{INDEX_DIR}/{build_id}/index.faiss"
    index.save(root / rel)  # each file atomic; the folder is referenced only once complete
    row = {"build_id": build_id, "path": rel, "factory": index.meta.get("factory", ""),
           "index_type": type(index.index).__name__, "count": index.count, "dim": index.dim,
           "model_version": model_version, "embedding_data_version": emb_version, "mode": mode, "fused_text": fused,
           "build_seconds": time.perf_counter() - t0, "created_at": now, "dagster_run_id": run_id}
    cat.append_rows(INDEX_BUILDS_TABLE, [row], INDEX_BUILDS_SCHEMA)
    return IndexBuild(row, index, mode, prune_index_builds(cat, settings.keep_builds))


def prune_index_builds(cat, keep: int) -> list[str]:
    """Delete the folders of recorded builds older than the newest `keep` (never the latest one).
    Only folders the history records are touched: a build being written has no row yet."""
    if not cat.has(INDEX_BUILDS_TABLE):
        return []
    root = Path(cat.home)
    rows = cat.read(INDEX_BUILDS_TABLE).sort_values(["created_at", "build_id"])
    folders = [Path(p).parent for p in rows["path"]]
    kept = set(folders[-max(1, keep):])
    removed = []
    for folder in dict.fromkeys(folders):
        target = root / folder
        if folder in kept or not target.is_dir() or target.parent != root / INDEX_DIR:
            continue
        shutil.rmtree(target, ignore_errors=True)
        removed.append(folder.name)
    return removed
