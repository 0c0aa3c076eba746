"""Calm automation: how many runs the automation sensor launches on a finished demo (issue #13 item 5).

Builds the demo collection in a fresh data root and Dagster instance (`vpr demo`: two batches
through the whole graph, one model trained and promoted), then plays the `downstream_automation`
sensor as the daemon would: evaluate every asset's automation condition, launch what it requests
(in-process, one run per partition as the daemon groups them), evaluate again, until a tick
requests nothing. Two situations:

1. "opening `dagster dev` on a finished demo": the sensor's first ticks, no cursor;
2. "one UI run that recomputes nothing": `faiss_index` and `landmark_clusters` materialised again
   by hand with nothing changed, then the sensor's next ticks.

A calm graph launches 0 runs in both. Prints the requests of every tick.

3. with `--daemon SECONDS`: the real `dagster-daemon run` process on the same finished demo (its
   own sensor ticks and timing, every sensor of the code location running), for that long; prints
   the ticks each sensor made and the runs the daemon launched (0 is calm).

    .venv/bin/python bench/bench_automation.py [--per-place 10] [--keep DIR] [--daemon 240]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def sensor_ticks(instance, defs, max_ticks: int, label: str, cursor=None) -> tuple[int, object]:
    """Evaluate and launch until quiet; returns (runs launched, cursor)."""
    import dagster as dg

    from vpr_assets.runner import materialize_partitions

    launched = 0
    for tick in range(1, max_ticks + 1):
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor,
                                                   asset_selection=dg.AssetSelection.all())
        cursor = result.cursor
        runs: dict = defaultdict(list)  # partition -> keys (the daemon makes one run per partition)
        for key in defs.resolve_asset_graph().get_all_asset_keys():
            if not result.get_num_requested(key):
                continue
            for p in result.get_requested_partitions(key) or {None}:
                runs[p].append(key.to_user_string())
        print(f"  {label} tick {tick}: {len(runs)} run(s) requested"
              + "".join(f"\n    partition {p!r}: {', '.join(sorted(ks))}" for p, ks in sorted(runs.items(), key=str)))
        if not runs:
            return launched, cursor
        for p, keys in runs.items():
            materialize_partitions(keys, [p], raise_on_error=False, log_level="WARNING")
            launched += 1
    return launched, cursor


def daemon_runs(seconds: int) -> int:
    """Run `dagster-daemon run` on this instance and workspace for `seconds`; print what it did."""
    import subprocess

    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        before = {r.run_id for r in instance.get_runs()}
    log = Path(os.environ["DAGSTER_HOME"]) / "daemon.log"
    print(f"\n3. the real dagster-daemon for {seconds} s (log: {log})")
    exe = Path(sys.executable).with_name("dagster-daemon")
    t0 = time.time()
    with open(log, "w") as fh:
        proc = subprocess.Popen([str(exe), "run", "-w", str(ROOT / "workspace.yaml")], cwd=ROOT, stdout=fh,
                                stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=seconds)
            print(f"  the daemon exited early with code {proc.returncode}")
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=60)
    with dg.DagsterInstance.get() as instance:
        new = [r for r in instance.get_runs() if r.run_id not in before]
        print(f"  {time.time() - t0:.0f} s; sensor ticks by the daemon:")
        for name in sorted(_sensor_names()):
            ticks = [t for t in instance.get_ticks(_origin_id(instance, name), _selector_id(instance, name))
                     if t.timestamp >= t0] if _origin_id(instance, name) else []
            print(f"    {name}: {len(ticks)} tick(s), {sum(len(t.run_ids) for t in ticks)} run(s) requested")
        print(f"  runs launched while the daemon ran: {len(new)}"
              + "".join(f"\n    {r.job_name} {r.tags.get('dagster/partition', '')} {r.status.value}" for r in new))
    return len(new)


def _sensor_names() -> list[str]:
    from vpr_assets.definitions import defs

    return [s.name for s in defs.sensors or []]


def _state(instance, name: str):
    for state in instance.all_instigator_state():
        if state.instigator_name == name:
            return state
    return None


def _origin_id(instance, name: str):
    state = _state(instance, name)
    return state.instigator_origin_id if state else None


def _selector_id(instance, name: str):
    state = _state(instance, name)
    return state.selector_id if state else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-place", type=int, default=10, help="demo cards per place (as vpr demo)")
    ap.add_argument("--max-ticks", type=int, default=4)
    ap.add_argument("--keep", type=Path, help="build the demo here and keep it")
    ap.add_argument("--daemon", type=int, default=0, help="then run the real dagster-daemon this many seconds")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_automation_"))
    home, dhome = work / "vpr_data", work / "dagster_home"
    dhome.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", dhome / "dagster.yaml")
    os.environ.update({"VPR_HOME": str(home), "DAGSTER_HOME": str(dhome), "HF_HUB_OFFLINE": "1"})
    import dagster as dg

    from vpr_assets.definitions import defs
    from vpr_assets.demo import run_demo
    from vpr_assets.runner import materialize_partitions

    t0 = time.time()
    run_demo(n_per_place=args.per_place)
    print(f"\ndemo built in {time.time() - t0:.0f} s under {work}\n")
    with dg.DagsterInstance.get() as instance:
        before = instance.get_runs_count()
        print("1. opening dagster dev on the finished demo (the sensor starts without a cursor)")
        opened, cursor = sensor_ticks(instance, defs, args.max_ticks, "open")
        print("\n2. one hand-made run that recomputes nothing (faiss_index, landmark_clusters)")
        materialize_partitions(["landmark_clusters", "faiss_index"], [None], log_level="WARNING")
        after_ui, _ = sensor_ticks(instance, defs, args.max_ticks, "after the hand-made run", cursor)
        print(f"\nruns launched by automation: on opening {opened}, after an unchanged run {after_ui} "
              f"(runs in the instance before: {before}, now: {instance.get_runs_count()})")
    if args.daemon:
        daemon_runs(args.daemon)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
