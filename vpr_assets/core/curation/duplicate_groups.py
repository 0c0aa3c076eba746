"""Near duplicates across the whole collection: candidates from perceptual hashes, confirmed by
image embeddings where both scans have one, grouped, and one representative kept per group
(earlier batches' kept representatives stay so; earlier partitions are never rewritten)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from vpr_assets.core.curation.curator_files import Decisions
from vpr_assets.core.curation.duplicates import NearDupConfig, find_near_duplicates, group_duplicates
from vpr_assets.storage import Catalog

# Scans with these reasons take no part in the near-duplicate search: a blank card or a card back
# collides with every other one on perceptual hashes, and a multi-card scan is replaced by its crops.
NO_DUPLICATE_SEARCH = frozenset({"blank", "postcard_back", "multiple_cards", "decode_failed"})


def eligible_for_duplicates(row: dict) -> bool:
    return not (set(row["reasons"]) & NO_DUPLICATE_SEARCH)


def other_batch_scans(cat: Catalog, batch: str) -> pd.DataFrame:
    """Every scan (raw and derived) of the other batches, with what their own scan_quality says
    (status, quality_score; null when not curated yet); ineligible ones are left out."""
    sources = [t for t in ("raw_scans", "derived_scans") if cat.has(t)]
    cols = ["scan_id", "batch", "phash", "dhash", "status", "quality_score"]
    if not sources:
        return pd.DataFrame(columns=cols)
    union = " UNION ALL ".join(f"SELECT scan_id, batch, phash, dhash FROM {t} WHERE batch <> $batch" for t in sources)
    if cat.has("scan_quality"):
        skip = ", ".join(f"'{r}'" for r in sorted(NO_DUPLICATE_SEARCH))
        sql = (f"SELECT s.scan_id, s.batch, s.phash, s.dhash, q.status, q.quality_score FROM ({union}) s "
               f"LEFT JOIN (SELECT scan_id, status, quality_score, reasons FROM scan_quality WHERE batch <> $batch) q "
               f"USING (scan_id) WHERE q.reasons IS NULL OR NOT list_has_any(q.reasons, [{skip}]) ORDER BY s.batch, s.scan_id")
    else:
        sql = f"SELECT scan_id, batch, phash, dhash, NULL AS status, NULL AS quality_score FROM ({union}) ORDER BY batch, scan_id"
    with cat.connect() as con:
        return con.execute(sql, {"batch": batch}).fetch_df()[cols]


def embeddings_for(cat: Catalog, scan_ids: Iterable[str]) -> tuple[dict[str, np.ndarray], str | None]:
    """Image embeddings of these scans from the collection's most common model version."""
    ids = sorted(set(scan_ids))
    if not ids or not cat.has("image_embeddings"):
        return {}, None
    from vpr_assets.storage.catalog import arrow_to_vectors

    with cat.connect() as con:
        top = con.execute("SELECT model_version, count(*) n FROM image_embeddings GROUP BY 1 ORDER BY n DESC, 1 LIMIT 1").fetchone()
        if top is None:
            return {}, None
        version = top[0]
        tbl = con.execute("SELECT scan_id, embedding FROM image_embeddings WHERE model_version = ? AND scan_id IN "
                          "(SELECT unnest(?::VARCHAR[]))", [version, ids]).to_arrow_table()
    vecs = arrow_to_vectors(tbl.column("embedding"))
    return dict(zip(tbl.column("scan_id").to_pylist(), vecs)), version


@dataclass
class DuplicateResult:
    table: pd.DataFrame  # one row per scan of the batch: duplicate_of, group_id, ...
    pairs: pd.DataFrame
    embedding_version: str | None
    incumbents_used: int


