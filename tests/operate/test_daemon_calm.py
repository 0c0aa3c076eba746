"""Calm automation under the real daemon (issue #13 item 5): on a finished collection, a running
`dagster-daemon` ticks every sensor and launches nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_daemon_launches_no_run_on_a_finished_demo(vpr_home, dagster_home, monkeypatch):
    import dagster as dg

    from vpr_assets.definitions import defs
    from vpr_assets.demo import run_demo

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert run_demo(n_per_place=4) == 0  # the whole graph, both batches, one model trained
    with dg.DagsterInstance.get() as instance:
        before = {r.run_id for r in instance.get_runs()}
    t0 = time.time()
    log = dagster_home / "daemon.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w",
                                 str(PROJECT_ROOT / "workspace.yaml")], cwd=PROJECT_ROOT, stdout=fh,
                                stderr=subprocess.STDOUT, env=os.environ.copy())
        try:
            with pytest.raises(subprocess.TimeoutExpired):  # it must still be running when we stop it
                proc.wait(timeout=100)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    with dg.DagsterInstance.get() as instance:
        states = {s.instigator_name: s for s in instance.all_instigator_state()}
        automation = states["downstream_automation"]
        ticks = [t for t in instance.get_ticks(automation.instigator_origin_id, automation.selector_id)
                 if t.timestamp >= t0]
        new_runs = [r for r in instance.get_runs() if r.run_id not in before]
    assert len(ticks) >= 2, f"the daemon's automation sensor did not tick (log: {log.read_text()[-2000:]})"
    assert not new_runs, [(r.job_name, r.tags.get("dagster/partition")) for r in new_runs]
    assert {s.name for s in defs.sensors} <= set(states)  # every sensor of the location was evaluated
