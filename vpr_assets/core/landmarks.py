"""From clusters of card embeddings to named landmarks, with curators' decisions applied.

Cluster ids change from run to run, so curators anchor decisions on a member's `scan_id` (or a
unique prefix of at least 8 characters) in `$VPR_HOME/curation/clusters.csv`:

    action,scan_id,other_scan_id,name
    rename,3fa4c2d1,,Tower Bridge
    merge,3fa4c2d1,9bc0e7a2,            (the cluster holding other_scan_id joins the first)
    reject,77aa01b3,,                   (the whole cluster is not a landmark)
    restore,77aa01b3,,                  (it is a landmark after all: undoes an earlier reject)
    split,5d5d0c1e,,Old Town Hall       (this scan leaves its cluster for a new one, named)
    move,5d5d0c1e,9bc0e7a2,             (this scan joins the cluster holding other_scan_id)
    locate,3fa4c2d1,,,51.5055,-0.0754   (the landmark stands here: lat, lon; columns `lat,lon`)

A decision on a whole landmark (rename, merge, reject, restore, locate) may name several of its
cards, separated by spaces: it applies to the cluster most of them are in, so it stays in force
when one of them later leaves the clusters. The browser names the medoid and four other cards.

The collection browser (`vpr serve`) appends the same actions, with who and when, to
`curation/clusters_log.csv` (header `action,scan_id,other_scan_id,name,lat,lon,who,when`).
Every later run applies the hand-edited file in file order, then the log in its order; neither
file is ever rewritten by the pipeline.

Where a landmark stands: a curator's `locate` wins; otherwise its top place with coordinates,
which is a city's (or a country's) point, never the building's: no offline gazetteer of
monuments installs from the registries. `location_source` says which one a row carries.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from pydantic import Field, field_validator, model_validator

from vpr_assets.core.csv_rows import CsvRow, append_row, curator_name, log_time, read_rows

ACTIONS = ("rename", "merge", "reject", "restore", "split", "move", "locate")
CURATION_FILE = "curation/clusters.csv"
CURATION_LOG = "curation/clusters_log.csv"
LOG_HEADER = ("action", "scan_id", "other_scan_id", "name", "lat", "lon", "who", "when")


@dataclass
class ClusterDecision:
    action: str
    scan_id: str
    other_scan_id: str = ""
    name: str = ""
    line: int = 0
    lat: float | None = None
    lon: float | None = None
    source: str = "clusters.csv"  # the file it came from, for messages

    @property
    def where(self) -> str:
        return f"{self.source} line {self.line}"


@dataclass
class ClusterEdits:
    """Cluster labels after the curators' decisions, and what they changed."""

    labels: list[int]
    names: dict[int, str]
    rejected: set[int]
    locations: dict[int, tuple[float, float]]  # cluster -> (lat, lon) a curator set
    applied: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class ClusterDecisionRow(CsvRow):
    """One row of `curation/clusters.csv` or `clusters_log.csv`."""

    action: str
    scan_id: str = Field(min_length=1)
    other_scan_id: str = ""
    name: str = ""
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    who: str = ""
    when: str = ""

    @field_validator("action")
    @classmethod
    def _known(cls, value: str) -> str:
        if value.lower() not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {value!r}")
        return value.lower()

    @field_validator("lat", "lon", mode="before")
    @classmethod
    def _blank_is_none(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _complete(self) -> "ClusterDecisionRow":
        if self.action in ("merge", "move") and not self.other_scan_id:
            raise ValueError(f"{self.action} needs other_scan_id")
        if self.action == "rename" and not self.name.strip():
            raise ValueError("rename needs a name")
        if self.action == "locate" and (self.lat is None or self.lon is None):
            raise ValueError("locate needs lat and lon")
        return self

    def decision(self, line: int, source: str) -> ClusterDecision:
        return ClusterDecision(self.action, self.scan_id, self.other_scan_id, self.name.strip(), line,
                               self.lat, self.lon, source)


def read_cluster_decisions(path: Path) -> tuple[list[ClusterDecision], list[str]]:
    """The hand-edited `clusters.csv` at `path`, then the browser's `clusters_log.csv` beside it:
    decisions in the order they apply, and the rows that could not be read (never fatal)."""
    path = Path(path)
    decisions: list[ClusterDecision] = []
    problems: list[str] = []
    for file in (path, path.with_name(Path(CURATION_LOG).name)):
        read = read_rows(file, ClusterDecisionRow, required=("action", "scan_id"))
        decisions += [r.decision(line, file.name) for line, r in read]
        problems += [p if p.startswith(file.name) else f"{file.name}: {p}" for p in read.problems]
    return decisions, problems


def append_cluster_decision(home: Path, action: str, scan_id: str, who: str, other_scan_id: str = "",
                            name: str = "", lat: float | None = None, lon: float | None = None) -> dict:
    """Validate one curator action on a landmark and append it, with who and when, to
    `clusters_log.csv` (append-only, under a file lock). Raises ValueError on a bad action."""
    from pydantic import ValidationError

    for named in (scan_id, other_scan_id):
        if any(c in named for c in ",\n\r\"") or any(len(a) > 128 for a in named.split()) \
                or len(named.split()) > MAX_ANCHORS:
            raise ValueError(f"not a scan id (or up to {MAX_ANCHORS} separated by spaces): {named[:40]!r}")
    values = {"action": action, "scan_id": " ".join(scan_id.split()), "other_scan_id": " ".join(other_scan_id.split()),
              "name": " ".join(str(name or "").split())[:200], "lat": lat, "lon": lon,
              "who": curator_name(who), "when": log_time()}
    try:
        ClusterDecisionRow.model_validate(values)
    except ValidationError as exc:
        raise ValueError("; ".join(e["msg"] for e in exc.errors())) from None
    row = {k: "" if v is None else str(v) for k, v in values.items()}
    append_row(Path(home) / CURATION_LOG, LOG_HEADER, row)
    return row


CLUSTER_ACTIONS = ("rename", "merge", "reject", "restore", "locate")  # act on a whole cluster
MAX_ANCHORS = 8


def anchors(field: str) -> list[str]:
    """The scan ids (or prefixes) a decision names in one column: one, or several separated by spaces."""
    return field.split()[:MAX_ANCHORS]


class ScanIds:
    """The clustered scans, found by full id or by a unique prefix of 8+ characters (binary search:
    a decision costs O(log n) on a million cards)."""

    def __init__(self, scan_ids: Sequence[str]):
        self.pos = {s: i for i, s in enumerate(scan_ids)}
        self._sorted = sorted(self.pos)

    def find(self, prefix: str) -> str | None:
        if prefix in self.pos:
            return prefix
        if len(prefix) < 8:
            return None
        i = bisect.bisect_left(self._sorted, prefix)
        hits = [s for s in self._sorted[i:i + 2] if s.startswith(prefix)]
        return hits[0] if len(hits) == 1 else None

    def cluster(self, field: str, labels: Sequence[int]) -> tuple[str, int] | None:
        """(first anchor found, the cluster most of the anchors found are in; -1 when none is in a
        cluster), or None when no anchor is a clustered scan. Several anchors keep a landmark's decision
        in force when one of its cards later leaves the clusters."""
        found = [s for s in (self.find(a) for a in anchors(field)) if s is not None]
        if not found:
            return None
        votes = Counter(labels[self.pos[s]] for s in found if labels[self.pos[s]] >= 0)
        return found[0], (votes.most_common(1)[0][0] if votes else -1)


def apply_decisions(scan_ids: Sequence[str], labels: list[int], names: dict[int, str],
                    decisions: Sequence[ClusterDecision]) -> ClusterEdits:
    """Apply curator decisions, in order, to cluster labels (-1 = noise)."""
    e = ClusterEdits(list(labels), dict(names), set(), {})
    ids = ScanIds(scan_ids)
    next_id = max([l for l in e.labels if l >= 0], default=-1) + 1
    for d in decisions:
        field = d.scan_id if d.action in CLUSTER_ACTIONS else (anchors(d.scan_id) or [""])[0]
        hit = ids.cluster(field, e.labels)
        if hit is None:
            e.problems.append(f"{d.where}: scan {d.scan_id!r} not found (or ambiguous) among clustered scans")
            continue
        sid, c = hit
        other = None
        if d.action in ("merge", "move"):
            other_hit = ids.cluster(d.other_scan_id, e.labels)
            if other_hit is None:
                e.problems.append(f"{d.where}: other scan {d.other_scan_id!r} not found")
                continue
            other = other_hit[1]
        if d.action in ("rename", "locate") and c < 0:
            e.problems.append(f"{d.where}: scan {sid[:12]} is in no cluster")
            continue
        if d.action == "rename":
            e.names[c] = d.name
        elif d.action == "locate":
            e.locations[c] = (float(d.lat), float(d.lon))
        elif d.action == "reject":
            if c >= 0:
                e.rejected.add(c)
        elif d.action == "restore":
            e.rejected.discard(c)
        elif d.action == "merge":
            if c < 0 or other is None or other < 0 or other == c:
                e.problems.append(f"{d.where}: nothing to merge")
                continue
            e.labels = [c if l == other else l for l in e.labels]
            e.names.pop(other, None)
            moved = e.locations.pop(other, None)
            if moved is not None:  # the merged cluster's point serves when this one has none
                e.locations.setdefault(c, moved)
            if other in e.rejected:
                e.rejected.discard(other)
        elif d.action == "split":
            e.labels[ids.pos[sid]] = next_id
            e.names[next_id] = d.name or f"split of {e.names.get(c, c)}"
            next_id += 1
        elif d.action == "move":
            if other is None or other < 0:
                e.problems.append(f"{d.where}: target scan is in no cluster")
                continue
            e.labels[ids.pos[sid]] = other
        e.applied.append(f"{d.where}: {d.action} {sid[:12]}")
    return e


def landmark_location(top_places: Sequence[Mapping], curator: tuple[float, float] | None
                      ) -> tuple[float | None, float | None, str | None]:
    """(lat, lon, source) of a landmark: the curator's point, else its first top place with
    coordinates ("city" or "country": the place's point, not the building's), else unknown."""
    if curator is not None:
        return curator[0], curator[1], "curator"
    for p in top_places:
        if p.get("lat") is not None and p.get("lon") is not None:
            return float(p["lat"]), float(p["lon"]), "country" if p.get("kind") == "country" else "city"
    return None, None, None


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
    edits = apply_decisions(scan_ids, labels, {}, decisions)
    labels = edits.labels
    position = {sid: i for i, sid in enumerate(scan_ids)}
    rows, summary = [], []
    for c in sorted({lab for lab in labels if lab >= 0}):
        members = [sid for sid, lab in zip(scan_ids, labels) if lab == c]
        auto_name, top_places = name_cluster([_as_list(geo.get(m, (None, None))[0]) for m in members],
                                             [_as_list(geo.get(m, (None, None))[1]) for m in members])
        name = edits.names.get(c) or auto_name or f"landmark {c}"
        member_vecs = vecs[[position[m] for m in members]]
        medoid = members[int(np.argmax(member_vecs @ member_vecs.mean(0)))]
        status = "rejected" if c in edits.rejected else "landmark"
        lat, lon, located_by = landmark_location(top_places, edits.locations.get(c))
        summary.append({"cluster_id": c, "name": name, "size": len(members), "status": status,
                        "representative": medoid[:12], "places": ", ".join(p.get("name", "") for p in top_places[:3]),
                        "location": located_by or ""})
        rows += [{"scan_id": m, "cluster_id": c, "cluster_name": name, "cluster_size": len(members), "status": status,
                  "representative_scan_id": medoid, "model_version": model_version,
                  "places_json": json.dumps(top_places, ensure_ascii=False),
                  "lat": lat, "lon": lon, "location_source": located_by} for m in members]
    return NamedClusters(rows, summary, threshold, edits.applied, edits.problems)


def _as_list(value) -> list:
    """A Parquet list cell (a list, a numpy array, or None) as a list."""
    return [] if value is None else list(value)
