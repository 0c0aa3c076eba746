"""Per-run overhead of a per-batch chain launched from the shell: `dagster asset materialize` over
six steps of one small batch, with each executor setting, in the same run.

    .venv/bin/python bench/bench_run_overhead.py            # 3 cards per batch
    .venv/bin/python bench/bench_run_overhead.py --cards 8

Settings compared (`execution: {config: {mode: ...}}` of the code location's executor, defs/executor.py):
  spawn        each step a fresh Python process that imports Dagster, torch and the project (the
               multiprocess default before this bench)
  forkserver   steps forked from a server process that preloaded `vpr_assets.definitions` (default)
  in_process   every step in the run's own process
Every setting gets its own batch of identical cards, so each does the same work. Prints wall
seconds per chain and the ratio to spawn.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import ROOT, make_scans

CHAIN = ["raw_scans", "scan_rejects", "image_embeddings", "ocr_text", "text_embeddings", "scan_quality", "derived_scans"]
SETTINGS = {name: {"mode": name} for name in ("spawn", "forkserver", "in_process")}  # defs/executor.py


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cards", type=int, default=3)
    ap.add_argument("--settings", default=",".join(SETTINGS))
    args = ap.parse_args()
    dagster = str(Path(sys.executable).with_name("dagster"))
    work = Path(tempfile.mkdtemp(prefix="bench_overhead_"))
    try:
        home, dhome = work / "vpr", work / "dagster_home"
        dhome.mkdir(parents=True)
        shutil.copy(ROOT / "dagster_home" / "dagster.yaml", dhome / "dagster.yaml")
        env = {**os.environ, "VPR_HOME": str(home), "DAGSTER_HOME": str(dhome), "VPR_AUTOMATION": "off"}
        names = [s for s in args.settings.split(",") if s]
        for name in names:
            make_scans(home / "inbox" / f"b_{name}", args.cards, size=(1000, 640))
        subprocess.run([sys.executable, "-c", "import dagster as dg; i = dg.DagsterInstance.get(); "
                        f"i.add_dynamic_partitions('scan_batches', {[f'b_{n}' for n in names]!r})"],
                       env=env, check=True, cwd=ROOT)
        results = {}
        for name in names:
            cfg = work / f"{name}.yaml"
            cfg.write_text(yaml.safe_dump({"execution": {"config": SETTINGS[name]}}))
            t0 = time.perf_counter()
            out = subprocess.run([dagster, "asset", "materialize", "-m", "vpr_assets.definitions", "--select",
                                  ",".join(CHAIN), "--partition", f"b_{name}", "-c", str(cfg)],
                                 env=env, cwd=ROOT, capture_output=True, text=True)
            results[name] = time.perf_counter() - t0
            ok = out.returncode == 0
            print(f"{name:11} {results[name]:7.1f} s  {'ok' if ok else 'FAILED'}", flush=True)
            if not ok:
                print((out.stdout + out.stderr)[-3000:])
        base = results.get("spawn")
        if base:
            for name, sec in results.items():
                print(f"{name:11} x{base / sec:.2f} faster than spawn")
        print(f"chain: {len(CHAIN)} assets in 6 steps, {args.cards} cards per batch, "
              f"{os.cpu_count()} CPUs (other jobs may load the machine)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
