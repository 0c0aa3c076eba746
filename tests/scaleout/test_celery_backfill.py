"""The distributed path for real, on one machine: Redis broker, two Celery workers, a two-batch backfill.

Each batch is one run of `per_batch_celery_job` launched with deploy/celery/celery_config.yaml; its
steps are Celery tasks that two separate worker processes (worker1, worker2: one task at a time
each) take from the queue. All processes share one filesystem Dagster instance (DAGSTER_HOME) and
one data root (VPR_HOME), as they would share Postgres and object storage in production.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from tests.badinput import jpeg_bytes, photo
from vpr_assets.storage import Catalog

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CELERY_CONFIG = ROOT / "deploy" / "celery" / "celery_config.yaml"
REDIS_SERVER = shutil.which("redis-server")
BATCHES = {"batch-a": range(0, 6), "batch-b": range(100, 106)}
ASSETS = ["raw_scans", "scan_rejects", "image_embeddings"]
WORKERS = ["worker1", "worker2"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM the process group this test started (a worker's CLI and its celery child), then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _tail(path: Path, n: int = 4000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else f"({path.name} missing)"


@pytest.fixture
def redis_url(tmp_path):
    """A private redis-server on a free loopback port, no persistence, its own folder."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not on PATH (CI installs and starts it with .ci/services.sh; "
                    "locally: apt-get install -y redis-server)")
    import redis

    port = _free_port()
    folder = tmp_path / "redis"
    folder.mkdir()
    log = folder / "redis.log"
    proc = subprocess.Popen(
        [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--protected-mode", "yes", "--logfile", str(log)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.ping():
                    break
            except redis.exceptions.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on 127.0.0.1:{port}:\n{_tail(log)}")
            time.sleep(0.1)
        client.close()
        yield f"redis://127.0.0.1:{port}"
    finally:
        _stop(proc, grace=10)


def _make_batches(inbox: Path) -> int:
    n = 0
    for batch, seeds in BATCHES.items():
        folder = inbox / batch
        folder.mkdir(parents=True)
        for s in seeds:
            (folder / f"card_{s:03d}.jpg").write_bytes(jpeg_bytes(photo(s)))
            n += 1
    return n


def _wait_for_workers(broker: str, names: list, procs: list, logs: list, timeout: float = 120) -> set:
    from celery import Celery

    app = Celery("probe", broker=broker)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p, log in zip(procs, logs):
                if p.poll() is not None:
                    pytest.fail(f"a Celery worker exited with {p.returncode}:\n{_tail(log)}")
            replies = app.control.ping(timeout=1.0) or []
            seen = {name.split("@")[0] for r in replies for name in r}
            if set(names) <= seen:
                return {name for r in replies for name in r}
        pytest.fail("Celery workers did not answer a ping:\n" + "\n".join(_tail(l) for l in logs))
    finally:
        app.close()


def test_two_batch_backfill_on_two_celery_workers(tmp_path, redis_url, monkeypatch):
    vpr_home, dagster_home = tmp_path / "vpr_home", tmp_path / "dagster_home"
    vpr_home.mkdir()
    dagster_home.mkdir()
    # a filesystem instance shared by the launching processes and both workers
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    n_files = _make_batches(vpr_home / "inbox")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("VPR_HOME", str(vpr_home))
    env = {
        **os.environ,
        "VPR_HOME": str(vpr_home),
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_CELERY_BROKER_URL": f"{redis_url}/0",
        "DAGSTER_CELERY_BACKEND_URL": f"{redis_url}/1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # dagster-celery runs `celery` from PATH
        "PYTHONPATH": str(ROOT),  # workers import tests.scaleout.celery_target (the job's code pointer)
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",  # two workers on a 2-core machine
    }
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", list(BATCHES))

    workers, logs, launches = [], [], []
    try:
        for name in WORKERS:
            log = tmp_path / f"{name}.log"
            logs.append(log)
            with open(log, "w") as fh:
                workers.append(subprocess.Popen(
                    [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                     "-y", str(CELERY_CONFIG), "-n", name, "-q", "dagster", "-l", "INFO",
                     "--", "--pool", "solo", "--concurrency", "1", "--without-gossip", "--without-mingle"],
                    cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                ))
        _wait_for_workers(f"{redis_url}/0", WORKERS, workers, logs)

        # the backfill: one run per batch, launched at once
        for batch in BATCHES:
            launches.append(subprocess.Popen(
                [sys.executable, "-m", "tests.scaleout.celery_target", batch, str(CELERY_CONFIG), ",".join(ASSETS)],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                start_new_session=True,
            ))
        outputs = []
        for p in launches:
            try:
                outputs.append(p.communicate(timeout=420)[0])
            except subprocess.TimeoutExpired:
                pytest.fail("a Celery run did not finish in 420 s:\n" + "\n".join(_tail(l) for l in logs))
        worker_logs = "\n".join(f"--- {l.name}\n{_tail(l)}" for l in logs)
        assert all(p.returncode == 0 for p in launches), "\n".join(o[-3000:] for o in outputs) + worker_logs
        run_ids = [json.loads(o.strip().splitlines()[-1])["run_id"] for o in outputs]
    finally:
        for p in launches:
            _stop(p, grace=5)
        for p in workers:
            _stop(p)

    with dg.DagsterInstance.get() as instance:
        # every step of both runs ran inside a Celery worker, and both workers took steps
        step_worker = {}
        for run_id in run_ids:
            run = instance.get_run_by_id(run_id)
            assert run.status == dg.DagsterRunStatus.SUCCESS
            assert run.tags["dagster/partition"] in BATCHES
            succeeded = set()
            for rec in instance.all_logs(run_id):
                ev = rec.dagster_event
                if ev is None:
                    continue
                if ev.event_type == dg.DagsterEventType.STEP_SUCCESS:
                    succeeded.add(ev.step_key)
                elif ev.event_type == dg.DagsterEventType.ENGINE_EVENT and ev.step_key:
                    md = ev.engine_event_data.metadata or {}
                    if "Celery worker" in md:
                        step_worker[(run_id, ev.step_key)] = md["Celery worker"].value
            assert "ingest_scans" in succeeded and "image_embeddings" in succeeded
            assert {(run_id, s) for s in succeeded} <= set(step_worker), (succeeded, step_worker)
        print(json.dumps({f"{r[:8]}:{s}": w for (r, s), w in step_worker.items()}, indent=1))
        used = {w.split("@")[0] for w in step_worker.values()}
        assert used == set(WORKERS), step_worker
        assert instance.get_materialized_partitions(dg.AssetKey("raw_scans")) == set(BATCHES)
        assert instance.get_materialized_partitions(dg.AssetKey("image_embeddings")) == set(BATCHES)

    # the workers' own logs agree: each executed tasks from the queue
    for log in logs:
        assert "execute_plan" in log.read_text(errors="replace") and "succeeded" in log.read_text(errors="replace")

    # every row exactly once in the catalog
    cat = Catalog(vpr_home)
    assert sorted(cat.partitions("raw_scans")) == sorted(BATCHES)
    scans = cat.read("raw_scans")
    assert len(scans) == n_files and scans.scan_id.is_unique
    assert scans.groupby("batch").size().to_dict() == {b: len(s) for b, s in BATCHES.items()}
    assert len(cat.read("scan_rejects")) == 0
    emb = cat.read("image_embeddings")
    assert len(emb) == n_files and emb.scan_id.is_unique and set(emb.scan_id) == set(scans.scan_id)
