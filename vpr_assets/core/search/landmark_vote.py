"""Which landmark is this picture, or none? A score-weighted vote of the top neighbours that belong
to `status='landmark'` clusters. A query is a non-landmark when the evaluation's rule (top-1
similarity and the landmark score) says so, or, without a rule, when its best neighbour scores
below the non-landmark threshold (`evaluations.non_landmark_threshold` of the same model version,
else the fallback). The answer always says why."""

from __future__ import annotations

import numpy as np

from vpr_assets.core.search.config import NON_LANDMARK
from vpr_assets.core.search.state import SearchState


def query_landmark_score(image) -> float:
    """The landmark score of a query picture, as evaluations score theirs (`landmark_probe.place_scores`)."""
    from vpr_assets.core.curation.landmark_probe import place_scores

    return float(place_scores([image])[0])


def landmark_vote(st: SearchState, ids: list, scores: np.ndarray, neighbours: int, accepted: bool | None = None) -> dict:
    """{"label", "landmark", "reason"} from the top `neighbours` results; `accepted`: the rejection
    rule's answer (None: the similarity threshold decides)."""
    if accepted is False:
        return {"label": NON_LANDMARK, "landmark": None,
                "reason": "the non-landmark rule (top-1 similarity and landmark score) says no landmark"}
    if not len(ids) or (accepted is None and float(scores[0]) < st.threshold):
        return {"label": NON_LANDMARK, "landmark": None,
                "reason": "best neighbour below the non-landmark threshold" if len(ids) else "empty index"}
    floor = st.threshold if accepted is None else float("-inf")  # an accepted query: every top neighbour votes
    votes: dict[int, float] = {}
    counts: dict[int, int] = {}
    for sid, s in zip(ids[:neighbours], scores[:neighbours]):
        cid = st.cluster_of.get(sid)
        c = st.clusters.get(cid) if cid is not None else None
        if c is None or c.status != "landmark" or float(s) < floor:
            continue
        votes[cid] = votes.get(cid, 0.0) + float(s)
        counts[cid] = counts.get(cid, 0) + 1
    if not votes:
        return {"label": NON_LANDMARK, "landmark": None,
                "reason": "no neighbour above the threshold belongs to a landmark cluster"}
    best = max(votes, key=lambda c: (votes[c], counts[c]))
    c = st.clusters[best]
    rep = st.scans.get(c.representative_scan_id, {})
    landmark = {"cluster_id": c.cluster_id, "name": c.name, "size": c.size, "places": c.places,
                "votes": counts[best], "confidence": round(votes[best] / sum(votes.values()), 4),
                "representative_scan_id": c.representative_scan_id,
                "representative_thumbnail": rep.get("thumbnail")}
    return {"label": c.name, "landmark": landmark, "reason": "score-weighted vote of the top neighbours"}
