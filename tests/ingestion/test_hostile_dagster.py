"""Hostile inputs through a real Dagster instance (issue #15): a real materialisation per test,
its blocking checks, and the catalog it leaves behind."""

from __future__ import annotations

import os

import dagster as dg

from tests.badinput import jpeg_bytes, photo
from vpr_assets.storage import Catalog


def _register(batch: str) -> None:
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", [batch])


def _run(batch: str):
    from vpr_assets.runner import materialize_partitions

    return materialize_partitions(["raw_scans", "scan_rejects"], [batch], raise_on_error=False)[0]


def _checks(res) -> dict:
    return {e.check_name: e.passed for e in res.get_asset_check_evaluations()}


def test_a_file_name_that_is_not_utf8_is_rejected_without_blocking_the_batch(vpr_home, dagster_home):
    """Finding 3: the reject row and the completeness check saw two escapings of the same name."""
    folder = vpr_home / "inbox" / "odd"
    folder.mkdir(parents=True)
    (folder / "good.jpg").write_bytes(jpeg_bytes(photo(1)))
    odd = os.path.join(os.fsencode(folder), b"caf\xe9_latin1.jpg")  # Latin-1 bytes: not UTF-8
    with open(odd, "wb") as fh:
        fh.write(jpeg_bytes(photo(2)))
    _register("odd")
    res = _run("odd")
    assert res.success
    assert _checks(res) == {"every_file_accounted_for": True, "scan_id_unique": True}
    rejects = Catalog(vpr_home).read("scan_rejects")
    [row] = rejects.to_dict("records")
    assert row["reason"] == "bad_file_name" and row["path"] == "inbox/odd/caf\\xe9_latin1.jpg"
    assert list(Catalog(vpr_home).read("raw_scans").file_name) == ["good.jpg"]
    assert _run("odd").success  # and again: re-runs are safe


def test_links_and_pipes_dropped_into_the_inbox_are_rejects_and_the_check_counts_them(vpr_home, dagster_home,
                                                                                      tmp_path):
    """Findings 4 and 5: a symlinked folder dropped into the inbox was skipped silently (and the
    completeness check passed); a FIFO hung the run."""
    folder = vpr_home / "inbox" / "dropped"
    folder.mkdir(parents=True)
    (folder / "good.jpg").write_bytes(jpeg_bytes(photo(1)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.jpg").write_bytes(jpeg_bytes(photo(2)))
    os.symlink(elsewhere, folder / "linked_folder")
    os.symlink("/etc/passwd", folder / "passwd.jpg")
    os.mkfifo(folder / "pipe.jpg")
    _register("dropped")
    res = _run("dropped")
    assert res.success
    assert _checks(res) == {"every_file_accounted_for": True, "scan_id_unique": True}
    rejects = dict(zip(*Catalog(vpr_home).read("scan_rejects", columns=["file_name", "reason"]).T.values))
    assert rejects == {"linked_folder": "link_outside_batch", "passwd.jpg": "link_outside_batch",
                       "pipe.jpg": "special_file"}
    assert list(Catalog(vpr_home).read("raw_scans").file_name) == ["good.jpg"]


def test_vpr_ingest_of_a_folder_with_links_and_a_pipe_reports_instead_of_crashing(vpr_home, dagster_home, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from tests.ingestion.test_hostile_inputs import EXPECTED_NOT_COPIED, _hostile_source

    src = _hostile_source(tmp_path)
    vpr = str(Path(sys.executable).with_name("vpr"))
    out = subprocess.run([vpr, "ingest", str(src), "--batch", "mixed"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and f"not copied ({len(EXPECTED_NOT_COPIED)};" in out.stderr
    assert not list((vpr_home / "inbox").glob(".incoming-*"))
    res = _run("mixed")
    assert res.success and all(_checks(res).values())
    reasons = sorted(Catalog(vpr_home).read("scan_rejects").reason)
    assert reasons == sorted(EXPECTED_NOT_COPIED.values())


def test_vpr_ingest_refuses_a_batch_name_storage_cannot_hold_before_registering_it(vpr_home, dagster_home,
                                                                                   tmp_path):
    """Finding 7: 40 CJK characters registered fine, then every materialisation failed."""
    import subprocess
    import sys
    from pathlib import Path

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jpg").write_bytes(jpeg_bytes(photo(1)))
    vpr = str(Path(sys.executable).with_name("vpr"))
    for name in ("東京" * 20, "_all"):
        out = subprocess.run([vpr, "ingest", str(src), "--batch", name], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
        assert out.returncode == 2 and "invalid batch name" in out.stderr and "Traceback" not in out.stderr
    inbox = vpr_home / "inbox"
    assert not inbox.exists() or [p.name for p in inbox.iterdir() if not p.name.startswith(".")] == []
    with dg.DagsterInstance.get() as instance:
        assert instance.get_dynamic_partitions("scan_batches") == []


def test_the_sensor_does_not_register_inbox_folders_with_invalid_names(vpr_home, dagster_home):
    from vpr_assets.defs.ingestion.sensors import new_scan_batches_sensor

    for name in ("東京" * 20, "_all", "fine"):
        (vpr_home / "inbox" / name).mkdir(parents=True)
        (vpr_home / "inbox" / name / "a.jpg").write_bytes(jpeg_bytes(photo(1)))
    with dg.DagsterInstance.get() as instance:
        result = new_scan_batches_sensor(dg.build_sensor_context(instance=instance))
        assert [r.partition_key for r in result.run_requests] == ["fine"]
        assert [list(r.partition_keys) for r in result.dynamic_partitions_requests] == [["fine"]]


def test_a_held_catalog_is_reported_not_a_silent_success_and_a_later_run_repairs_the_views(vpr_home, dagster_home,
                                                                                          monkeypatch):
    """Finding 8: an analyst's open connection (read-only, as in the README) stalled every view
    sync 60 s and the run reported success without views; the warning went to stderr only."""
    import subprocess
    import sys
    import time

    import duckdb

    monkeypatch.setenv("VPR_VIEW_SYNC_TIMEOUT_S", "3")
    db = vpr_home / "catalog.duckdb"
    duckdb.connect(str(db)).close()  # an existing, empty catalog
    folder = vpr_home / "inbox" / "held"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(jpeg_bytes(photo(1)))
    _register("held")
    analyst = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], "
                                "read_only=True); print('open', flush=True); time.sleep(600)", str(db)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert analyst.stdout.readline().strip() == "open"
        t0 = time.monotonic()
        res = _run("held")
        assert res.success and time.monotonic() - t0 < 45  # bounded: ~3 s of retries, not 60 s per sync
        mats = {m.asset_key.to_user_string(): m.metadata for m in res.asset_materializations_for_node("ingest_scans")}
        assert mats["raw_scans"]["catalog_views_synced"].value is False
        assert mats["raw_scans"]["catalog_views_pending"].value == ["raw_scans", "scan_rejects"]
        with dg.DagsterInstance.get() as instance:
            warnings = [e.message for e in instance.all_logs(res.run_id) if e.level == 30 and e.message]
        assert any("NOT synced" in w for w in warnings), warnings  # in the run's event log
        assert Catalog(vpr_home).views_pending() == ["raw_scans", "scan_rejects"]
    finally:
        analyst.kill()
        analyst.wait()
    res = _run("held")  # the analyst is gone: the next run defines the pending views
    mats = {m.asset_key.to_user_string(): m.metadata for m in res.asset_materializations_for_node("ingest_scans")}
    assert mats["raw_scans"]["catalog_views_synced"].value is True
    assert Catalog(vpr_home).views_pending() == []
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw_scans").fetchone()[0] == 1
