"""FAISS at collection scale: build time, memory, single-query latency and recall@10 vs exact.

    .venv/bin/python bench/bench_faiss_1m.py            # 1,000,000 x 512-d, ~5-8 min on 2 cores
    .venv/bin/python bench/bench_faiss_1m.py --n 200000  # quicker

Data: clustered Gaussian on the unit sphere (n/100 "landmarks", cosine ~0.7 inside a cluster,
plus 20% unclustered vectors), so IVF lists and PQ codes behave as on real embeddings rather than
on uniform noise. Ground truth: exact inner product for `--queries` held-out queries.
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

from vpr_assets.core.vision.index import VectorIndex, choose_factory  # noqa: E402


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--codec", default="sq8_refine", choices=["pq", "sq8", "pq_refine", "sq8_refine"])
    ap.add_argument("--k-factor", default="2,4,8", help="refine codecs: candidates re-scored per result, comma list")
    ap.add_argument("--nprobe", default="16,32,64,128", help="comma list to sweep")
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
    print(f"data: {args.n:,} x {args.dim} float32 ({x.nbytes / 2**20:.0f} MB) in {time.perf_counter() - t0:.1f}s; "
          f"RSS {rss_mb():.0f} MB")

    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(x)
    _, truth = flat.search(q, 10)
    del flat
    print(f"exact ground truth for {args.queries} queries: {time.perf_counter() - t0:.1f}s")

    factory = choose_factory(args.n, args.dim, codec=args.codec)
    rss_before = rss_mb()
    t0 = time.perf_counter()
    nlist = int(factory.split("_")[0][3:]) if factory.startswith("IVF") else 0
    train_size = args.train_size or min(args.n, 20 * nlist) or None
    idx = VectorIndex.build(x, np.arange(args.n), model_version="synthetic", data_version="bench", codec=args.codec,
                            train_size=train_size)
    build_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = idx.save(Path(tmp) / "bench.faiss")
        size_mb = path.stat().st_size / 2**20
        ids_mb = (Path(tmp) / "bench.faiss.ids.npy").stat().st_size / 2**20
    print(f"index {factory} trained on {train_size or 0:,}: build {build_s:.1f}s (train {idx.meta['train_seconds']:.1f}s), "
          f"file {size_mb:.0f} MB + ids {ids_mb:.0f} MB, RSS {rss_mb():.0f} MB (before build {rss_before:.0f} MB, "
          f"raw vectors {x.nbytes / 2**20:.0f} MB), peak RSS {peak_rss_mb():.0f} MB")

    faiss.omp_set_num_threads(1)  # one query at a time: OpenMP only adds overhead
    print("recall@10 = |top10 found & true top10| / 10; 1-recall@10 = true nearest neighbour in the top 10")
    print(f"{'nprobe':>6} {'efSearch':>8} {'k_factor':>8} {'recall@10':>9} {'1-recall@10':>11} {'p50 ms':>7} {'p99 ms':>7}")
    k_factors = [float(v) for v in args.k_factor.split(",")] if idx.is_refined else [None]
    for nprobe, k_factor in [(int(p), k) for p in args.nprobe.split(",") for k in k_factors]:
        idx.set_search_params(nprobe=nprobe, k_factor=k_factor)
        lat = []
        found = []
        for i in range(args.queries):
            t = time.perf_counter()
            _, ids = idx.search(q[i : i + 1], 10)
            lat.append((time.perf_counter() - t) * 1000)
            found.append(ids[0])
        recall = np.mean([len(set(f) & set(t.tolist())) / 10 for f, t in zip(found, truth)])
        one_recall = np.mean([t[0] in f for f, t in zip(found, truth)])
        print(f"{nprobe:>6} {idx.meta['ef_search']:>8} {idx.meta.get('k_factor', '-'):>8} {recall:>9.3f} {one_recall:>11.3f} {np.percentile(lat, 50):>7.2f} "
              f"{np.percentile(lat, 99):>7.2f}")
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
