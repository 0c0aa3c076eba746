"""FAISS index wrapper: choice of index kind, scan_id mapping, add, persistence, recall."""

import json
import os

import faiss
import numpy as np
import pytest

from vpr_assets.core.vision.index import VectorIndex, choose_factory, default_nprobe, nlist_for, pq_m_for

faiss.omp_set_num_threads(min(2, os.cpu_count() or 1))


def _clustered(n, d, n_centres=50, seed=0, spread=0.3):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_centres, d)).astype(np.float32)
    x = centres[rng.integers(0, n_centres, n)] + spread * rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _ids(n, prefix="scan"):
    return [f"{prefix}{i:06d}" for i in range(n)]


def test_factory_choice_by_collection_size():
    assert choose_factory(1_000, 512) == "Flat"
    assert choose_factory(49_999, 512) == "Flat"
    assert choose_factory(1_000_000, 512) == "IVF4000_HNSW32,PQ64"
    assert choose_factory(1_000_000, 1280) == "IVF4000_HNSW32,PQ160"
    assert choose_factory(1_000_000, 512, codec="sq8") == "IVF4000_HNSW32,SQ8"
    assert choose_factory(1_000_000, 512, codec="sq8_refine") == "IVF4000_HNSW32,SQ8,Refine(SQfp16)"
    assert choose_factory(10_000, 512, codec="sq8_refine") == "Flat"  # small collections stay exact
    assert nlist_for(15_000_000) == 15492
    assert 512 % pq_m_for(512) == 0 and 100 % pq_m_for(100) == 0
    assert 16 <= default_nprobe(4000) <= 256


def test_exact_index_maps_back_to_scan_ids(tmp_path):
    x = _clustered(500, 32)
    idx = VectorIndex.build(x, _ids(500), model_version="lite0:gem:abc", data_version="emb-v1")
    assert idx.is_exact and idx.count == 500 and idx.dim == 32
    scores, ids = idx.search(x[[7, 42]], k=5)
    assert ids[0][0] == "scan000007" and ids[1][0] == "scan000042"
    assert scores.shape == (2, 5) and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    # exact: same as brute force
    brute = np.argsort(-(x @ x[7]))[:5]
    assert ids[0] == [f"scan{i:06d}" for i in brute]


def test_add_new_batch_without_rebuilding_and_refuse_duplicates():
    x = _clustered(300, 16)
    idx = VectorIndex.build(x[:200], _ids(200))
    idx.add(x[200:], _ids(300)[200:])
    assert idx.count == 300
    assert idx.search(x[250], k=1)[1][0] == ["scan000250"]
    with pytest.raises(ValueError, match="already indexed"):
        idx.add(x[:1], ["scan000003"])
    with pytest.raises(ValueError, match="within the batch"):
        idx.add(x[:2], ["new", "new"])
    with pytest.raises(ValueError, match="dim"):
        idx.add(np.ones((1, 8), np.float32), ["other"])
    assert idx.count == 300


def test_unnormalised_queries_are_normalised():
    x = _clustered(100, 16)
    idx = VectorIndex.build(x, list(range(100)))
    scores, ids = idx.search(x[3] * 7.0, k=1)
    assert ids == [[3]] and scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_save_load_round_trip_and_sidecar(tmp_path):
    x = _clustered(400, 24)
    idx = VectorIndex.build(x, _ids(400), model_version="m1", data_version="d1")
    path = idx.save(tmp_path / "vectors.faiss")
    meta = json.loads((tmp_path / "vectors.faiss.json").read_text())
    assert meta["count"] == 400 and meta["dim"] == 24 and meta["model_version"] == "m1"
    assert meta["data_version"] == "d1" and meta["factory"] == "Flat" and meta["index_type"] == "IndexFlat"
    assert sorted(os.listdir(tmp_path)) == ["vectors.faiss", "vectors.faiss.ids.npy", "vectors.faiss.json"]
    for mmap in (False, True):
        loaded = VectorIndex.load(path, mmap=mmap)
        assert loaded.search(x[:3], k=3)[1] == idx.search(x[:3], k=3)[1]
    # overwrite after adding: the new count is what loads
    loaded = VectorIndex.load(path)
    loaded.add(_clustered(10, 24, seed=5), _ids(10, "new"))
    loaded.save(path)
    again = VectorIndex.load(path)
    assert again.count == 410 and "new000009" in again.search(_clustered(10, 24, seed=5)[9], 1)[1][0]
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_load_refuses_inconsistent_files(tmp_path):
    x = _clustered(50, 8)
    path = VectorIndex.build(x, _ids(50)).save(tmp_path / "v.faiss")
    np.save(tmp_path / "v.faiss.ids.npy", np.array([b"a", b"b"]))
    with pytest.raises(ValueError, match="disagree"):
        VectorIndex.load(path)


@pytest.mark.parametrize("codec,floor", [("sq8", 0.85), ("pq", 0.5)])
def test_ivf_index_recall_against_exact(codec, floor):
    n, d = 6000, 32
    x = _clustered(n, d, n_centres=40)
    idx = VectorIndex.build(x, list(range(n)), exact_below=1000, codec=codec, train_size=n)
    assert not idx.is_exact and idx.meta["factory"].startswith("IVF")
    q = _clustered(50, d, n_centres=40, seed=1)
    exact = np.argsort(-(q @ x.T), axis=1)[:, :10]
    _, found = idx.search(q, k=10)
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact)])
    assert recall >= floor
    idx.set_search_params(nprobe=idx.index.nlist if hasattr(idx.index, "nlist") else 1000)
    assert idx.meta["nprobe"] >= 16
    assert idx.should_rebuild() is False


