"""One small real store for the whole tests/search session: a reduced demo collection ingested
as two batches, embedded, clustered (two clusters renamed by a curator), indexed and evaluated on
the held-out dev set. Built once (about a minute on 2 cores) under temporary VPR_HOME/DAGSTER_HOME."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VPR = [sys.executable, "-m", "vpr_assets.cli"]
# curator names given to the clusters holding these cards (accents on purpose: name search ignores them)
RENAMES = {"tower_bridge_00.jpg": "Tower Bridge", "eiffel_00.jpg": "Tour Eiffel à Paris"}


@dataclass
class Store:
    home: Path
    dagster_home: Path
    eval_dir: Path
    env: dict  # os.environ for subprocesses (VPR_HOME/DAGSTER_HOME set)

    def eval_card(self, name: str) -> Path:
        return self.eval_dir / name


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Store:
    from vpr_assets.core.ingest import copy_batch_into_inbox
    from vpr_assets.demo import build_demo_collection, build_eval_set
    from vpr_assets.paths import inbox_dir
    from vpr_assets.runner import add_batch_partition, materialize_partitions
    from vpr_assets.storage import Catalog

    root = tmp_path_factory.mktemp("search_store")
    home, dh = root / "vpr_home", root / "dagster_home"
    home.mkdir()
    dh.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", dh / "dagster.yaml")
    saved = {k: os.environ.get(k) for k in ("VPR_HOME", "DAGSTER_HOME")}
    os.environ["VPR_HOME"], os.environ["DAGSTER_HOME"] = str(home), str(dh)
    try:
        batches = build_demo_collection(home / "demo_source", n_per_place=7, seed=7)
        eval_manifest = build_eval_set(home / "eval", seed=7)
        for name, folder in batches.items():
            copy_batch_into_inbox(folder, inbox_dir(home), name)
            add_batch_partition(name)
        materialize_partitions(["raw_scans", "scan_rejects", "image_embeddings"], list(batches))
        scans = Catalog(home).read("raw_scans")
        sid = dict(zip(scans.file_name, scans.scan_id))
        (home / "curation").mkdir()
        (home / "curation" / "clusters.csv").write_text(
            "action,scan_id,other_scan_id,name\n" + "".join(f"rename,{sid[f][:16]},,{n}\n" for f, n in RENAMES.items()),
            encoding="utf-8")
        materialize_partitions(["landmark_clusters", "faiss_index", "evaluations"], [None],
                               run_config={"ops": {"landmark_clusters": {"config": {"min_size": 5}}}})
        env = {**os.environ, "VPR_HOME": str(home), "DAGSTER_HOME": str(dh), "HF_HUB_OFFLINE": "1",
               "PYTHONUNBUFFERED": "1"}
        yield Store(home, dh, eval_manifest.parent, env)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def engine(store):
    from vpr_assets.core.search import SearchEngine

    return SearchEngine(store.home)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MAX_UPLOAD_MB = 1.0


@pytest.fixture(scope="session")
def server(store):
    """`vpr serve` in a subprocess on a free loopback port (1 MB upload limit), ready when
    /api/health answers 200; stopped (by its own pid) afterwards."""
    import httpx

    port = free_port()
    log = open(store.home / "serve.log", "w")
    proc = subprocess.Popen(VPR + ["serve", "--host", "127.0.0.1", "--port", str(port), "--max-upload-mb",
                                   str(MAX_UPLOAD_MB), "--log-level", "warning"],
                            env=store.env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vpr serve exited with {proc.returncode}: {(store.home / 'serve.log').read_text()[-2000:]}")
            try:
                if httpx.get(base + "/api/health", timeout=30).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("vpr serve did not become healthy in 120 s")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
