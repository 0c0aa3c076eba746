"""`vpr`: the command-line entry point (ingest, demo, status, search, evaluate, serve, models).

Every command honours VPR_HOME and DAGSTER_HOME, falling back to the project's own vpr_data/ and
dagster_home/. Heavy imports happen inside the commands so `vpr --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _add_partition(batch: str) -> bool:
    """Register a scan batch as a partition in the Dagster instance; True if it was new."""
    from dagster import DagsterInstance

    from vpr_assets.defs.partitions import SCAN_BATCHES
    from vpr_assets.paths import ensure_dagster_home_env

    ensure_dagster_home_env()
    with DagsterInstance.get() as instance:
        if instance.has_dynamic_partition(SCAN_BATCHES, batch):
            return False
        instance.add_dynamic_partitions(SCAN_BATCHES, [batch])
        return True


def cmd_ingest(args: argparse.Namespace) -> int:
    from vpr_assets.core.ingest import copy_batch_into_inbox
    from vpr_assets.paths import inbox_dir, vpr_home

    source = Path(args.path)
    batch = args.batch or source.resolve().name
    target, created = copy_batch_into_inbox(source, inbox_dir(vpr_home()), batch)
    new_partition = _add_partition(batch)
    n = sum(1 for p in target.rglob("*") if p.is_file())
    print(f"batch {batch!r}: {'copied' if created else 'already in the inbox'} ({n} files) -> {target}")
    print(f"partition {batch!r} {'registered' if new_partition else 'already registered'} in {vpr_home_hint()}")
    if args.materialize:
        from vpr_assets.runner import materialize_partitions

        materialize_partitions(["raw_scans", "scan_rejects"], [batch])
    else:
        print(f"next: dagster asset materialize -m vpr_assets --select raw_scans --partition {batch!r}"
              "  (or let the new_scan_batches sensor pick it up in `dagster dev`)")
    return 0


def vpr_home_hint() -> str:
    from vpr_assets.paths import dagster_home

    return f"DAGSTER_HOME={dagster_home()}"


def cmd_status(args: argparse.Namespace) -> int:
    from vpr_assets.paths import dagster_home, vpr_home
    from vpr_assets.storage import Catalog

    cat = Catalog(vpr_home())
    out = {"VPR_HOME": str(cat.home), "DAGSTER_HOME": str(dagster_home()), "catalog": str(cat.db_path), "tables": {}}
    with cat.connect() as con:
        for t in cat.tables():
            out["tables"][t] = {"rows": con.execute(f"SELECT count(*) FROM {t}").fetchone()[0],
                                "partitions": len(cat.partitions(t))}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"VPR_HOME     {out['VPR_HOME']}\nDAGSTER_HOME {out['DAGSTER_HOME']}\ncatalog      {out['catalog']}")
        for t, v in out["tables"].items():
            print(f"  {t:<22} {v['rows']:>8} rows  {v['partitions']:>4} partitions")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from vpr_assets.demo import run_demo

    return run_demo(n_per_place=args.per_place, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vpr", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", help="copy a folder of scans into the inbox as a new batch (partition)")
    s.add_argument("path", help="folder with image files and an optional descriptions.csv (file,description)")
    s.add_argument("--batch", help="batch name (default: the folder's name)")
    s.add_argument("--materialize", action="store_true", help="also materialise raw_scans for the batch now")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("status", help="data root, instance and catalog tables")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("demo", help="generate a demo collection, ingest it as two batches and materialise the graph")
    s.add_argument("--per-place", type=int, default=8, help="cards per demo place")
    s.add_argument("--seed", type=int, default=7)
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"vpr {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
