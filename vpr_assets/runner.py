"""Materialise assets through the project's Dagster instance, so runs show in the UI afterwards."""

from __future__ import annotations

from typing import Sequence

from vpr_assets.paths import ensure_dagster_home_env


def add_batch_partition(batch: str) -> bool:
    """Register a scan batch as a partition in the Dagster instance; True if it was new."""
    from dagster import DagsterInstance

    from vpr_assets.core.ingest import validate_batch_name
    from vpr_assets.defs.partitions import SCAN_BATCHES

    validate_batch_name(batch)
    ensure_dagster_home_env()
    with DagsterInstance.get() as instance:
        if instance.has_dynamic_partition(SCAN_BATCHES, batch):
            return False
        instance.add_dynamic_partitions(SCAN_BATCHES, [batch])
        return True


def materialize_partitions(asset_keys: Sequence[str], partitions: Sequence[str | None], raise_on_error: bool = True,
                           run_config: dict | None = None, tags: dict | None = None, log_level: str | None = None):
    """One in-process run per partition (None = unpartitioned) recorded in DAGSTER_HOME's instance."""
    import dagster as dg

    from vpr_assets.definitions import defs

    ensure_dagster_home_env()
    if log_level:  # the console logger only; the instance's event log keeps everything
        run_config = {**(run_config or {}), "loggers": {"console": {"config": {"log_level": log_level}}}}
    results = []
    with dg.DagsterInstance.get() as instance:
        from vpr_assets.defs.recovery import reconcile_pool_slots

        freed = reconcile_pool_slots(instance)  # a killed earlier run must not hold a pool slot for ever
        if freed:
            import logging

            logging.getLogger(__name__).warning("freed pool slots of ended or dead runs %s (marked failed: %s)",
                                                freed.freed_runs, freed.failed_runs)
        job = defs.resolve_implicit_global_asset_job_def()
        selection = [dg.AssetKey(k) for k in asset_keys]
        for pk in partitions:
            res = job.execute_in_process(instance=instance, partition_key=pk, asset_selection=selection,
                                         raise_on_error=raise_on_error, run_config=run_config, tags=tags)
            results.append(res)
    return results
