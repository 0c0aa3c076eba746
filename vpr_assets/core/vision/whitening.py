"""PCA whitening: shrink pretrained GeM vectors (1280-d) to 512-d, fitted on a collection sample.

Why: a random neck would scramble the pretrained features; PCA learnt on the collection keeps the
directions that vary most between cards and whitening down-weights "bursty" ones shared by all
scans (paper tone, borders), the usual fix in image retrieval (Jegou & Chum 2012). Fit it on a
sample of >= a few thousand cards of the real collection; on the 44-photo dev set it cannot be
fitted meaningfully (rank <= 43), so its benefit is still unmeasured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Imported with the module, not inside `_pca`: loading scikit-learn's native libraries changes the
# low-order bits of later torch CPU results, so a training that imported it half-way (after caching
# its features) differed from the next one with the same seed (tests/training/test_trainer.py).
from sklearn.decomposition import PCA

from vpr_assets.storage.atomic import atomic_path


def _pca(x: np.ndarray, dim: int):
    """scikit-learn's exact PCA (full SVD) of `x` keeping `dim` components."""
    return PCA(n_components=dim, svd_solver="full").fit(x)


def pca_basis(vectors: np.ndarray, dim: int, shrinkage: float = 1e-3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, components (dim, d_in) orthonormal rows, eigenvalues (dim,)) of `vectors`.

    Eigenvalues are floored at `shrinkage` x the largest. With fewer samples than `dim` (rank
    deficient), the basis is completed with orthonormal directions of the residual space (a fixed
    seed, so fits are reproducible) at the floor variance; `dim` may not exceed the input size.
    """
    x = np.asarray(vectors, dtype=np.float64)
    n, d = x.shape
    if dim > d:
        raise ValueError(f"cannot keep {dim} dims of {d}-d vectors")
    pca = _pca(x, min(dim, n, d))
    mean, comps, eig = pca.mean_, pca.components_, pca.explained_variance_
    rank = int((eig > eig.max() * 1e-9).sum()) if len(eig) and eig.max() > 0 else 0
    comps, eig = comps[:rank], eig[:rank]
    floor = shrinkage * (eig.max() if len(eig) else 1.0)
    if len(comps) < dim:  # complete the basis in the orthogonal complement
        rng = np.random.default_rng(0)
        extra = rng.standard_normal((dim - len(comps), d))
        extra -= (extra @ comps.T) @ comps if len(comps) else 0.0
        q, _ = np.linalg.qr(extra.T)
        comps = np.vstack([comps, q.T[: dim - len(comps)]])
        eig = np.concatenate([eig, np.zeros(dim - len(eig))])
    eig = np.maximum(eig, floor)
    return mean.astype(np.float32), comps.astype(np.float32), eig.astype(np.float32)


@dataclass
class PCAWhitening:
    mean: np.ndarray  # (d_in,)
    components: np.ndarray  # (d_out, d_in), rows scaled by 1/sqrt(eigenvalue) when whitened

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    @classmethod
    def fit(cls, vectors: np.ndarray, dim: int = 512, whiten: bool = True, shrinkage: float = 1e-3) -> "PCAWhitening":
        x = np.asarray(vectors, dtype=np.float64)
        if dim > min(x.shape):
            raise ValueError(f"cannot keep {dim} dims from {x.shape[0]} samples of dim {x.shape[1]}")
        pca = _pca(x, dim)
        mean, comps, eig = pca.mean_, pca.components_, pca.explained_variance_
        if whiten:
            comps = comps / np.sqrt(eig + shrinkage * eig.max())[:, None]
        return cls(mean.astype(np.float32), comps.astype(np.float32))

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Project, whiten, L2-normalise: (n, d_in) -> (n, dim) float32."""
        y = (np.asarray(vectors, dtype=np.float32) - self.mean) @ self.components.T
        return (y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, mean=self.mean, components=self.components)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "PCAWhitening":
        with np.load(path) as data:
            return cls(data["mean"], data["components"])
