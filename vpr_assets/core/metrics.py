"""Retrieval and recognition metrics, with the exact definitions written down.

Notation for one query: rel(k) is 1 if the k-th result is relevant (same landmark label), REL_k the
number of relevant results in the top k, REL the number of relevant items in the whole gallery.

- precision@k            = REL_k / k
- R-precision            = REL_R / R, with R = REL
- recall@k               = REL_k / REL                 (`recall_at_k`, the usual one)
- recall@k, capped       = REL_k / min(k, REL)         (`recall_at_k_capped`; 1.0 is reachable
                                                        even when REL > k)
- AP@K                   = (1 / min(K, REL)) * sum_{k<=K} precision@k * rel(k)
- mAP@K                  = mean of AP@K over queries that have at least one relevant item.

A ranking shorter than k counts the missing places as not relevant. The query itself is removed
from its own ranking, and an item ranked twice counts once (so no figure can exceed 1). Queries whose label is the "no landmark" label are not retrieval queries;
they only count for non-landmark rejection.
"""

from __future__ import annotations

from typing import Hashable, Iterable, Mapping, Sequence

import numpy as np

NONE_LABEL = "none"


def _rels(rels: Sequence[int | bool], k: int) -> np.ndarray:
    arr = np.zeros(k, dtype=np.float64)
    top = np.asarray(list(rels[:k]), dtype=np.float64)
    arr[: len(top)] = top
    return arr


def precision_at_k(rels: Sequence[int | bool], k: int) -> float:
    if k <= 0:
        raise ValueError("k must be positive")
    return float(_rels(rels, k).sum() / k)


def r_precision(rels: Sequence[int | bool], n_relevant: int) -> float:
    if n_relevant <= 0:
        return float("nan")
    return float(_rels(rels, n_relevant).sum() / n_relevant)


def recall_at_k(rels: Sequence[int | bool], k: int, n_relevant: int) -> float:
    """REL_k / REL."""
    if n_relevant <= 0:
        return float("nan")
    return float(_rels(rels, k).sum() / n_relevant)


def recall_at_k_capped(rels: Sequence[int | bool], k: int, n_relevant: int) -> float:
    """REL_k / min(k, REL)."""
    if n_relevant <= 0:
        return float("nan")
    return float(_rels(rels, k).sum() / min(k, n_relevant))


def average_precision_at_k(rels: Sequence[int | bool], k: int, n_relevant: int) -> float:
    """AP@K = (1 / min(K, REL)) * sum_{i<=K} P@i * rel(i)."""
    if n_relevant <= 0:
        return float("nan")
    r = _rels(rels, k)
    precisions = np.cumsum(r) / np.arange(1, k + 1)
    return float((precisions * r).sum() / min(k, n_relevant))


def mean_average_precision_at_k(queries: Iterable[tuple[Sequence[int | bool], int]], k: int) -> float:
    """mAP@K over (rels, REL) pairs; queries with REL == 0 are skipped."""
    aps = [average_precision_at_k(r, k, n) for r, n in queries if n > 0]
    return float(np.mean(aps)) if aps else float("nan")


def global_average_precision(
    predictions: Mapping[Hashable, tuple[Hashable, float]], truth: Mapping[Hashable, Hashable],
    none_label: Hashable = NONE_LABEL,
) -> float:
    """GAP (micro AP), the Google Landmark Recognition metric: predictions sorted by confidence,
    GAP = (1/M) * sum_i P(i) * rel(i), M = queries with a true landmark. A query without a
    prediction (or predicted `none_label`) contributes nothing but still counts in M."""
    m = sum(1 for q in truth if truth[q] != none_label)
    if m == 0:
        return float("nan")
    preds = sorted(
        ((conf, q, lab) for q, (lab, conf) in predictions.items() if lab != none_label),
        key=lambda t: -t[0],
    )
    correct = 0
    total = 0.0
    for i, (_conf, q, lab) in enumerate(preds, start=1):
        if truth.get(q, none_label) == lab and lab != none_label:
            correct += 1
            total += correct / i
    return total / m


def evaluate_rankings(
    rankings: Mapping[Hashable, Sequence[Hashable]],
    labels: Mapping[Hashable, Hashable],
    ks: Sequence[int] = (1, 3, 5, 10),
    gallery: Iterable[Hashable] | None = None,
    is_landmark_pred: Mapping[Hashable, bool] | None = None,
    none_label: Hashable = NONE_LABEL,
) -> dict[str, float]:
    """Metrics over many queries.

    rankings: query id -> gallery ids, best first. labels: id -> landmark label (`none_label` for
    no landmark). gallery: the ids searched (default: every id in `labels`); REL counts relevant
    gallery items, not only those returned. is_landmark_pred: optional query -> predicted "shows a
    landmark", scored as non-landmark rejection (positive class = no landmark).

    Returns "P@k", "Recall@k", "RecallCapped@k", "mAP@k" per k, "R-precision", "Accuracy@1"
    (top answer's label == query label), "n_queries", and when given "NonLandmarkPrecision",
    "NonLandmarkRecall", "n_rejection_queries".
    """
    gallery_ids = list(labels) if gallery is None else list(gallery)
    label_counts: dict[Hashable, int] = {}
    for g in gallery_ids:
        label_counts[labels[g]] = label_counts.get(labels[g], 0) + 1
    gallery_set = set(gallery_ids)

    per: dict[str, list[float]] = {}
    n_queries = 0
    for q, ranked in rankings.items():
        ql = labels[q]
        if ql == none_label:
            continue
        n_rel = label_counts.get(ql, 0) - (1 if q in gallery_set else 0)
        if n_rel <= 0:
            continue
        # each gallery item counts once, the query never: REL_k <= min(k, REL), so every figure is in [0, 1]
        ranked = list(dict.fromkeys(g for g in ranked if g != q and g in gallery_set))
        rels = [1 if labels[g] == ql else 0 for g in ranked]
        n_queries += 1
        for k in ks:
            per.setdefault(f"P@{k}", []).append(precision_at_k(rels, k))
            per.setdefault(f"Recall@{k}", []).append(recall_at_k(rels, k, n_rel))
            per.setdefault(f"RecallCapped@{k}", []).append(recall_at_k_capped(rels, k, n_rel))
            per.setdefault(f"mAP@{k}", []).append(average_precision_at_k(rels, k, n_rel))
        per.setdefault("R-precision", []).append(r_precision(rels, n_rel))
        per.setdefault("Accuracy@1", []).append(1.0 if rels and rels[0] else 0.0)
    out = {key: float(np.mean(vals)) for key, vals in per.items()}
    out["n_queries"] = n_queries

    if is_landmark_pred is not None:
        queries = list(is_landmark_pred)
        out["NonLandmarkPrecision"], out["NonLandmarkRecall"] = non_landmark_figures(
            [bool(is_landmark_pred[q]) for q in queries], [labels[q] != none_label for q in queries])
        out["n_rejection_queries"] = len(is_landmark_pred)
    return out


def non_landmark_figures(pred_is_landmark, is_landmark) -> tuple[float, float]:
    """(precision, recall) of the answer "no landmark" (the positive class), NaN where undefined."""
    pred_none = ~np.asarray(pred_is_landmark, dtype=bool)
    truly_none = ~np.asarray(is_landmark, dtype=bool)
    tp = int((pred_none & truly_none).sum())
    p = tp / int(pred_none.sum()) if pred_none.any() else float("nan")
    r = tp / int(truly_none.sum()) if truly_none.any() else float("nan")
    return p, r
