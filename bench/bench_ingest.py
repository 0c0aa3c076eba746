"""Ingestion throughput: `ingest_batch` (decode, sha256, perceptual hashes, thumbnails) with worker
processes, against the naive single-process loop over the same files, in the same run.

    .venv/bin/python bench/bench_ingest.py --n 200 --workers 2
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import machine, make_scans, peak_rss_mb, timed

from vpr_assets.core.ingest import ingest_batch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    try:
        make_scans(tmp / "inbox" / "b", args.n)
        t: dict = {}
        with timed("naive", t):
            naive = ingest_batch(tmp / "inbox" / "b", "b", tmp / "home1", workers=1)
        with timed("pipeline", t):
            fast = ingest_batch(tmp / "inbox" / "b", "b", tmp / "home2", workers=args.workers)
        assert len(naive.scans) == len(fast.scans) == args.n
        print(f"machine: {machine()}")
        print(f"scans: {args.n} JPEG 1400x900")
        print(f"naive (1 process):        {args.n / t['naive']:.1f} scans/s")
        print(f"pipeline ({args.workers} workers):     {args.n / t['pipeline']:.1f} scans/s")
        print(f"ratio pipeline/naive:     {t['naive'] / t['pipeline']:.2f}x")
        print(f"per 1,000 scans:          {1000 * t['pipeline'] / args.n:.0f} s")
        print(f"peak RSS:                 {peak_rss_mb():.0f} MiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
