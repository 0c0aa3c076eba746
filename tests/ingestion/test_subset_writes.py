"""Subset runs of multi-assets: `scan_quality` alone writes scan_quality alone; `raw_scans` and
`scan_rejects` are one decision per file, cannot be subset, and a run asking for one makes both (as
the Dagster UI does), so no file is ever unaccounted for."""

from __future__ import annotations

import dagster as dg
import pytest

from tests.badinput import jpeg_bytes, photo
from vpr_assets.runner import materialize_partitions
from vpr_assets.storage import Catalog


def test_ingestion_is_one_decision_per_file(vpr_home, dagster_home):
    from vpr_assets.definitions import defs

    batch = vpr_home / "inbox" / "b1"
    batch.mkdir(parents=True)
    (batch / "a.jpg").write_bytes(jpeg_bytes(photo(1)))
    (batch / "junk.jpg").write_bytes(b"not a picture")
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", ["b1"])
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.get() as instance, pytest.raises(dg.DagsterInvalidSubsetError):
        job.execute_in_process(instance=instance, partition_key="b1", asset_selection=[dg.AssetKey("raw_scans")])
    res = materialize_partitions(["raw_scans"], ["b1"])[0]  # the runner brings scan_rejects along
    assert {m.asset_key.to_user_string() for m in res.get_asset_materialization_events()} == {"raw_scans", "scan_rejects"}
    cat = Catalog(vpr_home)
    assert len(cat.read("raw_scans", "b1")) == 1 and list(cat.read("scan_rejects", "b1").file_name) == ["junk.jpg"]
