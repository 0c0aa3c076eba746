"""Group embeddings into landmarks without chaining unrelated places together.

Plain single-linkage (connect everything above a cosine threshold) chains: card A ~ B ~ C ~ ...
links a bridge to a cathedral to a market square through a few in-between views. Here:

1. a k-NN graph from FAISS (exact below `EXACT_BELOW` points, IVF above), k ~ 20;
2. edges kept only when the similarity is >= `threshold` and, by default, the two points are in
   each other's k-NN lists (mutual k-NN removes "hub" edges from generic images);
3. connected components;
4. a guard on every component: if its members' mean pairwise cosine similarity is below
   `guard_similarity` (default `threshold - 0.1`) the component is not one place, so it is split by
   Louvain community detection (networkx, weighted by similarity; cutting a thin bridge costs
   little modularity) and the parts are checked again. Mean pairwise similarity is cheap (for unit
   vectors it follows from the sum of the members) and drops sharply when two places are merged,
   whereas "distance to the medoid" does not: the medoid of a merged pair sits on the bridge;
5. groups smaller than `min_size` become noise (-1).

networkx arrives as a dependency of torch. For tens of millions of points, run this per coarse
partition (components are mostly small, only the guard-failing ones reach Louvain).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from .index import EXACT_BELOW, VectorIndex

METHODS = ("components", "louvain")


@dataclass
class ClusterStats:
    cluster_id: int
    size: int
    medoid: int  # row index of the member most similar to all others (the representative)
    mean_similarity: float  # mean pairwise cosine similarity between members
    min_similarity_to_medoid: float


@dataclass
class ClusteringResult:
    labels: np.ndarray  # (n,) int64 cluster id per row, -1 = noise; ids ordered by size, largest 0
    clusters: list[ClusterStats] = field(default_factory=list)

    @property
    def n_clusters(self) -> int:
        return len(self.clusters)

    @property
    def noise_fraction(self) -> float:
        return float((self.labels < 0).mean()) if len(self.labels) else 0.0


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def knn_graph(vectors: np.ndarray, k: int = 20, exact_below: int = EXACT_BELOW) -> tuple[np.ndarray, np.ndarray]:
    """(similarities (n, k), neighbour rows (n, k)), self excluded, -1 where fewer than k found."""
    x = _normalise(vectors)
    n = len(x)
    kk = min(k + 1, n)
    idx = VectorIndex.build(x, list(range(n)), exact_below=exact_below)
    sims, pos = idx.index.search(x, kk)
    out_s = np.full((n, k), -np.inf, dtype=np.float32)
    out_p = np.full((n, k), -1, dtype=np.int64)
    for i in range(n):
        keep = (pos[i] != i) & (pos[i] >= 0)
        p, s = pos[i][keep][:k], sims[i][keep][:k]
        out_p[i, : len(p)], out_s[i, : len(s)] = p, s
    return out_s, out_p


def _edges(sims: np.ndarray, nbrs: np.ndarray, threshold: float, mutual: bool) -> sparse.csr_matrix:
    n = len(nbrs)
    rows = np.repeat(np.arange(n), nbrs.shape[1])
    cols, w = nbrs.ravel(), sims.ravel()
    keep = (cols >= 0) & (w >= threshold)
    rows, cols, w = rows[keep], cols[keep], w[keep]
    directed = sparse.csr_matrix((w, (rows, cols)), shape=(n, n))
    if mutual:
        return directed.minimum(directed.T).tocsr()  # both directions present
    return directed.maximum(directed.T).tocsr()


def _medoid(x: np.ndarray, members: np.ndarray) -> tuple[int, float, float]:
    """(medoid row, mean pairwise similarity, min similarity to medoid) for normalised rows."""
    xm = x[members]
    total = xm.sum(axis=0)
    scores = xm @ total  # each member's summed similarity to all members (self included)
    j = int(np.argmax(scores))
    n = len(members)
    mean_sim = float((total @ total - n) / (n * (n - 1))) if n > 1 else 1.0
    min_sim = float((xm @ xm[j]).min())
    return int(members[j]), mean_sim, min_sim


def _louvain_split(graph: sparse.csr_matrix, members: np.ndarray, resolution: float, seed: int) -> list[np.ndarray]:
    import networkx as nx

    sub = graph[members][:, members].tocoo()
    g = nx.Graph()
    g.add_nodes_from(range(len(members)))
    g.add_weighted_edges_from((int(a), int(b), float(w)) for a, b, w in zip(sub.row, sub.col, sub.data) if a < b)
    parts = nx.community.louvain_communities(g, weight="weight", resolution=resolution, seed=seed)
    return [members[np.fromiter(sorted(p), dtype=np.int64)] for p in parts]


def cluster_embeddings(
    vectors: np.ndarray,
    k: int = 20,
    threshold: float = 0.7,
    min_size: int = 7,
    mutual: bool = True,
    method: str = "components",
    guard_similarity: float | None = -1.0,
    resolution: float = 1.0,
    max_guard_depth: int = 4,
    seed: int = 0,
    knn: tuple[np.ndarray, np.ndarray] | None = None,
) -> ClusteringResult:
    """Cluster L2-normalised embeddings into landmarks; see the module docstring.

    method "components": components of the thresholded (mutual) k-NN graph, guard-split with
    Louvain when the mean pairwise similarity is below `guard_similarity` (default -1.0 means
    `threshold - 0.1`; None disables the guard).
    method "louvain": Louvain over the whole thresholded graph, then the same guard.
    `knn` lets a caller pass a precomputed `knn_graph` result.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    x = _normalise(vectors)
    n = len(x)
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return ClusteringResult(labels, [])
    sims, nbrs = knn if knn is not None else knn_graph(x, k)
    graph = _edges(sims, nbrs, threshold, mutual)
    if guard_similarity is not None and guard_similarity < 0:
        guard_similarity = threshold - 0.1

    if method == "components":
        _, comp = connected_components(graph, directed=False)
        groups = [np.flatnonzero(comp == c) for c in np.unique(comp)]
    else:
        groups = _louvain_split(graph, np.arange(n), resolution, seed)

    final: list[np.ndarray] = []
    stack = [(g, 0) for g in groups if len(g) >= min_size]
    while stack:
        members, depth = stack.pop()
        if len(members) < min_size:
            continue
        _, mean_sim, _ = _medoid(x, members)
        if guard_similarity is None or mean_sim >= guard_similarity or depth >= max_guard_depth:
            final.append(members)
            continue
        parts = _louvain_split(graph, members, resolution, seed + depth)
        if len(parts) <= 1:  # Louvain sees one community: keep the members near the medoid
            med, _, _ = _medoid(x, members)
            near = members[(x[members] @ x[med]) >= threshold]
            if len(near) >= min_size:
                final.append(near)
            continue
        stack.extend((p, depth + 1) for p in parts)

    final.sort(key=lambda m: (-len(m), int(m.min())))
    stats: list[ClusterStats] = []
    for cid, members in enumerate(final):
        labels[members] = cid
        med, mean_sim, min_sim = _medoid(x, members)
        stats.append(ClusterStats(cid, len(members), med, mean_sim, min_sim))
    return ClusteringResult(labels, stats)
