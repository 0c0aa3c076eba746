"""Retrieval steps after the embedding: alpha-QE, DBA, k-reciprocal, spatial verification, rank_with."""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import pytest

from vpr_assets.core.evaluation import evaluate_vectors, rank_all
from vpr_assets.core.vision.rerank import (
    BEST,
    LocalFeatures,
    RetrievalConfig,
    _neighbours,
    _weights,
    add_retrieval_arguments,
    alpha_query_expansion,
    database_augmentation,
    k_reciprocal_rerank,
    l2n,
    rank_with,
    retrieval_config_from_args,
    similarity_with,
    spatial_verification,
)


def unit(*rows):
    return l2n(np.array(rows, dtype=np.float32))


def test_alpha_qe_pulls_in_the_neighbours_of_the_first_match():
    # a: near the query; b: same landmark as a, farther from q than the distractor c
    q = unit([1, 0, 0])[0]
    g = unit([0.95, 0.31, 0.0], [0.6, 0.8, 0.0], [0.7, 0.0, 0.71])  # a, b, c
    assert np.argsort(-(g @ q)).tolist() == [0, 2, 1]  # cosine: c above b
    q2 = alpha_query_expansion(q, g, k=1, alpha=1.0)
    assert np.isclose(np.linalg.norm(q2), 1.0)
    assert np.argsort(-(g @ q2)).tolist() == [0, 1, 2]  # expanded with a: b above c
    assert np.allclose(alpha_query_expansion(q, g, k=0), q)  # k=0 changes nothing
    # excluding a (as if a were the query itself) expands with c instead: b stays last
    q3 = alpha_query_expansion(q[None], g, k=1, alpha=1.0, exclude=[0])[0]
    assert np.argsort(-(g @ q3))[-1] == 1


def test_dba_moves_a_landmark_group_together_past_a_distractor():
    q = unit([1, 0, 0])[0]
    # b1 near the query, b2 same landmark as b1 but far from q; d a distractor between, whose own
    # nearest neighbour e is another distractor far from q
    g = unit([0.9, 0.44, 0.0], [0.3, 0.95, 0.0], [0.55, 0.0, 0.83], [0.2, 0.0, 0.98])  # b1, b2, d, e
    assert np.argsort(-(g @ q)).tolist() == [0, 2, 1, 3]
    d = database_augmentation(g, k=1, alpha=1.0)
    assert np.allclose(np.linalg.norm(d, axis=1), 1.0)
    assert np.argsort(-(d @ q)).tolist() == [0, 1, 2, 3]
    assert np.allclose(database_augmentation(g, k=0), g)


def test_rank_with_default_is_plain_cosine(rng=np.random.default_rng(0)):
    v = l2n(rng.normal(size=(12, 16)))
    o1, s1 = rank_all(v)
    o2, s2 = rank_with(RetrievalConfig(), v)
    assert o1.tolist() == o2.tolist() and np.allclose(s1, s2)
    files = [f"f{i}" for i in range(12)]
    labels = ["a", "a", "a", "b", "b", "b", "c", "c", "none", "none", "none", "none"]
    m0 = evaluate_vectors(files, labels, v).metrics
    m1 = evaluate_vectors(files, labels, v, retrieval=RetrievalConfig()).metrics
    assert m0 == pytest.approx(m1, rel=1e-6)


def test_dba_never_uses_the_query_to_augment_the_database():
    rng = np.random.default_rng(1)
    v = l2n(rng.normal(size=(10, 8)))
    cfg = RetrievalConfig(dba_k=3, dba_alpha=2.0)
    s = similarity_with(cfg, v)
    for i in range(len(v)):  # brute force: drop i, augment the rest, put i back unaugmented
        rest = np.delete(np.arange(len(v)), i)
        nb, sims = _neighbours(v[rest], 3)
        d = l2n(v[rest] + np.einsum("nk,nkd->nd", _weights(sims, 2.0), v[rest][nb]))
        assert np.allclose(s[i, rest], d @ v[i], atol=1e-5)


