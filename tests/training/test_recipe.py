"""The parts of the training recipe that make epoch 0 the pretrained embedding: the PCA basis, the
PCA(-whitening) start of the neck, the imprinted ArcFace head, and the two-phase trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vpr_assets.core.training.trainer import TrainConfig, imprint_head
from vpr_assets.core.vision.models import MODEL_CONFIGS, ArcMarginProduct, LandmarkEmbedder, init_neck_from_pca
from vpr_assets.core.vision.whitening import pca_basis


def _pooled(n: int, d: int = 1280, seed: int = 0) -> torch.Tensor:
    """Correlated features: an offset, 12 latent factors of falling strength, a little noise."""
    g = torch.Generator().manual_seed(seed)
    strength = torch.linspace(3.0, 1.0, 12)
    latent = (torch.randn(n, 12, generator=g) * strength) @ torch.randn(12, d, generator=g)
    return 5.0 + latent + 0.3 * torch.randn(n, d, generator=g)


def _neck_model(whiten: float, pooled: torch.Tensor) -> LandmarkEmbedder:
    model = LandmarkEmbedder(MODEL_CONFIGS["lite0_gem512"]).set_output("neck")
    init_neck_from_pca(model, pooled, whiten=whiten, shrinkage=0.1)
    return model.eval()


def test_pca_basis_orthonormal_sorted_and_completed_when_rank_deficient():
    x = _pooled(40, d=64).numpy()
    mean, comps, eig = pca_basis(x, 32)
    assert comps.shape == (32, 64) and eig.shape == (32,)
    np.testing.assert_allclose(comps @ comps.T, np.eye(32), atol=1e-5)
    np.testing.assert_allclose(mean, x.mean(0), rtol=1e-5)
    assert np.all(np.diff(eig) <= 1e-6)  # largest variance first
    # 10 samples span at most 9 directions: the other 23 are completed, orthogonal, at the floor
    mean, comps, eig = pca_basis(x[:10], 32, shrinkage=0.05)
    np.testing.assert_allclose(comps @ comps.T, np.eye(32), atol=1e-5)
    assert np.allclose(eig[9:], 0.05 * eig[0]) and np.all(eig[:9] >= 0.05 * eig[0])
    centred = x[:10] - x[:10].mean(0)
    assert np.abs(centred @ comps[9:].T).max() < 1e-3  # the completion holds none of the data's variance
    with pytest.raises(ValueError):
        pca_basis(x, 65)


def test_pca_neck_without_whitening_keeps_the_pretrained_geometry():
    """whiten=0: the neck is a rotation of the centred, normalised GeM vector, so the trained
    model's epoch 0 ranks the training images exactly as the (centred) pretrained embedding."""
    pooled = _pooled(60)
    model = _neck_model(0.0, pooled)
    with torch.no_grad():
        out = model.neck_from_pooled(pooled)
    x = F.normalize(pooled, dim=-1)
    centred = x - x.mean(0)
    torch.testing.assert_close(out @ out.T, centred @ centred.T, atol=2e-4, rtol=1e-3)
    assert model.neck[2].weight.item() == 1.0  # PReLU starts as the identity


def test_full_whitening_gives_unit_variance_directions():
    pooled = _pooled(600)
    with torch.no_grad():
        out = _neck_model(1.0, pooled).neck_from_pooled(pooled)
    var = out.var(0, unbiased=True)
    # the directions the data really varies along come out with unit variance
    top = var[:10]
    torch.testing.assert_close(top, torch.ones_like(top), atol=0.05, rtol=0.05)
    with torch.no_grad():
        unwhitened = _neck_model(0.0, pooled).neck_from_pooled(pooled)
    assert unwhitened.var(0)[0] / unwhitened.var(0)[30] > 5  # without: the latent factors far above the noise


def test_imprinted_head_predicts_the_class_of_its_mean():
    g = torch.Generator().manual_seed(1)
    centres = F.normalize(torch.randn(5, 64, generator=g), dim=-1)
    labels = torch.arange(5).repeat_interleave(8)
    feats = centres[labels] + 0.05 * torch.randn(40, 64, generator=g)
    head = ArcMarginProduct(64, 5)
    before = (head(feats).argmax(1) == labels).float().mean().item()
    imprint_head(head, feats, labels)
    assert (head(feats).argmax(1) == labels).all(), before
    torch.testing.assert_close(head.weight.norm(dim=1), torch.ones(5))


def test_train_config_rejects_bad_settings():
    for bad in ({"neck_init": "zeros"}, {"head_init": "x"}, {"whiten": 1.5}, {"optimizer": "lbfgs"}, {"views": -1}):
        with pytest.raises(ValueError):
            TrainConfig(**bad).validate()
