"""Quality features per scan: `assess` on a copy downscaled to ANALYSIS_MAX_SIDE (the pipeline)
against the same measurements at full scanner resolution (the naive way), over the same decoded
scans, in the same run. Also the postcard-back detector.

    .venv/bin/python bench/bench_quality.py --n 60
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import machine, make_scans, peak_rss_mb

import vpr_assets.core.curation.quality as quality
from vpr_assets.core.curation.postcard_traps import detect_postcard_back
from vpr_assets.core.images.decode import load_rgb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        images = [load_rgb(p) for p in make_scans(Path(tmp), args.n, size=(2400, 1560))]
    t0 = time.perf_counter()
    fast = [quality.assess(im) for im in images]
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    for im in images:
        detect_postcard_back(im)
    t_back = time.perf_counter() - t0
    saved, orig = quality.ANALYSIS_MAX_SIDE, quality.downscale
    quality.downscale = lambda im, max_side=None: orig(im, 100_000)  # no downscale: every pixel
    try:
        t0 = time.perf_counter()
        slow = [quality.assess(im) for im in images]
        t_slow = time.perf_counter() - t0
    finally:
        quality.downscale = orig
    agree = sum(a.label == b.label for a, b in zip(fast, slow)) / len(images)
    print(f"machine: {machine()}")
    print(f"scans: {args.n} decoded 2400x1560 (3.7 Mpx) postcards")
    print(f"pipeline (downscaled to {saved}px): {args.n / t_fast:.1f} scans/s")
    print(f"naive (full resolution):          {args.n / t_slow:.1f} scans/s")
    print(f"ratio pipeline/naive:             {t_slow / t_fast:.1f}x, same label on {agree:.0%} of scans")
    print(f"postcard-back detector:           {args.n / t_back:.1f} scans/s")
    print(f"peak RSS:                         {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
