"""Shared helpers for the benchmark scripts: timing, peak memory, synthetic scans."""

from __future__ import annotations

import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    """Peak resident memory of this process and of its finished children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


@contextmanager
def timed(label: str, results: dict):
    t0 = time.perf_counter()
    yield
    results[label] = time.perf_counter() - t0


def make_scans(folder: Path, n: int, seed: int = 0, size=(1400, 900)) -> list[Path]:
    """n postcard-like JPEG scans at scanner resolution (demo cards upscaled), with captions."""
    from vpr_assets.core.images import synth

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        place = synth.DEMO_PLACES[i % len(synth.DEMO_PLACES)]
        p = folder / f"scan_{i:05d}.jpg"
        if not p.exists():
            synth.landmark_card(place, i, seed).resize(size).save(p, quality=90)
        out.append(p)
    return out


def machine() -> str:
    import os
    import platform

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
