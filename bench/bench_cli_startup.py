"""`vpr` start-up cost: wall time of commands that should answer at once, and what they import.

    .venv/bin/python bench/bench_cli_startup.py [--repeat 5] [--home DIR]

Each command runs `--repeat` times as a fresh process (`python -m vpr_assets.cli ...`); the median
wall time is printed beside a bare `python -c pass` measured in the same run (the floor no
command can beat). `-X importtime` on one extra run says whether Dagster, torch, DuckDB or MLflow
were imported. `status` and `search` run against --home (default: a fresh empty data root, so they
answer "no index"/"no tables"; point it at a demo store to time a real search).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("dagster", "torch", "duckdb", "mlflow", "timm", "easyocr", "faiss", "fastapi")


def run(argv: list[str], env: dict, importtime: bool = False) -> tuple[float, int, str]:
    cmd = [sys.executable] + (["-X", "importtime"] if importtime else []) + argv
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return time.perf_counter() - t0, p.returncode, p.stderr


def imported(stderr: str) -> list[str]:
    tops = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            tops.add(name.split(".")[0])
    return [h for h in HEAVY if h in tops]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--home", help="VPR_HOME for status/search (default: a fresh empty one)")
    ap.add_argument("--image", default=str(ROOT / "tests" / "fuzz_crashers" / "tiff_TypeError.tif"),
                    help="query picture for `vpr search` (default: a file it refuses, so the row times the "
                    "start-up and the error path, not a search)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vpr_cli_bench_"))
    home = Path(args.home) if args.home else tmp / "vpr_home"
    env = {**os.environ, "VPR_HOME": str(home), "DAGSTER_HOME": str(tmp / "dagster_home")}
    (tmp / "dagster_home").mkdir(parents=True, exist_ok=True)
    cli = ["-m", "vpr_assets.cli"]
    commands = {
        "python -c pass (floor)": ["-c", "pass"],
        "vpr --help": cli + ["--help"],
        "vpr (usage error)": cli + ["no-such-command"],
        "vpr search --help": cli + ["search", "--help"],
        "vpr status --json": cli + ["status", "--json"],
        "vpr models --json": cli + ["models", "--json"],
        "vpr search IMAGE --json (refused: see exit)": cli + ["search", args.image, "--json"],
    }
    print(f"| command | median s ({args.repeat} runs) | exit | heavy imports |")
    print("|---|---|---|---|")
    for label, argv in commands.items():
        times, rc = [], 0
        for _ in range(args.repeat):
            secs, rc, _ = run(argv, env)
            times.append(secs)
        _, _, err = run(argv, env, importtime=True)
        print(f"| `{label}` | {statistics.median(times):.2f} | {rc} | {', '.join(imported(err)) or '-'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
