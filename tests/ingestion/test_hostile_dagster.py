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