def resolve_duplicates(
    new: pd.DataFrame,
    existing: pd.DataFrame,
    decisions: Decisions,
    embeddings: dict[str, np.ndarray] | Callable[[set[str]], dict[str, np.ndarray]],
    config: NearDupConfig = NearDupConfig(),
    embedding_version: str | None = None,
) -> DuplicateResult:
    """Group the batch's scans with their near copies anywhere in the collection.

    `new`: this batch's eligible scans (scan_id, phash, dhash, label, quality_score).
    `existing`: other batches' eligible scans (scan_id, phash, dhash, status, quality_score).
    `embeddings`: {scan_id: vector}, or a function giving them for a set of scan_ids.

    Rule (documented in the asset): candidates are hash pairs; a pair whose two scans both have an
    image embedding is confirmed only if their cosine reaches `config.min_cosine`; a pair without
    embeddings is confirmed by the hashes. In a group, if some scan of another batch is already
    that batch's kept representative (status keep) and not rejected by a curator, it stays the
    representative (the best of them if several) and this batch's copies point to it: earlier
    partitions are never rewritten, so the collection keeps one kept scan per group. Otherwise the
    representative is the best scan of this batch (curator keep, not curator reject, label good,
    higher quality_score, then scan_id). A curator-kept scan never points to anything.
    """
    cols = ["scan_id", "duplicate_of", "group_id", "group_size", "is_representative", "duplicate_evidence",
            "duplicate_hash_distance", "duplicate_cosine"]
    if new.empty:
        return DuplicateResult(pd.DataFrame(columns=cols), pd.DataFrame(), embedding_version, 0)
    existing = existing[~existing.scan_id.isin(set(new.scan_id))].drop_duplicates("scan_id").reset_index(drop=True)
    pairs = find_near_duplicates(existing[["scan_id", "phash", "dhash"]], new[["scan_id", "phash", "dhash"]],
                                 not_duplicates=decisions.not_duplicates, config=config)
    if len(pairs):
        if callable(embeddings):  # fetched for the candidate pairs only, never the whole collection
            embeddings = embeddings(set(pairs.scan_a) | set(pairs.scan_b))
        cos = [float(np.dot(embeddings[a], embeddings[b]) / max(1e-12, np.linalg.norm(embeddings[a]) * np.linalg.norm(embeddings[b])))
               if a in embeddings and b in embeddings else float("nan") for a, b in zip(pairs.scan_a, pairs.scan_b)]
        pairs["cosine"] = np.array(cos, dtype=np.float64)
        has = pairs["cosine"].notna()
        pairs["confirmed"] = pairs["confirmed"].astype(bool) & (~has | (pairs["cosine"] >= config.min_cosine))
        pairs["evidence"] = np.where(has, "embedding", "hash")
        pairs["hash_distance"] = pairs[["phash_dist", "dhash_dist"]].min(axis=1).astype(int)
    conf = pairs[pairs["confirmed"].astype(bool)] if len(pairs) else pairs
    other_ids = set(conf["scan_a"]) | set(conf["scan_b"]) if len(conf) else set()
    ex = existing[existing.scan_id.isin(other_ids)]
    everyone = pd.concat([new[["scan_id", "quality_score"]], ex[["scan_id", "quality_score"]]], ignore_index=True)
    everyone = everyone.drop_duplicates("scan_id")
    groups = group_duplicates(everyone.fillna({"quality_score": -math.inf}), conf, decisions.not_duplicates)
    group_of = dict(zip(groups.scan_id, groups.group_id))
    members: dict[str, list[str]] = {}
    for s, g in group_of.items():
        members.setdefault(g, []).append(s)
    current = set(new.scan_id)
    nq = new.set_index("scan_id")
    oq = ex.set_index("scan_id")
    keep, reject = decisions.keep, decisions.reject
    closest: dict[str, dict] = {}
    for r in conf.itertuples(index=False) if len(conf) else []:
        for s in (r.scan_a, r.scan_b):
            prev = closest.get(s)
            if prev is None or r.hash_distance < prev["hash_distance"]:
                closest[s] = {"hash_distance": r.hash_distance, "cosine": r.cosine, "evidence": r.evidence}
    rows, incumbents_used = [], 0
    for g, ms in members.items():
        cur = sorted(s for s in ms if s in current)
        if not cur:
            continue
        incumbents = [s for s in ms if s not in current and oq.at[s, "status"] == "keep" and s not in reject]
        if incumbents:
            rep = min(incumbents, key=lambda s: (s not in keep, -_score(oq.at[s, "quality_score"]), s))
            incumbents_used += 1
        else:
            rep = min(cur, key=lambda s: (s not in keep, s in reject, nq.at[s, "label"] != "good",
                                          -_score(nq.at[s, "quality_score"]), s))
        for s in cur:
            pointer = None if (s == rep or s in keep or len(ms) == 1) else rep
            near = closest.get(s, {})
            rows.append({"scan_id": s, "duplicate_of": pointer, "group_id": g, "group_size": len(ms),
                         "is_representative": s == rep and s not in reject and len(ms) > 1,
                         "duplicate_evidence": near.get("evidence"), "duplicate_hash_distance": near.get("hash_distance"),
                         "duplicate_cosine": near.get("cosine")})
    return DuplicateResult(pd.DataFrame(rows, columns=cols), pairs, embedding_version, incumbents_used)


def _score(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return -math.inf
    return -math.inf if math.isnan(f) else f
