"""Post-embedding retrieval tools: query expansion, database augmentation, k-reciprocal re-ranking,
spatial verification with local features. Plain numpy + OpenCV, no framework.

Why these: they are the standard, training-free ways image retrieval closes part of the gap
between off-the-shelf global descriptors and trained ones (Radenovic et al. 2018 for alpha-QE and
DBA, Zhong et al. 2017 for k-reciprocal re-ranking, Philbin et al. 2007 for spatial verification).
Each one is switched on by a field of `RetrievalConfig` and measured by `vpr evaluate` /
bench/bench_retrieval_steps.py, so a step stays only where it helps.

Honesty rules in `rank_with` (every item queries all the others, as in `evaluate_vectors`):
- the query never augments the database it is searched in (DBA excludes it, exactly);
- leave-one-out whitening (`whiten="loo"`) is fitted without the query;
- k-reciprocal re-ranking treats the query as the probe added to the collection, as in the paper.
All vectors are rows, L2-normalised; similarities are cosines (dot products).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np


def l2n(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _weights(sims: np.ndarray, alpha: float) -> np.ndarray:
    """alpha-QE weights: sim^alpha for positive sims, 0 otherwise (negatives never pull)."""
    return np.power(np.clip(sims, 0.0, None), alpha)


def alpha_query_expansion(q: np.ndarray, gallery: np.ndarray, k: int, alpha: float = 3.0,
                          exclude: Sequence[int] | None = None) -> np.ndarray:
    """New query = normalise(q + sum over its top-k gallery neighbours of sim^alpha * neighbour).

    q: (d,) or (m, d); gallery: (n, d). `exclude[r]` (optional) is a gallery index that query r may
    not use (itself, when queries are gallery items; -1 for none).
    """
    q = np.asarray(q, dtype=np.float32)
    single = q.ndim == 1
    qs = q[None] if single else q
    g = np.asarray(gallery, dtype=np.float32)
    if k <= 0 or len(g) == 0:
        return l2n(qs)[0] if single else l2n(qs)
    sims = qs @ g.T
    if exclude is not None:
        ex = np.asarray(exclude)
        rows = np.nonzero(ex >= 0)[0]
        sims[rows, ex[rows]] = -np.inf
    k = min(k, g.shape[0] - (1 if exclude is not None else 0))
    nb = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    w = _weights(np.take_along_axis(sims, nb, axis=1), alpha)
    out = l2n(qs + np.einsum("mk,mkd->md", w, g[nb]))
    return out[0] if single else out


def _neighbours(v: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's top-k other rows (self excluded): (indices, sims), best first."""
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    k = min(k, len(v) - 1)
    nb = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return nb, np.take_along_axis(sims, nb, axis=1)


def database_augmentation(gallery: np.ndarray, k: int, alpha: float = 3.0) -> np.ndarray:
    """Every database vector replaced by normalise(itself + sum of sim^alpha * its top-k neighbours).

    Done once, offline, on the collection: it pulls each landmark's images towards their shared
    view, so a query near one of them lands near all of them."""
    g = l2n(gallery)
    if k <= 0 or len(g) < 2:
        return g
    nb, s = _neighbours(g, k)
    return l2n(g + np.einsum("nk,nkd->nd", _weights(s, alpha), g[nb]))


def _dba_without(g: np.ndarray, nb: np.ndarray, s: np.ndarray, d: np.ndarray, i: int, k: int,
                 alpha: float) -> np.ndarray:
    """The DBA'd gallery as it would be had item i never been in it (exact): only rows that had i
    among their top-k change, and they take their (k+1)-th neighbour instead."""
    rows = np.nonzero((nb[:, :k] == i).any(axis=1))[0]
    if len(rows) == 0:
        return d
    d = d.copy()
    for j in rows:
        keep = nb[j] != i
        idx, sim = nb[j][keep][:k], s[j][keep][:k]
        d[j] = l2n(g[j] + (_weights(sim, alpha)[:, None] * g[idx]).sum(axis=0))
    return d


