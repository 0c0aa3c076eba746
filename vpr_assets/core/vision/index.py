"""FAISS vector index over L2-normalised embeddings, keyed by `scan_id`.

Why these choices:
- Inner product on L2-normalised vectors = cosine similarity, the score the model is trained for.
- Small collections (< `EXACT_BELOW` vectors) get an exact `Flat` index: it is fast enough, needs no
  training and has perfect recall. Large ones get IVF with an HNSW coarse quantiser (cheap list
  assignment even with ~16k lists) and PQ codes (dim/8 bytes per vector: 15 M x 512-d -> ~1 GB)
  or SQ8 (dim bytes per vector, higher recall), nlist ~ 4 sqrt(n), trained on a sample. The
  `*_refine` codecs re-score the IVF candidates (k_factor x k of them) exactly against float16
  copies of the vectors (FAISS `IndexRefine` with `SQfp16`, dim x 2 bytes per vector): the
  compressed codes only choose candidates, so recall@10 no longer pays for the compression
  (bench/bench_faiss_1m.py). `fastscan_refine` (the asset's default) uses 4-bit fast-scan PQ codes
  (dim/4 bytes, scanned with SIMD table lookups) for the candidates. A refined index answers a query
  whose best candidate scores below `exact_fallback_below` over all its float16 copies: such a query
  sits in no dense region, its true neighbours are spread over every list, and no probe finds them.
- FAISS ids are row positions 0..n-1; the scan_ids live in a side array saved next to the index
  (`<index>.ids.npy`), so string scan_ids (sha256) need no int64 hashing. New batches are added with
  `add` without rebuilding (an IVF index keeps its trained lists; rebuild when the data drifts or
  when a Flat index grows past `EXACT_BELOW`, see `should_rebuild`).
- Files are written atomically: index, then ids, then the JSON sidecar last (it names the count,
  model version and embedding data version; `load` checks they agree).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Sequence

import faiss
import numpy as np

from vpr_assets.storage.atomic import atomic_path

EXACT_BELOW = 50_000
FORMAT_VERSION = 1
CODECS = ("pq", "sq8", "pq_refine", "sq8_refine", "fastscan_refine")
DEFAULT_K_FACTOR = 4  # candidates re-scored per result wanted, for the *_refine codecs
FASTSCAN_K_FACTOR = 16  # 4-bit codes rank coarsely: re-score more of them (bench/bench_faiss_1m.py)
# A refined index answers a query exhaustively (over its float16 copies) when the best candidate the
# probe found scores below this cosine: such a query sits in no dense region, so its true neighbours
# are spread over all the lists and no probe of a few of them finds them (bench/bench_faiss_1m.py).
DEFAULT_EXACT_FALLBACK_BELOW = 0.4


def nlist_for(n: int) -> int:
    """~4 sqrt(n) inverted lists, at least 16."""
    return max(16, int(round(4 * math.sqrt(n))))


def pq_m_for(dim: int) -> int:
    """PQ sub-quantisers: ~8 dims each (dim/8 bytes per vector); must divide dim."""
    m = max(1, dim // 8)
    while dim % m:
        m -= 1
    return m


def choose_factory(n: int, dim: int, exact_below: int = EXACT_BELOW, codec: str = "pq") -> str:
    """FAISS factory string for a collection of n vectors of dimension dim."""
    if n < exact_below:
        return "Flat"
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}")
    nlist = nlist_for(n)
    if codec.startswith("fastscan"):  # 4-bit PQ over pairs of dims, scanned with SIMD lookups
        tail = f"PQ{dim // 2 if dim % 2 == 0 else dim}x4fs"
    else:
        tail = "SQ8" if codec.startswith("sq8") else f"PQ{pq_m_for(dim)}"
    refine = ",Refine(SQfp16)" if codec.endswith("_refine") else ""
    return f"IVF{nlist}_HNSW32,{tail}{refine}"


def default_nprobe(nlist: int) -> int:
    """Lists visited per query: ~1.5% of the lists, within [16, 256] (bench/bench_faiss_1m.py)."""
    return int(min(256, max(16, round(nlist * 0.015))))


def _as_float32_normalised(vectors: np.ndarray) -> np.ndarray:
    x = np.array(vectors, dtype=np.float32, order="C", copy=True)
    if x.ndim == 1:
        x = x[None, :]
    faiss.normalize_L2(x)
    return x


def _ids_to_array(ids: Sequence) -> np.ndarray:
    """int ids -> int64 array; anything else -> fixed-width utf-8 bytes (compact, mmap-able)."""
    ids = list(ids)
    if ids and all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in ids):
        return np.asarray(ids, dtype=np.int64)
    enc = [str(i).encode("utf-8") for i in ids]
    width = max((len(e) for e in enc), default=1) or 1
    return np.asarray(enc, dtype=f"S{width}")


def _concat_ids(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "S" and b.dtype.kind == "S":
        width = max(a.dtype.itemsize, b.dtype.itemsize)
        return np.concatenate([a.astype(f"S{width}"), b.astype(f"S{width}")])
    if a.dtype.kind != b.dtype.kind and len(a) and len(b):
        raise TypeError(f"cannot mix id kinds {a.dtype} and {b.dtype}")
    return np.concatenate([a, b]) if len(a) else b


class VectorIndex:
    """A FAISS index plus its scan_id map and lineage metadata."""

    def __init__(self, index: faiss.Index, ids: np.ndarray, meta: dict):
        if index.ntotal != len(ids):
            raise ValueError(f"index holds {index.ntotal} vectors but {len(ids)} ids were given")
        self.index = index
        self.ids = ids
        self.meta = dict(meta)
        self._id_set: set | None = None
        self.last_fallbacks = 0  # queries of the last search answered exhaustively
        ivf = self._ivf()
        if ivf is not None:
            self.set_search_params(self.meta.get("nprobe"), self.meta.get("ef_search"), self.meta.get("k_factor"))

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        scan_ids: Sequence,
        model_version: str = "",
        data_version: str = "",
        factory: str | None = None,
        exact_below: int = EXACT_BELOW,
        codec: str = "pq",
        train_size: int | None = None,
        seed: int = 0,
        add_batch: int = 200_000,
    ) -> "VectorIndex":
        """Choose (or take) a factory string, train on a random sample, add everything."""
        x = np.asarray(vectors)
        n, dim = x.shape
        if len(scan_ids) != n:
            raise ValueError(f"{n} vectors but {len(scan_ids)} scan_ids")
        factory = factory or choose_factory(n, dim, exact_below, codec)
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        t0 = time.perf_counter()
        if not index.is_trained:
            ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
            if hasattr(ivf, "do_polysemous_training"):
                # only useful for Hamming pre-filtering, which is not used; it made training ~10x slower
                ivf.do_polysemous_training = False
            want = train_size or min(n, max(40 * ivf.nlist, 20_000))
            rng = np.random.default_rng(seed)
            sample = np.sort(rng.choice(n, size=min(n, want), replace=False))
            index.train(_as_float32_normalised(x[sample]))
        train_s = time.perf_counter() - t0
        meta = {
            "format_version": FORMAT_VERSION,
            "factory": factory,
            "dim": dim,
            "metric": "inner_product",
            "model_version": model_version,
            "data_version": data_version,
            "faiss_version": faiss.__version__,
            "built_count": n,
            "train_seconds": round(train_s, 3),
        }
        out = cls(index, _ids_to_array([]), meta)
        for start in range(0, n, add_batch):
            out.add(x[start : start + add_batch], list(scan_ids[start : start + add_batch]), check_duplicates=False)
        if len(set(out.ids.tolist())) != n:
            raise ValueError("scan_ids are not unique")
        return out

    # -- properties -----------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    def __len__(self) -> int:
        return self.count

    @property
    def is_exact(self) -> bool:
        return self._ivf() is None

    def should_rebuild(self, exact_below: int = EXACT_BELOW) -> bool:
        """True when the collection outgrew its index kind (Flat past the threshold, or an IVF
        index now holding 4x the vectors it was trained for, so its lists are too long)."""
        if self.is_exact:
            return self.count >= exact_below
        return self.count > 4 * max(1, int(self.meta.get("built_count", self.count)))

    def _ivf(self):
        try:
            return faiss.extract_index_ivf(self.index)
        except RuntimeError:
            return None

    @property
    def is_refined(self) -> bool:
        return isinstance(faiss.downcast_index(self.index), faiss.IndexRefine)

    def set_search_params(self, nprobe: int | None = None, ef_search: int | None = None,
                          k_factor: float | None = None, exact_fallback_below: float | None = None) -> None:
        """IVF: lists visited per query, the HNSW quantiser's efSearch (>= nprobe) and, for a
        refined index, how many candidates per wanted result are re-scored exactly and the best
        score under which a query is answered exhaustively instead (-1 or less turns that off)."""
        ivf = self._ivf()
        if ivf is None:
            return
        if self.is_refined:
            refine = faiss.downcast_index(self.index)
            fastscan = "x4fs" in str(self.meta.get("factory", ""))
            refine.k_factor = float(k_factor or (FASTSCAN_K_FACTOR if fastscan else DEFAULT_K_FACTOR))
            self.meta["k_factor"] = refine.k_factor
            fallback = exact_fallback_below if exact_fallback_below is not None else self.meta.get("exact_fallback_below")
            self.meta["exact_fallback_below"] = float(DEFAULT_EXACT_FALLBACK_BELOW if fallback is None else fallback)
        nprobe = int(nprobe or default_nprobe(ivf.nlist))
        ivf.nprobe = nprobe
        ef = int(ef_search or max(64, 2 * nprobe))
        quantizer = faiss.downcast_index(ivf.quantizer)
        if hasattr(quantizer, "hnsw"):
            quantizer.hnsw.efSearch = ef
        self.meta["nprobe"], self.meta["ef_search"] = nprobe, ef

    # -- add / search ---------------------------------------------------------------------------

    def add(self, vectors: np.ndarray, scan_ids: Sequence, check_duplicates: bool = True) -> None:
        """Append a batch; its rows get the next positions. Duplicated scan_ids are refused."""
        x = _as_float32_normalised(vectors)
        if x.shape[1] != self.dim:
            raise ValueError(f"vectors have dim {x.shape[1]}, index has {self.dim}")
        if len(scan_ids) != len(x):
            raise ValueError(f"{len(x)} vectors but {len(scan_ids)} scan_ids")
        new_ids = _ids_to_array(scan_ids)
        if check_duplicates:
            new_list = new_ids.tolist()
            if len(set(new_list)) != len(new_list):
                raise ValueError("duplicate scan_ids within the batch")
            if self._id_set is None:
                self._id_set = set(self.ids.tolist())
            clash = self._id_set.intersection(new_list)
            if clash:
                raise ValueError(f"{len(clash)} scan_ids already indexed, e.g. {next(iter(clash))!r}")
        self.index.add(x)
        self.ids = _concat_ids(self.ids, new_ids)
        if self._id_set is not None:
            self._id_set.update(new_ids.tolist())

    def _decode_id(self, value):
        return value.decode("utf-8") if isinstance(value, bytes) else int(value)

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, list[list]]:
        """(scores (nq, k) float32 cosine, scan_ids per query best first); short lists when fewer
        than k vectors are found (missing places are dropped, scores padded with -inf)."""
        q = _as_float32_normalised(queries)
        k = max(1, min(k, self.count)) if self.count else 1
        scores, pos = self.index.search(q, k)
        scores = np.where(pos >= 0, scores, -np.inf).astype(np.float32)
        scores, pos = self._exact_fallback(q, k, scores, pos)
        out_ids = [[self._decode_id(self.ids[p]) for p in row if p >= 0] for row in pos]
        return scores, out_ids

    def _exact_fallback(self, q: np.ndarray, k: int, scores: np.ndarray, pos: np.ndarray):
        """Re-answer, over the float16 copies of every vector, the queries whose best probed score is
        below `exact_fallback_below` (a refined index only; the others come back unchanged)."""
        self.last_fallbacks = 0
        below = self.meta.get("exact_fallback_below")
        if below is None or below <= -1 or not self.is_refined or self.is_exact:
            return scores, pos
        weak = np.flatnonzero(scores[:, 0] < below)
        self.last_fallbacks = int(len(weak))
        if not len(weak):
            return scores, pos
        exact = faiss.downcast_index(faiss.downcast_index(self.index).refine_index)
        s2, p2 = exact.search(q[weak], k)
        scores, pos = scores.copy(), pos.copy()
        scores[weak] = np.where(p2 >= 0, s2, -np.inf)
        pos[weak] = p2
        return scores, pos

    def reconstruct_ids(self, positions: np.ndarray) -> list:
        return [self._decode_id(self.ids[p]) for p in positions]

    # -- persistence ----------------------------------------------------------------------------

    @staticmethod
    def _paths(path: str | Path) -> tuple[Path, Path, Path]:
        path = Path(path)
        return path, path.with_name(path.name + ".ids.npy"), path.with_name(path.name + ".json")

    def save(self, path: str | Path) -> Path:
        index_path, ids_path, meta_path = self._paths(path)
        with atomic_path(index_path) as tmp:
            faiss.write_index(self.index, str(tmp))
        with atomic_path(ids_path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, self.ids, allow_pickle=False)
        meta = dict(self.meta)
        meta.update(
            count=self.count,
            index_type=type(self.index).__name__,
            ids_file=ids_path.name,
            ids_dtype=str(self.ids.dtype),
            saved_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        with atomic_path(meta_path) as tmp:
            tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
        return index_path

    @classmethod
    def load(cls, path: str | Path, mmap: bool = False) -> "VectorIndex":
        index_path, ids_path, meta_path = cls._paths(path)
        meta = json.loads(meta_path.read_text())
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
        index = faiss.read_index(str(index_path), flags)
        ids = np.load(ids_path, mmap_mode="r" if mmap else None, allow_pickle=False)
        if index.ntotal != meta["count"] or len(ids) != meta["count"]:
            raise ValueError(
                f"index files disagree: sidecar count {meta['count']}, index {index.ntotal}, ids {len(ids)}"
            )
        return cls(index, ids, meta)
