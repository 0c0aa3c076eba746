"""The collection's landmark lexicon is an asset of the graph: materialised only when the
descriptions of the collection change, and each new version makes every batch's geo_words stale
for automation (this replaced a sensor that did the same out of sight)."""

from __future__ import annotations

import json

import dagster as dg
import pyarrow as pa

from vpr_assets.core.ingest import RAW_SCANS_SCHEMA
from vpr_assets.runner import materialize_partitions
from vpr_assets.storage import Catalog

DESCRIPTIONS = {
    "b1": ["Tower Bridge, London", "Tower Bridge at night, London"],
    "b2": ["Brandenburger Tor, Berlin", "Notre-Dame de Paris"],
}


def _write_raw_scans(cat: Catalog, batch: str, descriptions: list[str]) -> None:
    rows = [{"scan_id": f"{batch}-{i}", "batch": batch, "path": f"inbox/{batch}/{i}.jpg", "file_name": f"{i}.jpg",
             "description": d} for i, d in enumerate(descriptions)]
    cat.write_partition("raw_scans", batch, pa.Table.from_pylist(rows, schema=RAW_SCANS_SCHEMA))


def _lexicon_materialisations(res) -> list:
    return res.asset_materializations_for_node("landmark_lexicon")


def test_lexicon_materialises_only_on_change_and_makes_geo_words_stale(vpr_home, dagster_home):
    from vpr_assets.definitions import defs

    cat = Catalog(vpr_home)
    for b, d in DESCRIPTIONS.items():
        _write_raw_scans(cat, b, d)
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", list(DESCRIPTIONS))
        for key in ("raw_scans", "ocr_text"):
            for b in DESCRIPTIONS:
                instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=b))

    first = materialize_partitions(["landmark_lexicon"], [None])[0]
    (mat,) = _lexicon_materialisations(first)
    saved = json.loads((vpr_home / "models" / "landmark_lexicon.json").read_text())
    assert "tower bridge" in saved["landmarks"]  # on two cards: a landmark of the collection
    assert mat.metadata["refitted"].value and mat.metadata["landmarks"].value == len(saved["landmarks"])
    assert mat.tags["dagster/data_version"] == saved["fitted_on"]["version"]

    # the same descriptions: no refit and no new materialisation
    assert _lexicon_materialisations(materialize_partitions(["landmark_lexicon"], [None])[0]) == []

    with dg.DagsterInstance.get() as instance:
        for b in DESCRIPTIONS:
            instance.report_runless_asset_event(dg.AssetMaterialization("geo_words", partition=b))
        settled = dg.evaluate_automation_conditions(defs=defs, instance=instance,
                                                    asset_selection=dg.AssetSelection.assets("geo_words"))
        assert settled.get_requested_partitions(dg.AssetKey("geo_words")) == set()

    # a batch's descriptions change: a new lexicon version, and every batch's geo_words is requested
    _write_raw_scans(cat, "b2", DESCRIPTIONS["b2"] + ["Brandenburger Tor in winter, Berlin"])
    changed = materialize_partitions(["landmark_lexicon"], [None])[0]
    (mat2,) = _lexicon_materialisations(changed)
    assert mat2.tags["dagster/data_version"] != mat.tags["dagster/data_version"]
    assert "brandenburger tor" in json.loads((vpr_home / "models" / "landmark_lexicon.json").read_text())["landmarks"]
    with dg.DagsterInstance.get() as instance:
        after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor,
                                                  asset_selection=dg.AssetSelection.assets("geo_words"))
        assert after.get_requested_partitions(dg.AssetKey("geo_words")) == set(DESCRIPTIONS)


def test_a_damaged_lexicon_file_is_refitted(vpr_home, dagster_home):
    cat = Catalog(vpr_home)
    _write_raw_scans(cat, "b1", DESCRIPTIONS["b1"])
    (vpr_home / "models").mkdir()
    (vpr_home / "models" / "landmark_lexicon.json").write_text("{ not json")
    res = materialize_partitions(["landmark_lexicon"], [None])[0]
    (mat,) = _lexicon_materialisations(res)
    assert mat.metadata["refitted"].value
    assert "tower bridge" in json.loads((vpr_home / "models" / "landmark_lexicon.json").read_text())["landmarks"]
