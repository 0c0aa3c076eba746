"""Near-duplicate search over N 64-bit perceptual hashes (default one million).

Synthetic collection: random hashes plus planted near-duplicate copies (1..radius flipped bits).
Prints the time of `range_pairs` (the production path: FAISS multi-index hashing), the recall of
the planted pairs (overall and per number of flipped bits) and the ratio vs exact brute force
(`faiss.IndexBinaryFlat` range search measured on a subset of queries, extrapolated to N).

    .venv/bin/python bench/bench_near_duplicates.py --n 1000000
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from vpr_assets.core.curation.duplicates import NearDupConfig, range_pairs  # noqa: E402


def make_collection(n: int, planted: int, max_flips: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(n - planted, 8), dtype=np.uint8)
    src = rng.choice(n - planted, size=planted, replace=False)
    flips = rng.integers(1, max_flips + 1, size=planted)
    copies = base[src].copy()
    bits = np.unpackbits(copies, axis=1)
    for k in range(1, max_flips + 1):  # vectorised per flip count
        rows = np.flatnonzero(flips == k)
        if len(rows) == 0:
            continue
        pos = np.argsort(rng.random((len(rows), 64)), axis=1)[:, :k]
        bits[rows[:, None], pos] ^= 1
    copies = np.packbits(bits, axis=1)
    codes = np.concatenate([base, copies])
    perm = rng.permutation(n)  # shuffle so copies are not all at the end
    inv = np.empty(n, dtype=np.int64)
    inv[perm] = np.arange(n)
    codes = codes[perm]
    a = inv[src]
    b = inv[np.arange(n - planted, n)]
    return codes, np.minimum(a, b), np.maximum(a, b), flips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--planted", type=int, default=10_000)
    ap.add_argument("--radius", type=int, default=NearDupConfig().radius)
    ap.add_argument("--max-flips", type=int, default=8, help="planted copies get 1..max-flips flipped bits")
    ap.add_argument("--nhash", type=int, default=NearDupConfig().nhash)
    ap.add_argument("--bits", type=int, default=NearDupConfig().bits)
    ap.add_argument("--nflip", type=int, default=NearDupConfig().nflip)
    ap.add_argument("--baseline-queries", type=int, default=2_000)
    args = ap.parse_args()
    max_flips = args.max_flips
    cfg = replace(NearDupConfig(), radius=args.radius, nhash=args.nhash, bits=args.bits, nflip=args.nflip, flat_max=0)
    print(f"n={args.n:,} planted={args.planted:,} flips=1..{max_flips} radius={args.radius} "
          f"MIH nhash={cfg.nhash} bits={cfg.bits} nflip={cfg.nflip} threads={faiss.omp_get_max_threads()} cpus={os.cpu_count()}")
    codes, pa_, pb_, flips = make_collection(args.n, args.planted, max_flips)

    t0 = time.perf_counter()
    i, j, d = range_pairs(codes[:0], codes, args.radius, cfg)  # everything is "new": a full self-join
    t_mih = time.perf_counter() - t0
    found = set((i * args.n + j).tolist())
    hit = np.array([a * args.n + b in found for a, b in zip(pa_, pb_)])
    print(f"multi-index hashing: {t_mih:.1f} s for {args.n:,} hashes ({args.n / t_mih:,.0f} hashes/s), "
          f"{len(i):,} pairs within {args.radius} bits")
    print(f"recall of planted pairs: {hit.mean():.4f} ({hit.sum():,}/{len(hit):,})")
    guaranteed = cfg.nhash * (cfg.nflip + 1) - 1  # pigeonhole over the substrings
    per = "  ".join(f"{k}:{hit[flips == k].mean():.2f}" for k in range(1, max_flips + 1) if (flips == k).any())
    print(f"recall by flipped bits (exact up to {guaranteed} by construction): {per}")

    flat = faiss.IndexBinaryFlat(64)
    flat.add(codes)
    q = codes[: args.baseline_queries]
    t0 = time.perf_counter()
    flat.range_search(q, args.radius + 1)
    t_flat = (time.perf_counter() - t0) * args.n / len(q)
    print(f"baseline exact brute force (IndexBinaryFlat, {len(q):,} queries measured, extrapolated): {t_flat:.0f} s")
    print(f"speed-up vs brute force: {t_flat / t_mih:.1f}x")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