def test_k_reciprocal_demotes_hubs_that_are_nobodys_mutual_neighbour():
    # three groups of 4 noisy views plus 3 "hubs" near the mean of everything: the hubs sit in
    # many items' top-3 by cosine but only a few items sit in theirs
    rng = np.random.default_rng(0)
    centres = l2n(rng.normal(size=(3, 32)))
    v = np.concatenate([l2n(c + 0.2 * rng.normal(size=(4, 32))) for c in centres])
    v = np.concatenate([v, l2n(centres.sum(0)[None] + 0.3 * rng.normal(size=(3, 32)))])
    group = np.repeat([0, 1, 2], 4)

    def precision_at_3(order):
        return np.mean([[j < 12 and group[j] == group[i] for j in order[i, :3]] for i in range(12)])

    cos_order, _ = rank_with(RetrievalConfig(), v)
    kr_order, kr_scores = rank_with(RetrievalConfig(rerank=True, rerank_k1=4, rerank_k2=1), v)
    assert precision_at_3(cos_order) == pytest.approx(29 / 36)
    assert precision_at_3(kr_order) == pytest.approx(33 / 36)
    assert np.all(np.diff(kr_scores, axis=1) <= 1e-6)
    r = k_reciprocal_rerank(v @ v.T, k1=4, k2=1)
    assert r.shape == (15, 15) and np.all(r <= 1.0 + 1e-6)


def test_loo_whitening_is_fitted_without_the_query():
    rng = np.random.default_rng(3)
    v = l2n(rng.normal(size=(14, 20)))
    cfg = RetrievalConfig(whiten="loo", whiten_dim=6)
    s = similarity_with(cfg, v)
    from vpr_assets.core.vision.whitening import PCAWhitening

    w = PCAWhitening.fit(np.delete(v, 5, axis=0), dim=6, shrinkage=cfg.whiten_shrinkage)
    t = w.transform(v)
    assert np.allclose(s[5, :5], t[:5] @ t[5], atol=1e-5)


def _rotated_crop(src, dst):
    from PIL import Image

    im = Image.open(src).convert("RGB")
    w, h = im.size
    im = im.crop((int(w * 0.12), int(h * 0.08), int(w * 0.9), int(h * 0.95))).rotate(17, expand=True)
    im.resize((im.width * 3 // 4, im.height * 3 // 4)).save(dst, quality=80)


def test_spatial_verification_finds_the_rotated_cropped_copy(realsample_dir, tmp_path):
    query = realsample_dir / "london_bridge__1.jpg"
    copy = tmp_path / "copy.jpg"
    _rotated_crop(query, copy)
    other = realsample_dir / "piazza_san_marco__1.jpg"
    feats = LocalFeatures()
    # the global ranking put the other landmark first
    order, scores, inliers = spatial_verification(query, [other, copy], feats, base_scores=[0.8, 0.7])
    assert order.tolist() == [1, 0]
    assert inliers[0] >= 50 and inliers[1] < 15
    assert scores[0] > 1.0 >= scores[1]
    assert feats.pair_inliers[(str(query), str(copy), "homography")] == inliers[0]


def test_rank_with_spatial_reorders_top_n(realsample_dir, tmp_path):
    # 3 images: query, another landmark embedded as its nearest, the rotated copy embedded farther
    query = realsample_dir / "st_pauls_cathedral__1.jpg"
    copy = tmp_path / "copy.jpg"
    _rotated_crop(query, copy)
    paths = [query, realsample_dir / "united_states_capitol__1.jpg", copy]
    v = unit([1, 0, 0], [0.9, 0.43, 0], [0.5, 0, 0.86])
    order, scores = rank_with(RetrievalConfig(), v, paths)
    assert order[0].tolist() == [1, 2]
    order, scores = rank_with(RetrievalConfig(spatial_top_n=2), v, paths)
    assert order[0].tolist() == [2, 1] and scores[0, 0] > 1.0


def test_cli_options_build_the_config():
    ap = argparse.ArgumentParser()
    add_retrieval_arguments(ap)
    assert retrieval_config_from_args(ap.parse_args([])) is None
    assert retrieval_config_from_args(ap.parse_args(["--retrieval", "cosine"])) is None
    assert retrieval_config_from_args(ap.parse_args(["--retrieval", "best"])) == BEST
    cfg = retrieval_config_from_args(ap.parse_args(["--retrieval", "best", "--spatial", "0", "--qe", "4"]))
    assert cfg == replace(BEST, spatial_top_n=0, qe_k=4)
    cfg = retrieval_config_from_args(ap.parse_args(["--whiten", "loo", "--dba", "3", "--rerank"]))
    assert cfg.whiten == "loo" and cfg.dba_k == 3 and cfg.rerank and cfg.qe_k == 0
    with pytest.raises(FileNotFoundError):
        retrieval_config_from_args(ap.parse_args(["--whiten", "/nonexistent.npz"]))