def k_reciprocal_rerank(sims: np.ndarray, k1: int = 8, k2: int = 3, lambda_value: float = 0.3) -> np.ndarray:
    """k-reciprocal re-ranking (Zhong et al. 2017) of an (n, n) similarity matrix over one set.

    Returns a new (n, n) similarity, 1 - (lambda * original distance + (1 - lambda) * Jaccard
    distance of the k-reciprocal neighbour sets). Two items are close when they sit in each
    other's neighbourhoods, not only when one is near the other. Defaults are smaller than the
    paper's (k1=20, k2=6): landmark groups in a collection sample hold a handful of images.
    """
    s = np.asarray(sims, dtype=np.float64)
    n = len(s)
    s = s.copy()
    np.fill_diagonal(s, 1.0)
    dist = np.clip(2.0 - 2.0 * s, 0.0, None)
    dist = dist / np.maximum(dist.max(axis=1, keepdims=True), 1e-12)
    k1 = max(1, min(k1, n - 1))
    rank = np.argsort(dist, axis=1, kind="stable")
    half = max(1, int(round(k1 / 2)))

    def recip(i: int, k: int) -> np.ndarray:
        fwd = rank[i, : k + 1]
        back = rank[fwd, : k + 1]
        return fwd[(back == i).any(axis=1)]

    V = np.zeros((n, n))
    for i in range(n):
        kr = recip(i, k1)
        exp = kr
        for c in kr:
            ck = recip(int(c), half)
            if len(np.intersect1d(ck, kr)) > 2.0 / 3.0 * len(ck):
                exp = np.append(exp, ck)
        exp = np.unique(exp)
        w = np.exp(-dist[i, exp])
        V[i, exp] = w / w.sum()
    if k2 > 1:
        V = V[rank[:, :k2]].mean(axis=1)
    jac = np.empty((n, n))
    for i in range(n):
        m = np.minimum(V[i], V).sum(axis=1)
        jac[i] = 1.0 - m / (2.0 - m)
    final = (1.0 - lambda_value) * jac + lambda_value * dist
    return (1.0 - final).astype(np.float32)


# --- spatial verification ---------------------------------------------------------------------


class LocalFeatures:
    """SIFT keypoints + RootSIFT descriptors per image file, computed once and cached."""

    def __init__(self, max_side: int = 640, n_features: int = 2000):
        import cv2

        self.cv2 = cv2
        self.max_side, self.n_features = max_side, n_features
        self._sift = cv2.SIFT_create(nfeatures=n_features)
        self._cache: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        self.pair_inliers: dict[tuple[str, str, str], int] = {}  # (query, candidate, model) -> inliers

    def _gray(self, path: str | Path) -> np.ndarray | None:
        try:
            from vpr_assets.core.images.decode import load_rgb

            im = load_rgb(path)
        except Exception:
            return None
        w, h = im.size
        scale = self.max_side / max(w, h)
        if scale < 1:
            from PIL import Image

            im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
        return self.cv2.cvtColor(np.asarray(im, dtype=np.uint8), self.cv2.COLOR_RGB2GRAY)

    def __call__(self, path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
        key = str(path)
        if key not in self._cache:
            g = self._gray(path)
            kps, desc = (None, None) if g is None else self._sift.detectAndCompute(g, None)
            if desc is None or len(kps) < 4:
                self._cache[key] = (np.zeros((0, 2), np.float32), None)
            else:
                d = desc / np.maximum(desc.sum(axis=1, keepdims=True), 1e-12)  # RootSIFT
                self._cache[key] = (np.float32([kp.pt for kp in kps]), np.sqrt(d).astype(np.float32))
        return self._cache[key]


def count_inliers(a: tuple[np.ndarray, np.ndarray | None], b: tuple[np.ndarray, np.ndarray | None],
                  ratio: float = 0.8, reproj_px: float = 8.0, model: str = "homography") -> int:
    """Geometrically consistent matches between two images' local features (ratio test, then a
    USAC-MAGSAC homography or fundamental matrix); 0 when there is too little to fit."""
    import cv2

    (pa, da), (pb, db) = a, b
    if da is None or db is None or len(da) < 2 or len(db) < 2:
        return 0
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(da, db, k=2)
    good = [m for m, *rest in (p for p in knn if len(p) == 2) if m.distance < ratio * rest[0].distance]
    need = 8 if model == "fundamental" else 4
    if len(good) < need:
        return 0
    src = pa[[m.queryIdx for m in good]]
    dst = pb[[m.trainIdx for m in good]]
    if model == "fundamental":
        _, mask = cv2.findFundamentalMat(src, dst, cv2.USAC_MAGSAC, reproj_px, 0.999, 10000)
    else:
        _, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, reproj_px, maxIters=10000, confidence=0.999)
    return 0 if mask is None else int(mask.sum())


