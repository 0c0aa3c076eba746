"""Near-duplicate scans: perceptual-hash range search (FAISS binary index), embedding confirmation,
grouping, and one kept representative per group.

The same card is scanned again by another volunteer, re-encoded, resized or cropped a little:
the bytes differ (ingestion only rejects exact copies) but the 64-bit perceptual hashes stay within
a few bits. Candidates come from a Hamming range search over pHash and dHash (a pair is a
candidate when either hash is within `radius`), each new batch against every earlier scan; when
image embeddings are given, a candidate is confirmed only if the two images also look alike
(cosine), which removes hash collisions of unrelated scans (blank cards, dark scans).

Search: small collections use `faiss.IndexBinaryFlat` (exact). Large ones use multi-index hashing
(`faiss.IndexBinaryMultiHash`): the 64 bits are cut into `nhash` substrings of `bits` bits and a
query probes its substrings with up to `nflip` flipped bits, so any pair within
nhash * (nflip + 1) - 1 bits is guaranteed found and farther ones (up to `radius`) are found with
high probability; measured recall is printed by bench/bench_near_duplicates.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import faiss
import numpy as np
import pandas as pd

from vpr_assets.core.images.hashing import hex_to_bytes

HASH_BITS = 64


@dataclass(frozen=True)
class NearDupConfig:
    radius: int = 12  # Hamming bits; measured: re-encode+0.6x+3% crop <= 14 on pHash, min(pHash,dHash) <= 12
    hash_columns: tuple[str, ...] = ("phash", "dhash")
    flat_max: int = 50_000  # up to this many scans, exact brute force (IndexBinaryFlat) is cheap
    nhash: int = 3  # multi-index hashing: substrings ...
    bits: int = 21  # ... of this many bits ...
    nflip: int = 1  # ... probed with up to this many flipped bits
    min_cosine: float = 0.82  # measured (Lite0 GAP): degraded copies >= 0.87, distinct photos of one landmark <= 0.75


# --------------------------------------------------------------------------------------------
# Range search
# --------------------------------------------------------------------------------------------


def codes_from_hex(hexes: Iterable[str]) -> np.ndarray:
    hexes = list(hexes)
    if not hexes:
        return np.zeros((0, HASH_BITS // 8), dtype=np.uint8)
    return hex_to_bytes(hexes)


def hamming_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hamming distance of two (n, 8) uint8 arrays (vectorised popcount)."""
    x = a.view(np.uint64).ravel() ^ b.view(np.uint64).ravel()
    return np.bitwise_count(x).astype(np.int32)


def build_index(codes: np.ndarray, config: NearDupConfig = NearDupConfig()) -> faiss.IndexBinary:
    """Exact flat index for small collections, multi-index hashing for large ones."""
    if len(codes) <= config.flat_max:
        index = faiss.IndexBinaryFlat(HASH_BITS)
    else:
        index = faiss.IndexBinaryMultiHash(HASH_BITS, config.nhash, config.bits)
        index.nflip = config.nflip
    if len(codes):
        index.add(np.ascontiguousarray(codes, dtype=np.uint8))
    return index


