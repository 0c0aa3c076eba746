"""FAISS at collection scale: build time, memory, single-query latency and recall@10 vs exact.

    .venv/bin/python bench/bench_faiss_1m.py                       # 1,000,000 x 512-d, ~15 min on 2 cores
    .venv/bin/python bench/bench_faiss_1m.py --n 200000            # quicker
    .venv/bin/python bench/bench_faiss_1m.py --codec sq8,fastscan_refine   # before / after in one run

Data: clustered Gaussian on the unit sphere (n/100 "landmarks", cosine ~0.7 inside a cluster,
plus 20% unclustered vectors), so IVF lists and PQ codes behave as on real embeddings rather than
on uniform noise. Ground truth: exact inner product for `--queries` held-out queries. Recall is
also split by query kind: an unclustered query has its true top 10 spread over the whole
collection (cosine ~0.2, all alike), which no probe of a few lists finds; the refined codecs
answer such queries exhaustively (`exact_fallback_below`), and the share that did is printed.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vpr_assets.core.vision.index import CODECS, VectorIndex, choose_factory  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def clustered(n: int, dim: int, centres: np.ndarray, rng: np.random.Generator, chunk: int = 100_000) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    sigma = np.float32(np.sqrt(0.43 / dim))  # cos(x, centre) ~ 0.84, between members ~ 0.7
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        which = rng.integers(0, len(centres), m)
        block = centres[which] + sigma * rng.standard_normal((m, dim), dtype=np.float32)
        loose = rng.random(m) < 0.2  # unclustered cards
        block[loose] = rng.standard_normal((int(loose.sum()), dim), dtype=np.float32)
        faiss.normalize_L2(block)
        out[s : s + m] = block
    return out


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def measure(idx: VectorIndex, q: np.ndarray, truth: np.ndarray, loose: np.ndarray) -> dict:
    lat, found, fell = [], [], 0
    for i in range(len(q)):
        t = time.perf_counter()
        _, ids = idx.search(q[i : i + 1], 10)
        lat.append((time.perf_counter() - t) * 1000)
        fell += idx.last_fallbacks
        found.append(ids[0])
    hits = np.array([len(set(f) & set(t.tolist())) / 10 for f, t in zip(found, truth)])
    return {"recall": hits.mean(), "clustered": hits[~loose].mean(), "unclustered": hits[loose].mean() if loose.any() else float("nan"),
            "one": np.mean([t[0] in f for f, t in zip(found, truth)]), "exhaustive": fell / len(q),
            "p50": np.percentile(lat, 50), "p90": np.percentile(lat, 90), "p99": np.percentile(lat, 99)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--codec", default="sq8,fastscan_refine", help=f"comma list of {CODECS}, built one after another")
    ap.add_argument("--k-factor", default="", help="refine codecs: candidates re-scored per result (default: the codec's)")
    ap.add_argument("--nprobe", default="16,32,64,128", help="comma list to sweep")
    ap.add_argument("--fallback", default="-1,0.4", help="refine codecs: exact_fallback_below values (-1 = off)")
    ap.add_argument("--train-size", type=int, default=None, help="training sample (default 20 x nlist)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="build threads")
    args = ap.parse_args()
    faiss.omp_set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    centres = rng.standard_normal((max(1, args.n // 100), args.dim), dtype=np.float32)
    faiss.normalize_L2(centres)
    x = clustered(args.n, args.dim, centres, rng)
    q = clustered(args.queries, args.dim, centres, rng)
    loose = (q @ centres.T).max(axis=1) < 0.5  # the unclustered queries (cos to their centre ~0.84 otherwise)
    print(f"data: {args.n:,} x {args.dim} float32 ({x.nbytes / 2**20:.0f} MB) in {time.perf_counter() - t0:.1f}s; "
          f"RSS {rss_mb():.0f} MB; {args.queries} queries, {int(loose.sum())} unclustered")

    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(x)
    _, truth = flat.search(q, 10)
    del flat
    print(f"exact ground truth for {args.queries} queries: {time.perf_counter() - t0:.1f}s")

    for codec in args.codec.split(","):
        faiss.omp_set_num_threads(args.threads)
        factory = choose_factory(args.n, args.dim, codec=codec)
        rss_before = rss_mb()
        t0 = time.perf_counter()
        nlist = int(factory.split("_")[0][3:]) if factory.startswith("IVF") else 0
        train_size = args.train_size or min(args.n, 20 * nlist) or None
        idx = VectorIndex.build(x, np.arange(args.n), model_version="synthetic", data_version="bench", codec=codec,
                                train_size=train_size)
        build_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            path = idx.save(Path(tmp) / "bench.faiss")
            size_mb = path.stat().st_size / 2**20
            ids_mb = (Path(tmp) / "bench.faiss.ids.npy").stat().st_size / 2**20
        print(f"\n[{codec}] {factory} trained on {train_size or 0:,}: build {build_s:.1f}s (train {idx.meta['train_seconds']:.1f}s), "
              f"file {size_mb:.0f} MB + ids {ids_mb:.0f} MB, RSS {rss_mb():.0f} MB (before build {rss_before:.0f} MB, "
              f"raw vectors {x.nbytes / 2**20:.0f} MB), peak RSS {peak_rss_mb():.0f} MB")

        faiss.omp_set_num_threads(1)  # one query at a time: OpenMP only adds overhead
        print("recall@10 = |top10 found & true top10| / 10 (all / clustered / unclustered queries); "
              "1-rec = true nearest neighbour in the top 10; exh = share answered exhaustively")
        print(f"{'nprobe':>6} {'k_factor':>8} {'fallback':>8} {'recall@10':>9} {'clust':>6} {'unclu':>6} {'1-rec':>6} "
              f"{'exh':>5} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7}")
        k_factors = floats(args.k_factor) or [None] if idx.is_refined else [None]
        fallbacks = floats(args.fallback) if idx.is_refined else [None]
        for nprobe in [int(p) for p in args.nprobe.split(",")]:
            for k_factor in k_factors:
                for fb in fallbacks:
                    idx.set_search_params(nprobe=nprobe, k_factor=k_factor, exact_fallback_below=fb)
                    r = measure(idx, q, truth, loose)
                    print(f"{nprobe:>6} {idx.meta.get('k_factor', '-'):>8} {'-' if fb is None else fb:>8} {r['recall']:>9.3f} "
                          f"{r['clustered']:>6.3f} {r['unclustered']:>6.3f} {r['one']:>6.3f} {r['exhaustive']:>5.2f} "
                          f"{r['p50']:>7.2f} {r['p90']:>7.2f} {r['p99']:>7.2f}", flush=True)
        del idx
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
