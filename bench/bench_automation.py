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

    .venv/bin/python bench/bench_automation.py [--per-place 10] [--keep DIR]
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-place", type=int, default=10, help="demo cards per place (as vpr demo)")
    ap.add_argument("--max-ticks", type=int, default=4)
    ap.add_argument("--keep", type=Path, help="build the demo here and keep it")
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
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