def spatial_verification(query_path: str | Path, candidate_paths: Sequence[str | Path],
                         features: LocalFeatures | None = None, min_inliers: int = 15,
                         model: str = "homography", base_scores: Sequence[float] | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reorder candidates (the top-N of a global ranking) by local-feature geometry.

    Candidates with >= `min_inliers` inliers come first, most inliers first; the rest keep their
    order. Returns (order into candidate_paths, new scores, inlier counts). A verified
    candidate scores 1 + inliers / (inliers + min_inliers), in (1.5, 2): above any cosine, so a
    verified top answer also reads as "this is a landmark" to the threshold downstream.
    """
    feats = features or LocalFeatures()
    fq = feats(query_path)
    inl = np.zeros(len(candidate_paths), dtype=np.int64)
    for j, c in enumerate(candidate_paths):
        key = (str(query_path), str(c), model)
        if key not in feats.pair_inliers:
            feats.pair_inliers[key] = count_inliers(fq, feats(c), model=model)
        inl[j] = feats.pair_inliers[key]
    base = np.asarray(base_scores if base_scores is not None else -np.arange(len(candidate_paths)), np.float64)
    verified = inl >= min_inliers
    scores = np.where(verified, 1.0 + inl / (inl + float(min_inliers)), base)
    order = np.argsort(-scores, kind="stable")
    return order, scores[order].astype(np.float32), inl[order]


# --- the whole ranking --------------------------------------------------------------------------


@dataclass
class RetrievalConfig:
    """Which tools `rank_with` applies, in the order: whiten -> DBA -> alpha-QE -> k-reciprocal ->
    spatial verification. Zero / None switches a step off; the default is plain cosine ranking."""

    whiten: object | None = None  # a fitted PCAWhitening, or "loo" (fit without each query)
    whiten_dim: int = 32  # for "loo"
    whiten_shrinkage: float = 0.1  # for "loo": eig + shrinkage * max eig (small samples need a lot)
    dba_k: int = 0
    dba_alpha: float = 3.0
    qe_k: int = 0
    qe_alpha: float = 3.0
    rerank: bool = False  # k-reciprocal
    rerank_k1: int = 8
    rerank_k2: int = 3
    rerank_lambda: float = 0.3
    spatial_top_n: int = 0
    spatial_min_inliers: int = 15
    spatial_model: str = "homography"
    features: LocalFeatures | None = field(default=None, repr=False, compare=False)  # shared SIFT cache

    def describe(self) -> str:
        parts = []
        if self.whiten is not None:
            parts.append("whiten=loo" if isinstance(self.whiten, str) else f"whiten={getattr(self.whiten, 'dim', '?')}d")
        if self.dba_k:
            parts.append(f"dba={self.dba_k}")
        if self.qe_k:
            parts.append(f"qe={self.qe_k}")
        if self.rerank:
            parts.append(f"kr={self.rerank_k1}/{self.rerank_k2}")
        if self.spatial_top_n:
            parts.append(f"spatial={self.spatial_top_n}")
        return ",".join(parts) or "cosine"


# Only a step that helps on every dev set it is measured on (bench/bench_retrieval_steps.py, each
# step alone on cosine, lite0 320 px; docs/benchmarks.md "Retrieval steps that carry over"): DBA
# (realsample +0.045, demo +0.053, corpus dev tied at 1.0). Leave-one-out whitening (demo -0.011),
# alpha-QE (demo -0.004) and k-reciprocal (demo -0.013) each hurt one set; the earlier chain, chosen
# on the 21 realsample queries alone, made an independent set worse.
BEST = RetrievalConfig(dba_k=2)


def _similarity_matrix(v: np.ndarray, cfg: RetrievalConfig) -> np.ndarray:
    """Row i = query i's similarity to every item after DBA (without i) and alpha-QE; diag = 1."""
    v = l2n(v)
    n = len(v)
    if cfg.dba_k > 0 and n > 2:
        k = min(cfg.dba_k, n - 2)
        nb, s = _neighbours(v, k + 1)
        w = _weights(s[:, :k], cfg.dba_alpha)
        d_all = l2n(v + np.einsum("nk,nkd->nd", w, v[nb[:, :k]]))
    else:
        k, nb, s, d_all = 0, None, None, v
    out = np.empty((n, n), dtype=np.float32)
    for i in range(n):
        d = _dba_without(v, nb, s, d_all, i, k, cfg.dba_alpha) if k else d_all
        q = v[i]
        if cfg.qe_k > 0:
            q = alpha_query_expansion(q[None], d, cfg.qe_k, cfg.qe_alpha, exclude=[i])[0]
        out[i] = d @ q
    np.fill_diagonal(out, 1.0)
    return out


def _full_sims(v: np.ndarray, cfg: RetrievalConfig) -> np.ndarray:
    s = _similarity_matrix(v, cfg)
    if cfg.rerank:
        s = k_reciprocal_rerank(s, cfg.rerank_k1, cfg.rerank_k2, cfg.rerank_lambda)
    return s


def similarity_with(cfg: RetrievalConfig, vectors: np.ndarray) -> np.ndarray:
    """(n, n) similarities after whitening, DBA, QE and k-reciprocal; the diagonal is meaningless."""
    v = l2n(vectors)
    if cfg.whiten is None:
        return _full_sims(v, cfg)
    if not isinstance(cfg.whiten, str):
        return _full_sims(cfg.whiten.transform(v), cfg)
    if cfg.whiten != "loo":
        raise ValueError(f"whiten must be a PCAWhitening or 'loo', got {cfg.whiten!r}")
    from vpr_assets.core.vision.whitening import PCAWhitening

    n = len(v)
    dim = min(cfg.whiten_dim, n - 2)
    out = np.empty((n, n), dtype=np.float32)
    for i in range(n):
        others = np.delete(np.arange(n), i)
        w = PCAWhitening.fit(v[others], dim=dim, shrinkage=cfg.whiten_shrinkage)
        out[i] = _full_sims(w.transform(v), cfg)[i]
    return out


def rank_with(cfg: RetrievalConfig, vectors: np.ndarray, paths: Sequence[str | Path] | None = None,
              features: LocalFeatures | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every item queries all the others: (order, scores), each (n, n-1), self excluded, best
    first - the same contract as `evaluation.rank_all`. `paths` are needed for spatial
    verification (its features are cached in `features` when given, e.g. across configs)."""
    s = similarity_with(cfg, vectors).astype(np.float32)
    n = len(s)
    np.fill_diagonal(s, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")[:, :-1]
    scores = np.take_along_axis(s, order, axis=1)
    if cfg.spatial_top_n > 0:
        if paths is None:
            raise ValueError("spatial verification needs the image paths")
        feats = features or cfg.features or LocalFeatures()
        top = min(cfg.spatial_top_n, n - 1)
        for i in range(n):
            cand = order[i, :top]
            sub, new, _ = spatial_verification(paths[i], [paths[j] for j in cand], feats,
                                               cfg.spatial_min_inliers, cfg.spatial_model, scores[i, :top])
            order[i, :top] = cand[sub]
            scores[i, :top] = new
    return order, scores


# --- command-line options (`vpr evaluate`) ------------------------------------------------------


def add_retrieval_arguments(parser) -> None:
    """The ranking options of `vpr evaluate`; none given = plain cosine ranking, as before."""
    g = parser.add_argument_group("retrieval steps (default: plain cosine)")
    g.add_argument("--retrieval", choices=("cosine", "best"), default=None,
                   help=f"'best' = the steps that helped on the dev set ({BEST.describe()}); other options override it")
    g.add_argument("--whiten", default=None, metavar="loo|FILE.npz",
                   help="PCA-whitening: 'loo' = fitted on the manifest without each query, or a saved PCAWhitening")
    g.add_argument("--whiten-dim", type=int, default=None, help="dimensions kept by --whiten loo (default 32)")
    g.add_argument("--dba", type=int, default=None, metavar="K", help="database-side augmentation with K neighbours")
    g.add_argument("--qe", type=int, default=None, metavar="K", help="alpha query expansion with K neighbours")
    g.add_argument("--rerank", action="store_true", default=None, help="k-reciprocal re-ranking")
    g.add_argument("--spatial", type=int, default=None, metavar="N",
                   help="re-order the top N by SIFT + MAGSAC inliers (slow: N matches per query)")


def retrieval_config_from_args(args) -> RetrievalConfig | None:
    """None when no retrieval option was given (the caller then ranks exactly as before)."""
    names = ("retrieval", "whiten", "whiten_dim", "dba", "qe", "rerank", "spatial")
    given = {n: getattr(args, n, None) for n in names}
    if all(v is None for v in given.values()) or (given["retrieval"] == "cosine" and
                                                  all(given[n] is None for n in names[1:])):
        return None
    from dataclasses import replace

    cfg = replace(BEST) if given["retrieval"] == "best" else RetrievalConfig()
    if given["whiten"] is not None:
        if given["whiten"] == "loo":
            cfg.whiten = "loo"
        elif given["whiten"] in ("none", "off"):
            cfg.whiten = None
        else:
            from vpr_assets.core.vision.whitening import PCAWhitening

            if not Path(given["whiten"]).is_file():
                raise FileNotFoundError(f"--whiten: no such file {given['whiten']} (use 'loo' or a saved PCAWhitening .npz)")
            cfg.whiten = PCAWhitening.load(given["whiten"])
    if given["whiten_dim"] is not None:
        cfg.whiten_dim = int(given["whiten_dim"])
    if given["dba"] is not None:
        cfg.dba_k = int(given["dba"])
    if given["qe"] is not None:
        cfg.qe_k = int(given["qe"])
    if given["rerank"]:
        cfg.rerank = True
    if given["spatial"] is not None:
        cfg.spatial_top_n = int(given["spatial"])
    return cfg