def test_pca_whitening_shrinks_and_keeps_neighbours(tmp_path):
    from vpr_assets.core.vision.whitening import PCAWhitening

    x = _clustered(2000, 64, n_centres=20)
    pca = PCAWhitening.fit(x, dim=16)
    y = pca.transform(x)
    assert y.shape == (2000, 16) and np.allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-5)
    # nearest neighbours mostly survive the reduction on clustered data
    nn_x = np.argsort(-(x[:50] @ x.T), axis=1)[:, 1]
    cluster_agree = np.mean([(x[i] @ x[j]) > 0.5 for i, j in zip(range(50), np.argsort(-(y[:50] @ y.T), axis=1)[:, 1])])
    assert cluster_agree > 0.9 and len(nn_x) == 50
    loaded = PCAWhitening.load(pca.save(tmp_path / "pca.npz"))
    assert np.allclose(loaded.transform(x[:5]), y[:5], atol=1e-6)
    with pytest.raises(ValueError):
        PCAWhitening.fit(x[:10], dim=16)


@pytest.mark.parametrize("codec,k_factor", [("sq8_refine", None), ("pq_refine", 16), ("fastscan_refine", 64)])
def test_refined_index_returns_the_exact_top_k(codec, k_factor, tmp_path):
    """IVF codes choose the candidates, float16 copies re-score them: with every list visited the
    answer is the exact top-k (scores to float16 precision) once enough candidates are re-scored
    (coarse PQ codes need more); saved and loaded, it keeps its refinement setting."""
    n, d = 6000, 32
    x = _clustered(n, d, n_centres=40)
    idx = VectorIndex.build(x, list(range(n)), exact_below=1000, codec=codec, train_size=n)
    assert idx.is_refined and idx.meta["k_factor"] >= 2
    idx.set_search_params(nprobe=faiss.extract_index_ivf(idx.index).nlist, k_factor=k_factor)
    q = _clustered(40, d, n_centres=40, seed=2)
    sims = q @ x.T
    exact = np.argsort(-sims, axis=1)[:, :10]
    scores, found = idx.search(q, k=10)
    tenth = np.take_along_axis(sims, exact, axis=1)[:, -1]
    for i, f in enumerate(found):  # the true top 10; only float16 near-ties (< 2e-3 apart) may swap
        assert len(f) == 10 and all(sims[i, j] >= tenth[i] - 2e-3 for j in f)
        assert len(set(f) & set(exact[i].tolist())) >= 9
    assert np.allclose(scores, np.sort(np.take_along_axis(sims, np.asarray(found), axis=1))[:, ::-1], atol=2e-3)
    loaded = VectorIndex.load(idx.save(tmp_path / "refined.faiss"))
    assert loaded.is_refined and loaded.meta["k_factor"] == idx.meta["k_factor"]


def test_queries_in_no_dense_region_are_answered_exhaustively(tmp_path):
    """A query whose best probed candidate scores below `exact_fallback_below` (here: random
    directions, far from every cluster) has its true neighbours spread over all the lists; the
    refined index answers it over its float16 copies instead, and says how many it did."""
    n, d = 6000, 256  # in 256-d a random direction's best neighbour scores ~0.25; a cluster member's ~0.9
    x = _clustered(n, d, n_centres=40)
    idx = VectorIndex.build(x, list(range(n)), exact_below=1000, codec="fastscan_refine", train_size=n)
    assert idx.meta["factory"].endswith("x4fs,Refine(SQfp16)") and idx.meta["exact_fallback_below"] == 0.4
    rng = np.random.default_rng(4)
    sources = rng.choice(n, 20, replace=False)
    near = x[sources] + 0.02 * rng.standard_normal((20, d)).astype(np.float32)
    near /= np.linalg.norm(near, axis=1, keepdims=True)  # new cards of known clusters
    far = rng.standard_normal((20, d)).astype(np.float32)
    far /= np.linalg.norm(far, axis=1, keepdims=True)

    def recall(q, found):
        exact = np.argsort(-(q @ x.T), axis=1)[:, :10]
        return np.mean([len(set(f) & set(e.tolist())) / 10 for f, e in zip(found, exact)])

    idx.set_search_params(nprobe=2, exact_fallback_below=-1)  # off: a 2-list probe misses the far queries' neighbours
    off = recall(far, idx.search(far, 10)[1])
    assert idx.last_fallbacks == 0 and off < 0.8
    idx.set_search_params(nprobe=2, exact_fallback_below=0.4)
    assert recall(far, idx.search(far, 10)[1]) >= 0.95 and idx.last_fallbacks == len(far)
    found = idx.search(near, 10)[1]  # close to a known card: the probe finds it, no fallback
    assert idx.last_fallbacks == 0 and np.mean([f[0] == s for f, s in zip(found, sources)]) >= 0.8
    idx.search(far, 10)
    idx.set_search_params(nprobe=2, exact_fallback_below=-1)
    idx.search(far, 10)
    assert idx.last_fallbacks == 0  # the count is this search's, not left over from the one before
    idx.set_search_params(nprobe=2, exact_fallback_below=0.4)
    loaded = VectorIndex.load(idx.save(tmp_path / "fb.faiss"), mmap=True)
    assert loaded.meta["exact_fallback_below"] == 0.4 and loaded.search(far[:3], 10)[1] == idx.search(far[:3], 10)[1]
