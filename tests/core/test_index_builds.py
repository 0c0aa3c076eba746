"""Index builds: update or rebuild, one history row per real build, and retention of old folders."""

from __future__ import annotations

import numpy as np

from vpr_assets.core.vision.index_builds import IndexSettings, latest_index_build, update_or_rebuild
from vpr_assets.storage import Catalog


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 32)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_update_rebuild_unchanged_and_retention(tmp_path):
    cat = Catalog(tmp_path)
    ids = [f"s{i:03d}" for i in range(40)]
    vecs = _vectors(40)
    settings = IndexSettings(keep_builds=2)

    first = update_or_rebuild(cat, ids[:30], vecs[:30], "pretrained:lite0_gem512", False, settings, run_id="run-a")
    assert first.mode == "rebuild" and first.index.count == 30
    assert latest_index_build(cat)["build_id"] == first.row["build_id"]

    # nothing new: no new folder, no new history row, the same index answers
    same = update_or_rebuild(cat, ids[:30], vecs[:30], "pretrained:lite0_gem512", False, settings, run_id="run-b")
    assert same.mode == "unchanged" and same.row["build_id"] == first.row["build_id"]
    assert len(cat.read("faiss_indexes")) == 1 and len(list((tmp_path / "indexes").iterdir())) == 1

    # new scans are added to the current index; the result searches like a fresh build
    more = update_or_rebuild(cat, ids, vecs, "pretrained:lite0_gem512", False, settings, run_id="run-c")
    assert more.mode == "incremental" and more.index.count == 40
    _, found = more.index.search(vecs[35:36], k=1)
    assert found[0][0] == ids[35]

    # another model version: a rebuild; retention keeps the newest two build folders
    other = update_or_rebuild(cat, ids, _vectors(40, 1), "vpr:image_clusters:v2", False, settings, run_id="run-d")
    assert other.mode == "rebuild" and other.removed == [first.row["path"].split("/")[1]]
    folders = sorted(p.name for p in (tmp_path / "indexes").iterdir())
    assert folders == sorted([more.row["build_id"], other.row["build_id"]])
    hist = cat.read("faiss_indexes").sort_values("created_at")
    assert list(hist["mode"]) == ["rebuild", "incremental", "rebuild"]  # history rows stay
    assert (tmp_path / latest_index_build(cat)["path"]).exists()


def test_a_vanished_index_folder_is_rebuilt(tmp_path):
    import shutil

    cat = Catalog(tmp_path)
    ids = [f"s{i}" for i in range(10)]
    first = update_or_rebuild(cat, ids, _vectors(10), "m1", False)
    shutil.rmtree(tmp_path / "indexes" / first.row["build_id"])
    again = update_or_rebuild(cat, ids, _vectors(10), "m1", False)
    assert again.mode == "rebuild" and (tmp_path / again.row["path"]).exists()
