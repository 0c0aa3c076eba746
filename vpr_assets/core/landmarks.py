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