def range_pairs(
    existing: np.ndarray,
    new: np.ndarray,
    radius: int,
    config: NearDupConfig = NearDupConfig(),
    index: faiss.IndexBinary | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs within `radius` bits that involve at least one new code.

    Indices refer to the concatenation [existing; new]; each unordered pair appears once (i < j).
    Only the new codes are queried, so a batch costs O(batch) searches however large the
    collection. `index` may be a prebuilt index over [existing; new] (reused across hash kinds).
    """
    existing = np.ascontiguousarray(existing, dtype=np.uint8).reshape(-1, HASH_BITS // 8)
    new = np.ascontiguousarray(new, dtype=np.uint8).reshape(-1, HASH_BITS // 8)
    n0 = len(existing)
    if len(new) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.int32)
    if index is None:
        index = build_index(np.concatenate([existing, new]), config)
    # faiss binary range search keeps distances strictly below the radius
    lims, dist, ids = index.range_search(new, radius + 1)
    q = np.repeat(np.arange(len(new), dtype=np.int64) + n0, np.diff(lims).astype(np.int64))
    ids = ids.astype(np.int64)
    keep = ids != q
    # a new-new pair is found twice (once from each side): keep the (smaller, larger) copy
    keep &= ~((ids >= n0) & (ids > q))
    i = np.minimum(ids[keep], q[keep])
    j = np.maximum(ids[keep], q[keep])
    d = dist[keep].astype(np.int32)
    if len(i):
        key = i * (n0 + len(new)) + j
        _, first = np.unique(key, return_index=True)
        i, j, d = i[first], j[first], d[first]
    return i, j, d


# --------------------------------------------------------------------------------------------
# Candidate pairs between scans
# --------------------------------------------------------------------------------------------


def _normalise(emb: np.ndarray) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float32)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.maximum(norms, 1e-12)


def _pair_keys(a: Iterable[str], b: Iterable[str]) -> set[tuple[str, str]]:
    return {(x, y) if x <= y else (y, x) for x, y in zip(a, b)}


def find_near_duplicates(
    existing: pd.DataFrame,
    new: pd.DataFrame,
    existing_embeddings: np.ndarray | None = None,
    new_embeddings: np.ndarray | None = None,
    not_duplicates: Iterable[tuple[str, str]] = (),
    config: NearDupConfig = NearDupConfig(),
) -> pd.DataFrame:
    """Near-duplicate pairs between a new batch and every earlier scan (and within the batch).

    `existing` / `new`: rows with `scan_id` and the hash columns (hex). Embeddings (optional) are
    aligned with the rows. Returns one row per pair: scan_a, scan_b, <hash>_dist for each hash
    column, cosine (NaN without embeddings), confirmed (bool). Curator "not a duplicate" pairs are
    never confirmed.
    """
    cols = list(config.hash_columns)
    existing = existing.reset_index(drop=True) if existing is not None else pd.DataFrame(columns=["scan_id", *cols])
    new = new.reset_index(drop=True)
    both = pd.concat([existing[["scan_id", *cols]], new[["scan_id", *cols]]], ignore_index=True)
    n0 = len(existing)
    codes = {c: codes_from_hex(both[c].astype(str)) for c in cols}
    found_i, found_j = [], []
    for c in cols:
        i, j, _ = range_pairs(codes[c][:n0], codes[c][n0:], config.radius, config)
        found_i.append(i)
        found_j.append(j)
    i = np.concatenate(found_i) if found_i else np.zeros(0, np.int64)
    j = np.concatenate(found_j) if found_j else np.zeros(0, np.int64)
    out_cols = ["scan_a", "scan_b", *[f"{c}_dist" for c in cols], "cosine", "confirmed"]
    if len(i) == 0:
        return pd.DataFrame(columns=out_cols)
    key = np.unique(i * len(both) + j)
    i, j = key // len(both), key % len(both)
    ids = both["scan_id"].to_numpy()
    out = pd.DataFrame({"scan_a": ids[i], "scan_b": ids[j]})
    for c in cols:
        out[f"{c}_dist"] = hamming_rows(codes[c][i], codes[c][j])
    if existing_embeddings is not None or new_embeddings is not None:
        parts = [e for e in (existing_embeddings, new_embeddings) if e is not None and len(e)]
        emb = _normalise(np.concatenate(parts))
        if len(emb) != len(both):
            raise ValueError(f"{len(emb)} embeddings for {len(both)} scans")
        out["cosine"] = np.einsum("ij,ij->i", emb[i], emb[j])
        confirmed = out["cosine"].to_numpy() >= config.min_cosine
    else:
        out["cosine"] = np.nan
        confirmed = np.ones(len(out), dtype=bool)
    not_duplicates = list(not_duplicates)
    forbidden = _pair_keys(*zip(*not_duplicates)) if not_duplicates else set()
    if forbidden:
        pairs = zip(out["scan_a"], out["scan_b"])
        confirmed &= np.array([((a, b) if a <= b else (b, a)) not in forbidden for a, b in pairs])
    out["confirmed"] = confirmed
    sort_cols = [f"{c}_dist" for c in cols]
    out["_min"] = out[sort_cols].min(axis=1)
    return out.sort_values(["_min", "scan_a", "scan_b"]).drop(columns="_min").reset_index(drop=True)[out_cols]


# --------------------------------------------------------------------------------------------
# Grouping and representatives
# --------------------------------------------------------------------------------------------


class _UnionFind:
    """Union-find that refuses a merge which would put a curator 'not a duplicate' pair together."""

    def __init__(self, items: Iterable[str], forbidden: set[tuple[str, str]]):
        self.parent = {x: x for x in items}
        self.members: dict[str, set[str]] = {x: {x} for x in self.parent}
        self.blocked: dict[str, set[str]] = {x: set() for x in self.parent}
        for a, b in forbidden:
            if a in self.parent and b in self.parent:
                self.blocked[a].add(b)
                self.blocked[b].add(a)

    def find(self, x: str) -> str:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if self.blocked[ra] & self.members[rb]:
            return False
        if len(self.members[ra]) < len(self.members[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.members[ra] |= self.members.pop(rb)
        self.blocked[ra] |= self.blocked.pop(rb)
        return True


def group_duplicates(
    scans: pd.DataFrame,
    pairs: pd.DataFrame,
    not_duplicates: Iterable[tuple[str, str]] = (),
    forced_keep: Iterable[str] = (),
    forced_reject: Iterable[str] = (),
) -> pd.DataFrame:
    """One representative per duplicate group; the others point to it through `duplicate_of`.

    `scans`: scan_id plus `quality_score` (higher is better) and optionally `quality_label`
    (`good` first). Confirmed pairs are merged closest first (only confirmed pairs are looped
    over, never all pairs of scans); a merge that would join a curator "not a duplicate" pair is
    refused. Curator decisions win: a forced-keep scan is never a duplicate of anything (it is
    its group's representative, or kept beside it); a forced-reject scan is never a
    representative (status `rejected`). Returns scan_id, group_id, is_representative,
    duplicate_of, status (`keep` | `duplicate` | `rejected`), group_size.
    """
    forced_keep, forced_reject = set(forced_keep), set(forced_reject)
    not_duplicates = list(not_duplicates)
    forbidden = _pair_keys(*zip(*not_duplicates)) if not_duplicates else set()
    ids = scans["scan_id"].astype(str).tolist()
    uf = _UnionFind(ids, forbidden)
    if len(pairs):
        conf = pairs[pairs["confirmed"].astype(bool)] if "confirmed" in pairs else pairs
        for a, b in zip(conf["scan_a"], conf["scan_b"]):
            if a in uf.parent and b in uf.parent:
                uf.union(a, b)
    score = scans.set_index("scan_id")["quality_score"].astype(float).to_dict() if "quality_score" in scans else {}
    good = (
        scans.set_index("scan_id")["quality_label"].eq("good").to_dict() if "quality_label" in scans else {}
    )
    rows = []
    for root, members in uf.members.items():
        ranked = sorted(
            members,
            key=lambda s: (
                s not in forced_keep,
                s in forced_reject,
                not good.get(s, True),
                -score.get(s, 0.0),
                s,
            ),
        )
        rep = ranked[0]
        group_id = min(members)
        for s in ranked:
            if s in forced_reject:
                status, dup = "rejected", (rep if s != rep else None)
            elif s == rep or s in forced_keep:
                status, dup = "keep", None
            else:
                status, dup = "duplicate", rep
            rows.append(
                {
                    "scan_id": s,
                    "group_id": group_id,
                    "is_representative": s == rep and s not in forced_reject,
                    "duplicate_of": dup,
                    "status": status,
                    "group_size": len(members),
                }
            )
    out = pd.DataFrame(rows, columns=["scan_id", "group_id", "is_representative", "duplicate_of", "status", "group_size"])
    order = {s: k for k, s in enumerate(ids)}
    return out.sort_values("scan_id", key=lambda c: c.map(order)).reset_index(drop=True)
