"""Subset runs of multi-assets: `scan_quality` alone writes scan_quality alone (tests/curation);
`raw_scans` alone is allowed (so upstream selections such as `*scan_quality` work) and still writes
`scan_rejects`, because each file of a batch lands in exactly one of the two tables."""

from __future__ import annotations

import dagster as dg

from tests.badinput import jpeg_bytes, photo
from vpr_assets.runner import materialize_partitions
from vpr_assets.storage import Catalog


def test_raw_scans_alone_still_accounts_for_every_file(vpr_home, dagster_home):
    batch = vpr_home / "inbox" / "b1"
    batch.mkdir(parents=True)
    (batch / "a.jpg").write_bytes(jpeg_bytes(photo(1)))
    (batch / "junk.jpg").write_bytes(b"not a picture")
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", ["b1"])
    res = materialize_partitions(["raw_scans"], ["b1"])[0]
    assert res.success  # the blocking check every_file_accounted_for passed
    assert [m.asset_key.to_user_string() for m in res.get_asset_materialization_events()] == ["raw_scans"]
    cat = Catalog(vpr_home)
    assert len(cat.read("raw_scans", "b1")) == 1 and list(cat.read("scan_rejects", "b1").file_name) == ["junk.jpg"]
