"""Issue #15, finding 2: a run killed with `kill -9` inside a pooled asset kept its `torch` pool
slot, so every later run waited for ever. Real instance (the project's dagster.yaml), a real
`dagster asset materialize` subprocess killed with SIGKILL, then a re-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

DAGSTER = str(Path(sys.executable).with_name("dagster"))

POOLED = textwrap.dedent('''
    import os, time
    from pathlib import Path
    import dagster as dg

    @dg.asset(pool="torch")
    def pooled_step():
        marker = Path(os.environ["MARKER_DIR"])
        (marker / f"started-{os.getpid()}").write_text("x")
        if os.environ.get("HANG") == "1":
            time.sleep(600)  # killed here, holding the torch slot
        return 1

    defs = dg.Definitions(assets=[pooled_step])
''')


def _launch(code: Path, env: dict, hang: bool) -> subprocess.Popen:
    return subprocess.Popen([DAGSTER, "asset", "materialize", "-f", str(code), "--select", "pooled_step"],
                            cwd=code.parent, env={**env, "HANG": "1" if hang else "0"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _torch_claims(instance) -> list:
    return list(instance.event_log_storage.get_concurrency_info("torch").claimed_slots)


@pytest.mark.slow  # two dagster CLI processes, ~35 s
def test_killed_run_frees_its_pool_slot_and_a_rerun_completes(tmp_path, dagster_home):
    from vpr_assets.defs.recovery import reconcile_pool_slots

    code = tmp_path / "pooled.py"
    code.write_text(POOLED)
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "MARKER_DIR": str(markers)}
    victim = _launch(code, env, hang=True)
    deadline = time.monotonic() + 120
    while not list(markers.iterdir()):
        assert victim.poll() is None, victim.stdout.read()
        assert time.monotonic() < deadline, "the pooled step never started"
        time.sleep(0.5)
    os.killpg(victim.pid, signal.SIGKILL)  # the CLI and its step process, mid-step
    victim.wait(30)

    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.STARTED  # nobody watches a command-line run
        assert _torch_claims(instance), "the killed run should still hold the torch slot (the bug)"

        # the bug: without recovery a re-run waits for the slot for ever
        waiting = _launch(code, env, hang=False)
        try:
            waiting.wait(20)
            raise AssertionError(f"re-run finished while the slot was held: {waiting.stdout.read()}")
        except subprocess.TimeoutExpired:
            pass
        done = reconcile_pool_slots(instance)
        assert run.run_id in done.failed_runs and run.run_id in done.freed_runs
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        # the waiting re-run now gets the slot and completes
        assert waiting.wait(120) == 0
        assert not _torch_claims(instance)
        statuses = sorted(r.status.value for r in instance.get_runs())
        assert statuses == ["FAILURE", "SUCCESS"]
        assert not reconcile_pool_slots(instance)  # nothing left to do: safe to run again


def test_a_run_marked_failed_by_hand_gives_its_slot_back(tmp_path, dagster_home):
    """Marking the killed run failed (UI / API) did not free the slot; the ended-run path does."""
    from vpr_assets.defs.recovery import reconcile_pool_slots

    with dg.DagsterInstance.get() as instance:
        run = instance.create_run_for_job(job_def=_one_op_job(), run_id=None)
        instance.event_log_storage.set_concurrency_slots("torch", 1)
        instance.event_log_storage.claim_concurrency_slot("torch", run.run_id, "step")
        assert _torch_claims(instance)
        instance.report_run_failed(run, "marked failed by hand")
        assert _torch_claims(instance)  # what the issue saw: still held
        assert reconcile_pool_slots(instance).freed_runs == [run.run_id]
        assert not _torch_claims(instance)


def _one_op_job():
    @dg.op
    def step():
        return 1

    @dg.job
    def one():
        step()

    return one


def test_the_recovery_sensor_and_dagster_setting_are_declared():
    import yaml

    from vpr_assets.definitions import defs

    assert defs.resolve_sensor_def("pool_slot_reconciler")
    cfg = yaml.safe_load((Path(__file__).resolve().parents[2] / "dagster_home" / "dagster.yaml").read_text())
    assert cfg["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
