"""Clustering on synthetic blobs: two places joined by a chain of in-between views stay apart."""

import numpy as np
import pytest

from vpr_assets.core.vision.clustering import cluster_embeddings, knn_graph


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _data(seed=0, d=64, n=40, n_bridge=8, n_noise=10, small=0):
    """Blobs A and B (intra cosine ~0.86, orthogonal centres), a bridge of views sweeping from A's
    centre to B's (consecutive cosine ~0.98), random noise and optionally a small blob."""
    rng = np.random.default_rng(seed)
    ca = _unit(rng.standard_normal(d))
    cb = rng.standard_normal(d)
    cb = _unit(cb - (cb @ ca) * ca)
    blob = lambda c, m: _unit(c + 0.05 * rng.standard_normal((m, d)))  # noqa: E731
    t = np.linspace(0, np.pi / 2, n_bridge + 2)[1:-1]
    bridge = _unit(np.cos(t)[:, None] * ca + np.sin(t)[:, None] * cb + 0.01 * rng.standard_normal((n_bridge, d)))
    parts = [blob(ca, n), blob(cb, n), bridge, _unit(rng.standard_normal((n_noise, d)))]
    if small:
        parts.append(blob(_unit(rng.standard_normal(d)), small))
    return np.vstack(parts).astype(np.float32)


A, B, BRIDGE, NOISE = slice(0, 40), slice(40, 80), slice(80, 88), slice(88, 98)


def test_bridge_really_chains_without_the_guard():
    # the data is a genuine bridge: single linkage over the threshold merges the two places
    res = cluster_embeddings(_data(), threshold=0.7, guard_similarity=None)
    assert res.n_clusters == 1
    assert set(res.labels[A]) == set(res.labels[B]) == {0}


@pytest.mark.parametrize("method", ["components", "louvain"])
@pytest.mark.parametrize("mutual", [True, False])
def test_guard_keeps_the_two_places_apart(method, mutual):
    x = _data()
    res = cluster_embeddings(x, threshold=0.7, min_size=7, mutual=mutual, method=method)
    la, lb = set(res.labels[A]), set(res.labels[B])
    assert len(la) == 1 and len(lb) == 1 and la != lb and -1 not in la | lb
    assert (res.labels[NOISE] == -1).all()
    assert res.n_clusters == 2
    # the middle of the bridge belongs to neither place
    mid = res.labels[BRIDGE][3:5]
    assert not set(mid) & (la | lb) or not mutual


def test_min_size_turns_small_groups_into_noise():
    x = _data(small=5)
    small = slice(98, 103)
    assert (cluster_embeddings(x, min_size=7).labels[small] == -1).all()
    labels = cluster_embeddings(x, min_size=5).labels[small]
    assert len(set(labels)) == 1 and labels[0] >= 0


def test_cluster_stats_are_consistent():
    x = _data()
    res = cluster_embeddings(x)
    for c in res.clusters:
        members = np.flatnonzero(res.labels == c.cluster_id)
        assert c.size == len(members)
        assert c.medoid in members
        sims = x[members] @ x[members].T
        brute_mean = (sims.sum() - np.trace(sims)) / (len(members) * (len(members) - 1))
        assert c.mean_similarity == pytest.approx(brute_mean, abs=1e-4)
        # the medoid has the highest summed similarity to the others
        assert sims.sum(axis=1).argmax() == list(members).index(c.medoid)
        assert c.mean_similarity > 0.8
    assert [c.size for c in res.clusters] == sorted((c.size for c in res.clusters), reverse=True)


def test_knn_graph_excludes_self_and_is_sorted():
    x = _data()
    sims, nbrs = knn_graph(x, k=5)
    assert nbrs.shape == (len(x), 5)
    assert (nbrs != np.arange(len(x))[:, None]).all()
    assert (np.diff(sims, axis=1) <= 1e-6).all()
    i = 3
    exact = np.argsort(-(x @ x[i]))[1:6]
    assert set(nbrs[i]) == set(exact)


def test_empty_and_threshold_extremes():
    assert len(cluster_embeddings(np.zeros((0, 8), np.float32)).labels) == 0
    res = cluster_embeddings(_data(), threshold=0.999)
    assert res.n_clusters == 0 and (res.labels == -1).all()
