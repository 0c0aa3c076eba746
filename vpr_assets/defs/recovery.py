"""Run recovery: pool slots held by runs that are over, or whose process was killed, are freed.

Dagster claims a pool slot (`pool="torch"`, ...) in the instance's storage when a step starts and
frees it when the step ends. A run killed with `kill -9` never ends its step: its slot stays
claimed, every later step in that pool waits for it forever, and marking the run failed does not
free it either (the slot rows belong to the event log, not to the run record).

Two paths free them:

- Dagster's own: `run_monitoring.free_slots_after_run_end_seconds` in dagster.yaml makes the daemon
  free the slots of runs that have *ended* (failed, canceled, succeeded). Run monitoring marks
  daemon-launched runs whose worker died as failed, so those are covered while the daemon runs.
- `reconcile_pool_slots` (here) for what that misses: runs started from the command line
  (`dagster asset materialize`, `vpr ingest --materialize`) have no launcher watching them, so a
  killed one stays STARTED for ever. A run is taken as dead when the process that started it
  (the pid of its RUN_START event) no longer exists on this machine, or is a zombie, or is a
  younger process that reused the pid. Such a run is marked failed (with the reason in the event
  log) and its slots are freed. It runs from the `pool_slot_reconciler` sensor, before every
  `vpr` materialisation, and as `vpr recover`.

Only runs of this machine can be judged by their pid: with a run launcher that starts runs
elsewhere (Kubernetes, ECS, Docker) or an instance shared by several hosts (Postgres storage),
only the ended-run path applies.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.storage.dagster_run import FINISHED_STATUSES

from vpr_assets.defs.automation import default_sensor_status


@dataclass
class Reconciled:
    failed_runs: list[str] = field(default_factory=list)  # STARTED runs whose process was gone
    freed_runs: list[str] = field(default_factory=list)  # runs whose pool slots were freed

    def __bool__(self) -> bool:
        return bool(self.failed_runs or self.freed_runs)


def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as fh:
            for line in fh:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def process_alive(pid: int, started_before: float | None = None) -> bool:
    """True if `pid` runs on this machine, is not a zombie and (when known) started no later than
    `started_before` (a Unix time): a younger process with the same pid is another program."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return True  # no /proc (not Linux): existence is all we can tell
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):  # zombie or dead: killed, not yet reaped by its parent
        return False
    boot = _boot_time()
    if started_before is not None and boot is not None:
        started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
        if started > started_before + 2.0:  # clock-tick rounding
            return False
    return True


def run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the process that started the run (its RUN_START event), if recorded."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
    if not records:
        return None
    event = records[0].event_log_entry.dagster_event
    return getattr(event, "pid", None)


def _judges_pids(instance: dg.DagsterInstance) -> bool:
    """A pid says something only where every run of the instance runs on this machine: runs
    launched as local processes, and an instance whose storage is a local SQLite file. With
    Postgres (deploy/celery, deploy/k8s) a run may have been launched from another host, where
    its pid means nothing here: only the ended-run path applies."""
    from dagster._core.launcher import DefaultRunLauncher

    storage = instance.run_storage
    storage = getattr(storage, "_storage", storage)  # legacy wrappers hold the real storage
    return isinstance(instance.run_launcher, DefaultRunLauncher) and "sqlite" in type(storage).__module__.lower()


def reconcile_pool_slots(instance: dg.DagsterInstance, ended_grace_s: float = 0.0) -> Reconciled:
    """Fail runs holding pool slots whose process is gone, and free the slots of ended runs."""
    out = Reconciled()
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return out
    run_ids = storage.get_concurrency_run_ids()
    if not run_ids:
        return out
    judge = _judges_pids(instance)
    now = time.time()
    for record in instance.get_run_records(filters=dg.RunsFilter(run_ids=list(run_ids))):
        run = record.dagster_run
        if run.status == dg.DagsterRunStatus.STARTED and judge:
            pid = run_worker_pid(instance, run.run_id)
            if pid is not None and not process_alive(pid, started_before=record.start_time):
                instance.report_run_failed(
                    run, f"run worker process {pid} is gone (killed?); its pool slots are freed by "
                         "vpr_assets.defs.recovery")
                out.failed_runs.append(run.run_id)
                storage.free_concurrency_slots_for_run(run.run_id)
                out.freed_runs.append(run.run_id)
                continue
        if run.status in FINISHED_STATUSES:
            ended = record.end_time or record.update_timestamp.timestamp()
            if now - ended >= ended_grace_s:
                storage.free_concurrency_slots_for_run(run.run_id)
                out.freed_runs.append(run.run_id)
    return out


@dg.sensor(
    name="pool_slot_reconciler",
    description="Frees the pool slots (torch, ocr, catalog_writer) held by runs that have ended or "
    "whose process was killed, so later runs never wait for a dead one (vpr_assets.defs.recovery).",
    default_status=default_sensor_status(),
    minimum_interval_seconds=30,
)
def pool_slot_reconciler(context: dg.SensorEvaluationContext):
    done = reconcile_pool_slots(context.instance, ended_grace_s=30.0)
    if not done:
        return dg.SkipReason("no pool slot held by an ended or dead run")
    context.log.warning(f"marked failed (process gone): {done.failed_runs}; freed pool slots of: {done.freed_runs}")
    return dg.SkipReason(f"freed the pool slots of {len(done.freed_runs)} runs "
                         f"({len(done.failed_runs)} dead runs marked failed)")


sensors = [pool_slot_reconciler]
