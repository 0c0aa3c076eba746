"""Landmark clustering: FAISS k-NN graph + mutual edges + components (the pipeline) against the
naive dense all-pairs similarity matrix thresholded into components, on the same synthetic
clustered vectors, in the same run. The naive method is O(n^2) memory; it runs on a subset and
is extrapolated quadratically.

    .venv/bin/python bench/bench_clustering.py --n 100000 --naive-n 8000
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import machine, peak_rss_mb, timed
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from vpr_assets.core.vision.clustering import cluster_embeddings


def synthetic(n: int, dim: int = 512, n_landmarks: int | None = None, noise_frac: float = 0.5, seed: int = 0):
    n_landmarks = n_landmarks or max(10, n // 40)  # ~20 cards per landmark
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_landmarks, dim)).astype(np.float32)
    n_in = int(n * (1 - noise_frac))
    lab = rng.integers(0, n_landmarks, n_in)
    x = np.concatenate([centres[lab] + rng.normal(scale=0.55, size=(n_in, dim)).astype(np.float32),
                        rng.normal(size=(n - n_in, dim)).astype(np.float32)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, np.concatenate([lab, -np.ones(n - n_in, int)])


def naive(x: np.ndarray, threshold: float) -> int:
    sims = x @ x.T
    adj = sparse.csr_matrix(sims >= threshold)
    return connected_components(adj, directed=False)[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--naive-n", type=int, default=8_000)
    ap.add_argument("--threshold", type=float, default=0.72)
    args = ap.parse_args()
    x, truth = synthetic(args.n)
    t: dict = {}
    with timed("pipeline", t):
        res = cluster_embeddings(x, threshold=args.threshold, min_size=7)
    with timed("naive", t):
        naive(x[: args.naive_n], args.threshold)
    naive_full = t["naive"] * (args.n / args.naive_n) ** 2
    found = res.labels >= 0
    purity = []
    for c in range(res.n_clusters):
        members = truth[res.labels == c]
        purity.append(np.bincount(members[members >= 0]).max() / len(members) if (members >= 0).any() else 0)
    print(f"machine: {machine()}")
    print(f"vectors: {args.n} x 512, {max(10, args.n // 40)} synthetic landmarks (~20 cards each), half noise; threshold {args.threshold}")
    print(f"pipeline (FAISS kNN + mutual edges + components): {t['pipeline']:.1f} s, {args.n / t['pipeline']:.0f} vectors/s")
    print(f"naive dense all-pairs on {args.naive_n}: {t['naive']:.2f} s -> extrapolated to {args.n}: {naive_full:.0f} s "
          f"and {args.n ** 2 * 4 / 2**30:.1f} GiB for the matrix")
    print(f"ratio naive/pipeline (extrapolated): {naive_full / t['pipeline']:.1f}x")
    print(f"clusters: {res.n_clusters}, clustered share {found.mean():.2f} (true {np.mean(truth >= 0):.2f}), "
          f"mean purity {np.mean(purity) if purity else 0:.3f}")
    print(f"peak RSS: {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
