"""Pretrained GeM embeddings on real photos: the dev-set retrieval record.

Protocol: every image with a landmark label queries all other images (the distractors, postcard
backs, text pages and unlabelled postcards stay in the gallery); mAP@5 as defined in
vpr_assets/core/metrics.py. 21 queries: one query more or less right moves mAP@5 by ~0.05.
Measured (2-core CPU, center_crop resize, pretrained GeM, no training): lite0 @320 0.647,
lite2 @320 0.688 (see the helper report for the full table); floors sit well below.
"""

import numpy as np
import pytest

from vpr_assets.core.metrics import evaluate_rankings
from vpr_assets.core.vision.embedder import embed_paths
from vpr_assets.core.vision.models import build_embedder


def _evaluate(manifest, vectors):
    files = list(manifest.file)
    labels = dict(zip(manifest.file, manifest.label))
    sims = vectors @ vectors.T
    rankings = {
        f: [files[j] for j in np.argsort(-sims[i]) if j != i] for i, f in enumerate(files) if labels[f] != "none"
    }
    return evaluate_rankings(rankings, labels, ks=(1, 5)), sims


@pytest.fixture(scope="module")
def lite0_vectors(realsample_dir, realsample_manifest):
    model = build_embedder("lite0_gem512")
    res = embed_paths(model, [realsample_dir / f for f in realsample_manifest.file], image_size=320)
    assert res.ok.all(), res.failures
    return res.vectors


def test_landmark_photos_are_nearer_each_other_than_the_distractors(realsample_manifest, lite0_vectors):
    _, sims = _evaluate(realsample_manifest, lite0_vectors)
    kinds = realsample_manifest.kind.to_numpy()
    labels = realsample_manifest.label.to_numpy()
    distractors = kinds == "distractor"
    for label in sorted(set(labels[kinds == "landmark"])):
        members = np.flatnonzero(labels == label)
        intra = sims[np.ix_(members, members)][~np.eye(len(members), dtype=bool)].mean()
        to_distractors = sims[np.ix_(members, np.flatnonzero(distractors))].mean()
        assert intra > to_distractors + 0.05, (label, intra, to_distractors)


def test_pretrained_gem_map_at_5_lite0(realsample_manifest, lite0_vectors):
    metrics, _ = _evaluate(realsample_manifest, lite0_vectors)
    print(f"\nlite0_gem512 @320 pretrained GeM: mAP@5={metrics['mAP@5']:.3f} P@1={metrics['P@1']:.3f} "
          f"Recall@5={metrics['Recall@5']:.3f} R-precision={metrics['R-precision']:.3f} (n={metrics['n_queries']})")
    assert metrics["n_queries"] == 21
    assert metrics["mAP@5"] > 0.5
    assert metrics["P@1"] > 0.45


@pytest.mark.slow
def test_pretrained_gem_map_at_5_lite2(realsample_dir, realsample_manifest):
    model = build_embedder("lite2_gem512")
    res = embed_paths(model, [realsample_dir / f for f in realsample_manifest.file], image_size=320)
    metrics, _ = _evaluate(realsample_manifest, res.vectors)
    print(f"\nlite2_gem512 @320 pretrained GeM: mAP@5={metrics['mAP@5']:.3f} P@1={metrics['P@1']:.3f}")
    assert metrics["mAP@5"] > 0.55
