"""A sensor, running by default, that turns each new inbox folder into a partition and a run."""


import dagster as dg

from vpr_assets.core.ingest import inbox_batches, invalid_batch_name
from vpr_assets.defs.automation import default_sensor_status
from vpr_assets.defs.partitions import SCAN_BATCHES, scan_batches
from vpr_assets.paths import inbox_dir


@dg.sensor(
    name="new_scan_batches",
    description="Adds each new $VPR_HOME/inbox/<batch>/ folder as a scan_batches partition and requests "
    "its raw_scans run; downstream assets follow through their automation conditions.",
    asset_selection=dg.AssetSelection.assets("raw_scans", "scan_rejects"),
    default_status=default_sensor_status(),
    minimum_interval_seconds=30,
)
def new_scan_batches_sensor(context: dg.SensorEvaluationContext) :
    batches, refused = [], []
    for b in inbox_batches(inbox_dir()):
        (refused if invalid_batch_name(b) else batches).append(b)
    for b in refused:  # never registered: a partition that cannot be stored fails every run
        context.log.warning(f"inbox folder skipped: {invalid_batch_name(b)}; rename it")
    registered = set(context.instance.get_dynamic_partitions(SCAN_BATCHES))
    materialized = context.instance.get_materialized_partitions(dg.AssetKey("raw_scans"))
    new_keys = [b for b in batches if b not in registered]
    todo = [b for b in batches if b not in materialized]
    if not new_keys and not todo:
        return dg.SkipReason(f"{len(batches)} inbox batches, all ingested"
                             + (f"; {len(refused)} folders with invalid batch names skipped: {refused[:5]}" if refused else ""))
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=b, run_key=f"raw_scans:{b}") for b in todo],
        dynamic_partitions_requests=[scan_batches.build_add_request(new_keys)] if new_keys else [],
    )
