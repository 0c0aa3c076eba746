"""After an OCR change, re-reading the collection is a decision: `ocr_text`'s code version carries the
OCR pipeline's version (the UI shows changed code), and the caption_ocr resource's `keep_older_reads`
keeps cards read with other settings when a batch runs again; `force` still reads them all."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import pyarrow as pa

from vpr_assets.core.text.ocr_version import OCR_PIPELINE_VERSION
from vpr_assets.runner import materialize_partitions
from vpr_assets.storage import Catalog

POSTCARDS = Path(__file__).resolve().parents[2] / "data" / "geo_testset" / "images" / "europosts"
OLDER = {"ops": {"ocr_text": {"config": {"min_confidence": 0.3}}}}  # stands for an older pipeline's settings
KEEP = {"resources": {"caption_ocr": {"config": {"keep_older_reads": True}}}}


def _ocr(run_config: dict | None = None) -> dict:
    res = materialize_partitions(["ocr_text"], ["b"], run_config=run_config)[0]
    assert res.success
    (mat,) = res.asset_materializations_for_node("ocr_text")
    return {"tags": mat.tags, **{k: v.value for k, v in mat.metadata.items()}}


def test_keep_older_reads_keeps_cards_and_force_reads_them_again(vpr_home, dagster_home, monkeypatch):
    inbox = vpr_home / "inbox" / "b"
    inbox.mkdir(parents=True)
    for card in sorted(POSTCARDS.glob("*.jpg"))[:2]:
        shutil.copy(card, inbox / card.name)
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", ["b"])
    assert materialize_partitions(["raw_scans", "scan_rejects"], ["b"])[0].success
    cat = Catalog(vpr_home)

    first = _ocr(OLDER)
    assert first["ocr_now"] == 2 and first["tags"]["dagster/code_version"].endswith(OCR_PIPELINE_VERSION)
    before = cat.read("ocr_text", "b").set_index("scan_id")

    kept = _ocr(KEEP)  # today's settings, older reads kept: nothing is read
    assert (kept["ocr_now"], kept["reused"], kept["kept_on_older_settings"]) == (0, 2, 2)
    after = cat.read("ocr_text", "b").set_index("scan_id")
    assert after.settings_hash.equals(before.settings_hash) and after.text.equals(before.text)
    assert kept["tags"]["dagster/data_version"] == first["tags"]["dagster/data_version"]  # same content

    monkeypatch.setenv("VPR_OCR_KEEP_OLDER_READS", "1")  # the same policy from the environment
    assert _ocr()["kept_on_older_settings"] == 2
    forced = _ocr({"ops": {"ocr_text": {"config": {"force": True}}}})  # an explicit re-read beats the policy
    assert (forced["ocr_now"], forced["kept_on_older_settings"]) == (2, 0)
    monkeypatch.delenv("VPR_OCR_KEEP_OLDER_READS")
    assert cat.read("ocr_text", "b").settings_hash.nunique() == 1
    assert set(cat.read("ocr_text", "b").settings_hash) != set(before.settings_hash)

    monkeypatch.setenv("VPR_OCR_KEEP_OLDER_READS", "maybe")  # a typo fails the run with the reason
    res = materialize_partitions(["ocr_text"], ["b"], raise_on_error=False)[0]
    assert not res.success
    failure = res.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "VPR_OCR_KEEP_OLDER_READS='maybe'" in failure.description

    # After an OCR change, the batch shows as changed code, and automation does not start its re-read.
    # (The last run's record, as an older pipeline would have written it: only the code version differs.)
    from dagster._core.definitions.data_version import StaleCauseCategory, StaleStatus
    from dagster._utils.test.data_versions import get_stale_status_resolver  # Dagster's own test helper

    from vpr_assets.definitions import defs

    key = dg.AssetKey("ocr_text")
    assets = list(defs.resolve_asset_graph().assets_defs)
    with dg.DagsterInstance.get() as instance:
        assert get_stale_status_resolver(instance, assets).get_status(key, "b") == StaleStatus.FRESH
        tags = {**forced["tags"], "dagster/code_version": "ocr-text-v1+caption-ocr-0"}
        instance.report_runless_asset_event(dg.AssetMaterialization("ocr_text", partition="b", tags=tags))
        resolver = get_stale_status_resolver(instance, assets)
        assert resolver.get_status(key, "b") == StaleStatus.STALE
        assert [c.category for c in resolver.get_stale_causes(key, "b")] == [StaleCauseCategory.CODE]
        settled = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=dg.AssetSelection.assets(key))
        assert settled.get_requested_partitions(key) == set()


def test_status_counts_cards_left_on_an_older_ocr_pipeline(vpr_home, dagster_home, capsys):
    from vpr_assets.cli import main
    from vpr_assets.storage.schemas import OCR_TEXT_SCHEMA

    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ocr"] == {"pipeline": OCR_PIPELINE_VERSION, "cards": {}, "older": 0}

    def rows(batch: str, version: str, n: int) -> pa.Table:
        return pa.Table.from_pylist([{"scan_id": f"{batch}{i}", "batch": batch, "text": "NICE", "boxes": [],
                                      "n_boxes": 0, "settings_hash": version[-1],
                                      "settings_json": json.dumps({"version": version})} for i in range(n)],
                                    schema=OCR_TEXT_SCHEMA)

    cat = Catalog(vpr_home)
    cat.write_partition("ocr_text", "old", rows("old", "caption-ocr-2", 3))
    cat.write_partition("ocr_text", "new", rows("new", OCR_PIPELINE_VERSION, 2))
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ocr"] == {
        "pipeline": OCR_PIPELINE_VERSION, "cards": {"caption-ocr-2": 3, OCR_PIPELINE_VERSION: 2}, "older": 3}
    assert main(["status"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("ocr "))
    assert f"2 cards read by {OCR_PIPELINE_VERSION} (current), 3 by older pipelines (caption-ocr-2: 3)" in line

