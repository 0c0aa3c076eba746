"""From clusters of card embeddings to named landmarks, with curators' decisions applied.

Cluster ids change from run to run, so curators anchor decisions on a member's `scan_id` (or a
unique prefix of at least 8 characters) in `$VPR_HOME/curation/clusters.csv`:

    action,scan_id,other_scan_id,name
    rename,3fa4c2d1,,Tower Bridge
    merge,3fa4c2d1,9bc0e7a2,            (the cluster holding other_scan_id joins the first)
    reject,77aa01b3,,                   (the whole cluster is not a landmark)
    split,5d5d0c1e,,Old Town Hall       (this scan leaves its cluster for a new one, named)
    move,5d5d0c1e,9bc0e7a2,             (this scan joins the cluster holding other_scan_id)

Every later run applies them in file order; the file is never rewritten by the pipeline.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from pydantic import Field, field_validator

from vpr_assets.core.csv_rows import CsvRow, read_rows

ACTIONS = ("rename", "merge", "reject", "split", "move")
CURATION_FILE = "curation/clusters.csv"


@dataclass
class ClusterDecision:
    action: str
    scan_id: str
    other_scan_id: str = ""
    name: str = ""
    line: int = 0


@dataclass
class OverrideReport:
    applied: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class ClusterDecisionRow(CsvRow):
    """One row of `curation/clusters.csv`."""

    action: str
    scan_id: str = Field(min_length=1)
    other_scan_id: str = ""
    name: str = ""

    @field_validator("action")
    @classmethod
    def _known(cls, value: str) -> str:
        if value.lower() not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {value!r}")
        return value.lower()


def read_cluster_decisions(path: Path) -> tuple[list[ClusterDecision], list[str]]:
    read = read_rows(path, ClusterDecisionRow, required=("action", "scan_id"))
    return [ClusterDecision(r.action, r.scan_id, r.other_scan_id, r.name, line) for line, r in read], read.problems


def _resolve(prefix: str, ids: Sequence[str]) -> str | None:
    if len(prefix) < 8:
        return None
    hits = [s for s in ids if s.startswith(prefix)]
    return hits[0] if len(hits) == 1 else None


def apply_decisions(scan_ids: Sequence[str], labels: list[int], names: dict[int, str],
                    decisions: Sequence[ClusterDecision]) -> tuple[list[int], dict[int, str], set[int], OverrideReport]:
    """Apply curator decisions to cluster labels (-1 = noise). Returns labels, names, rejected ids."""
    labels = list(labels)
    names = dict(names)
    rejected: set[int] = set()
    report = OverrideReport()
    pos = {s: i for i, s in enumerate(scan_ids)}
    next_id = max([l for l in labels if l >= 0], default=-1) + 1
    for d in decisions:
        sid = _resolve(d.scan_id, scan_ids)
        if sid is None:
            report.problems.append(f"line {d.line}: scan {d.scan_id!r} not found (or ambiguous) among clustered scans")
            continue
        c = labels[pos[sid]]
        other = None
        if d.action in ("merge", "move"):
            osid = _resolve(d.other_scan_id, scan_ids)
            if osid is None:
                report.problems.append(f"line {d.line}: other scan {d.other_scan_id!r} not found")
                continue
            other = labels[pos[osid]]
        if d.action == "rename":
            if c < 0:
                report.problems.append(f"line {d.line}: scan {sid[:12]} is in no cluster")
                continue
            names[c] = d.name
        elif d.action == "reject":
            if c >= 0:
                rejected.add(c)
        elif d.action == "merge":
            if c < 0 or other is None or other < 0 or other == c:
                report.problems.append(f"line {d.line}: nothing to merge")
                continue
            labels = [c if l == other else l for l in labels]
            names.pop(other, None)
        elif d.action == "split":
            labels[pos[sid]] = next_id
            names[next_id] = d.name or f"split of {names.get(c, c)}"
            next_id += 1
        elif d.action == "move":
            if other is None or other < 0:
                report.problems.append(f"line {d.line}: target scan is in no cluster")
                continue
            labels[pos[sid]] = other
        report.applied.append(f"line {d.line}: {d.action} {sid[:12]}")
    return labels, names, rejected, report


def name_cluster(member_places: Sequence[Sequence[Mapping]], member_words: Sequence[Sequence[str]]) -> tuple[str, list[dict]]:
    """A landmark name from its members' geo-words: the dominant landmark/place, then the city.

    Returns (name, places) where places are the dominant matched places with their share."""
    place_votes: Counter = Counter()
    info: dict[tuple, dict] = {}
    n = max(1, len(member_places))
    for places in member_places:
        seen = set()
        for p in places or []:
            key = (p.get("name"), p.get("country"), p.get("kind", "place"))
            if key in seen or not key[0]:
                continue
            seen.add(key)
            place_votes[key] += float(p.get("score", 1.0) or 1.0)
            info.setdefault(key, dict(p))
    top = [(k, v) for k, v in place_votes.most_common(5) if v / n >= 0.2]
    landmark = next((k for k, _ in top if k[2] == "landmark"), None)
    city = next((k for k, _ in top if k[2] not in ("landmark", "country")), None)
    country = next((k for k, _ in top if k[2] == "country"), None)
    parts = []
    if landmark:
        parts.append(landmark[0])
    if city:
        parts.append(f"{city[0]} ({city[1]})" if city[1] else city[0])
    elif country and not landmark:
        parts.append(country[0])
    if not parts:
        words = Counter(w for ws in member_words for w in set(ws or []))
        ranked = sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))[:3]  # ties: alphabetical, stable
        common = [w for w, c in ranked if c / n >= 0.3]
        parts = [" ".join(common)] if common else []
    places = [{**info[k], "share": round(v / n, 3)} for k, v in top]
    return (", ".join(parts) if parts else ""), places


@dataclass
class ClusterSettings:
    threshold: float = 0.72  # cosine for an edge with trained (ArcFace) embeddings: 0.66-0.8 is the useful range
    pretrained_threshold: float = 0.45  # pretrained GeM vectors, centred: measured on the demo collection
    center: bool = True  # subtract the collection mean first (GeM features are all positive)
    min_size: int = 7
    k: int = 20
    method: str = "components"  # or "louvain"
    mutual: bool = True


@dataclass
class NamedClusters:
    rows: list[dict]  # one landmark_clusters row per clustered card
    summary: list[dict]  # one per cluster: id, name, size, status, representative, places
    threshold: float  # the edge threshold used
    applied: list[str] = field(default_factory=list)  # curator decisions applied
    problems: list[str] = field(default_factory=list)  # curator decisions that could not be applied


def build_named_clusters(scan_ids: Sequence[str], vectors, geo: Mapping[str, tuple[Sequence, Sequence]],
                         decisions: Sequence[ClusterDecision], model_version: str, pretrained: bool,
                         settings: ClusterSettings | None = None) -> NamedClusters:
    """Cluster the cards' embeddings, apply the curators' decisions, name each cluster from its
    members' geo-words (`geo`: scan_id -> (places, words)) and pick its medoid as representative."""
    import json

    import numpy as np

    from vpr_assets.core.vision.clustering import cluster_embeddings

    s = settings or ClusterSettings()
    scan_ids = list(scan_ids)
    vecs = np.asarray(vectors, dtype=np.float32)
    threshold = s.pretrained_threshold if pretrained else s.threshold
    x = vecs
    if s.center and len(vecs) > 1:
        x = vecs - vecs.mean(0, keepdims=True)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    result = cluster_embeddings(x, k=s.k, threshold=threshold, min_size=s.min_size, mutual=s.mutual,
                                method=s.method) if scan_ids else None
    labels = [int(v) for v in result.labels] if result is not None else []
    labels, names, rejected, report = apply_decisions(scan_ids, labels, {}, decisions)
    position = {sid: i for i, sid in enumerate(scan_ids)}
    rows, summary = [], []
    for c in sorted({lab for lab in labels if lab >= 0}):
        members = [sid for sid, lab in zip(scan_ids, labels) if lab == c]
        auto_name, top_places = name_cluster([_as_list(geo.get(m, (None, None))[0]) for m in members],
                                             [_as_list(geo.get(m, (None, None))[1]) for m in members])
        name = names.get(c) or auto_name or f"landmark {c}"
        member_vecs = vecs[[position[m] for m in members]]
        medoid = members[int(np.argmax(member_vecs @ member_vecs.mean(0)))]
        status = "rejected" if c in rejected else "landmark"
        summary.append({"cluster_id": c, "name": name, "size": len(members), "status": status,
                        "representative": medoid[:12], "places": ", ".join(p.get("name", "") for p in top_places[:3])})
        rows += [{"scan_id": m, "cluster_id": c, "cluster_name": name, "cluster_size": len(members), "status": status,
                  "representative_scan_id": medoid, "model_version": model_version,
                  "places_json": json.dumps(top_places, ensure_ascii=False)} for m in members]
    return NamedClusters(rows, summary, threshold, report.applied, report.problems)


def _as_list(value) -> list:
    """A Parquet list cell (a list, a numpy array, or None) as a list."""
    return [] if value is None else list(value)
