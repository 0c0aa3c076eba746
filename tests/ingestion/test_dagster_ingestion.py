"""The code location end to end: definitions, partitions, re-runs, concurrency, the sensor, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from tests.badinput import jpeg_bytes, make_bad_batch, photo
from vpr_assets.defs.ingestion.assets import INGEST_CODE_VERSION
from vpr_assets.storage import Catalog

ROOT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
VPR = str(Path(sys.executable).with_name("vpr"))


def _env(vpr_home: Path, dagster_home: Path) -> dict:
    return {**os.environ, "VPR_HOME": str(vpr_home), "DAGSTER_HOME": str(dagster_home)}


def _materialize(batch: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([DAGSTER, "asset", "materialize", "-m", "vpr_assets.definitions", "--select", "raw_scans,scan_rejects",
                             "--partition", batch], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def test_definitions_validate(vpr_home, dagster_home):
    out = subprocess.run([DAGSTER, "definitions", "validate", "-m", "vpr_assets.definitions"], cwd=ROOT,
                         env=_env(vpr_home, dagster_home), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Validation successful" in out.stdout + out.stderr


def _run_partition(batch: str):
    from vpr_assets.runner import materialize_partitions

    return materialize_partitions(["raw_scans", "scan_rejects"], [batch])[0]


def test_materialize_bad_batch_through_the_instance_and_rerun_is_idempotent(vpr_home, dagster_home):
    expected = make_bad_batch(vpr_home / "inbox" / "bad")
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", ["bad"])
    res = _run_partition("bad")
    assert res.success
    cat = Catalog(vpr_home)
    scans, rejects = cat.read("raw_scans"), cat.read("scan_rejects")
    n_ok = sum(v == "ok" for v in expected.values())
    assert len(scans) == n_ok
    assert len(rejects[rejects.file_name != "descriptions.csv"]) == len(expected) - n_ok
    checks = {e.check_name: e.passed
              for e in res.get_asset_check_evaluations()}
    assert checks == {"every_file_accounted_for": True, "scan_id_unique": True}

    assert _run_partition("bad").success  # re-materialise: replaces, never duplicates
    assert len(Catalog(vpr_home).read("raw_scans")) == n_ok
    assert len(Catalog(vpr_home).read("scan_rejects")) == len(rejects)

    with dg.DagsterInstance.get() as instance:
        mats = instance.fetch_materializations(dg.AssetKey("raw_scans"), limit=10).records
        assert len(mats) == 2
        tags = mats[0].asset_materialization.tags or {}
        assert tags.get("dagster/code_version") == INGEST_CODE_VERSION
        assert tags.get("dagster/data_version")
    # the catalog file holds views an analyst can query with the duckdb CLI
    import duckdb

    with duckdb.connect(str(vpr_home / "catalog.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw_scans").fetchone()[0] == n_ok
        assert con.execute("SELECT count(*) FROM scan_rejects WHERE reason = 'truncated'").fetchone()[0] == 1


def test_two_partitions_in_two_concurrent_runs(vpr_home, dagster_home):
    """Two processes ingest at once; a file present in both batches is kept exactly once."""
    shared = jpeg_bytes(photo(99))
    for b, seeds in (("left", range(0, 12)), ("right", range(100, 112))):
        folder = vpr_home / "inbox" / b
        folder.mkdir(parents=True)
        for s in seeds:
            (folder / f"card_{s}.jpg").write_bytes(jpeg_bytes(photo(s)))
        (folder / "shared.jpg").write_bytes(shared)
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", ["left", "right"])
    env = _env(vpr_home, dagster_home)
    procs = [_materialize("left", env), _materialize("right", env)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-3000:] for o in outs)
    cat = Catalog(vpr_home)
    assert sorted(cat.partitions("raw_scans")) == ["left", "right"]
    scans = cat.read("raw_scans")
    assert len(scans) == 25 and scans.scan_id.is_unique
    rejects = cat.read("scan_rejects")
    assert list(rejects.reason) == ["duplicate_file"]
    with dg.DagsterInstance.get() as instance:
        assert instance.get_materialized_partitions(dg.AssetKey("raw_scans")) == {"left", "right"}


def test_sensor_adds_new_inbox_batches_and_requests_their_runs(vpr_home, dagster_home):
    from vpr_assets.defs.ingestion.sensors import new_scan_batches_sensor

    (vpr_home / "inbox" / "fresh").mkdir(parents=True)
    (vpr_home / "inbox" / "fresh" / "a.jpg").write_bytes(jpeg_bytes(photo(1)))
    (vpr_home / "inbox" / ".incoming-half-copied").mkdir()
    with dg.DagsterInstance.get() as instance:
        result = new_scan_batches_sensor(dg.build_sensor_context(instance=instance))
        assert [r.partition_key for r in result.run_requests] == ["fresh"]
        assert result.dynamic_partitions_requests[0].partition_keys == ["fresh"]


def test_cli_ingest_then_dagster_materialize(vpr_home, dagster_home, tmp_path):
    src = tmp_path / "my scans"
    src.mkdir()
    for s in range(3):
        (src / f"c{s}.jpg").write_bytes(jpeg_bytes(photo(s)))
    env = _env(vpr_home, dagster_home)
    out = subprocess.run([VPR, "ingest", str(src), "--batch", "week-01"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (vpr_home / "inbox" / "week-01" / "c0.jpg").exists()
    p = _materialize("week-01", env)
    log = p.communicate(timeout=300)[0]
    assert p.returncode == 0, log[-3000:]
    assert len(Catalog(vpr_home).read("raw_scans", "week-01")) == 3
    again = subprocess.run([VPR, "ingest", str(src), "--batch", "week-01"], env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already" in again.stdout
    (src / "extra.jpg").write_bytes(jpeg_bytes(photo(9)))
    clash = subprocess.run([VPR, "ingest", str(src), "--batch", "week-01"], env=env, capture_output=True, text=True, timeout=120)
    assert clash.returncode == 2 and "already exists" in clash.stderr
