"""What a search answers from, loaded once and kept: the current index and the model that built it,
the landmark clusters (with the places of their members), the scans' metadata, and the
non-landmark threshold or rule of the model's latest evaluation. `table_signature` (stat only)
tells when a watched table changed, so the engine reloads only then; an unchanged index keeps its
loaded FAISS index and model."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vpr_assets.core.search.config import SearchConfig
from vpr_assets.core.search.errors import NoIndexError

log = logging.getLogger(__name__)

WATCHED_TABLES = ("faiss_indexes", "landmark_clusters", "raw_scans", "geo_words", "evaluations")


@dataclass
class Cluster:
    cluster_id: int
    name: str
    status: str
    size: int
    representative_scan_id: str
    places: list[dict]
    members: list[str] = field(default_factory=list)
    geo_places: set[str] = field(default_factory=set)


@dataclass
class SearchState:
    index_row: dict
    index: Any  # VectorIndex
    model: Any  # ActiveModel
    clusters: dict[int, Cluster]
    cluster_of: dict[str, int]
    scans: dict[str, dict]
    threshold: float
    threshold_source: str
    evaluation_id: str | None
    signature: tuple
    positions: dict | None = None  # scan_id -> index row, built on first name search
    rule: Any = None  # rejection.NonLandmarkRule of that evaluation (similarity + landmark score), if any


def table_signature(home: Path, tables=WATCHED_TABLES) -> tuple:
    """Cheap change detector: (table, file, mtime, size) for every Parquet file of the tables."""
    out = []
    for t in tables:
        d = home / "tables" / t
        if d.is_dir():
            for p in sorted(d.glob("*.parquet")):
                try:
                    st = p.stat()
                except FileNotFoundError:
                    continue
                out.append((t, p.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def evaluation_threshold(cat, model_version: str) -> tuple[float, str, str] | None:
    """(threshold, evaluation_id, source) of the latest evaluation of `model_version`, or None.

    The pipeline's own evaluation (source 'dagster', on the collection's curated dev set) wins over
    ad-hoc `vpr evaluate` runs, which may use a manifest of quite different pictures; those count
    only when the pipeline never evaluated this model version.
    """
    if not cat.has("evaluations"):
        return None
    df = cat.query(
        "SELECT evaluation_id, value, source FROM evaluations WHERE metric = 'non_landmark_threshold' "
        "AND model_version = ? AND isfinite(value) "
        "ORDER BY (source = 'dagster') DESC, evaluated_at DESC, evaluation_id DESC LIMIT 1",
        [model_version])
    if df.empty:
        return None
    return float(df.value[0]), str(df.evaluation_id[0]), str(df.source[0])


def evaluation_rule(cat, evaluation_id: str | None):
    """The non-landmark rule recorded with an evaluation (`rejection_*` figures), or None: used only
    where its cross-fitted precision and recall beat the similarity threshold's on that evaluation
    (on generated demo cards the landmark score helps little; on real photos it helps a lot), and,
    for a rule that reads the landmark score, only when it was fitted on the score this code computes."""
    if not evaluation_id or not cat.has("evaluations"):
        return None
    from vpr_assets.core.rejection import NonLandmarkRule

    df = cat.query("SELECT metric, value FROM evaluations WHERE evaluation_id = ? AND (metric LIKE 'rejection_%' "
                   "OR metric LIKE 'NonLandmark%')", [evaluation_id])
    m = dict(zip(df.metric, df.value))
    combined = m.get("NonLandmarkPrecision", float("nan")) + m.get("NonLandmarkRecall", float("nan"))
    similarity = m.get("NonLandmarkPrecision_similarity", float("nan")) + m.get("NonLandmarkRecall_similarity", float("nan"))
    if not m.get("rejection_out_of_sample") or not combined > similarity:
        return None
    rule = NonLandmarkRule.from_metrics(m)
    if rule is not None and rule.uses_score:
        from vpr_assets.core.curation.landmark_probe import scorer_version

        if rule.score_version != scorer_version():  # fitted on another landmark score: its weights mean nothing here
            return None
    return rule


def places_from_json(text) -> list[dict]:
    if not text:
        return []
    try:
        places = json.loads(text)
    except (TypeError, ValueError):
        return []
    return [p for p in places if isinstance(p, dict)] if isinstance(places, list) else []


def clean_value(value):
    """JSON-friendly scalar (NaN/NaT/None -> None, numpy -> python)."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def load_state(home: Path, config: SearchConfig, signature: tuple, previous: SearchState | None = None) -> SearchState:
    """Load everything a search needs; an index unchanged since `previous` keeps its loaded FAISS
    index, model and position map. Raises NoIndexError without a current index."""
    from vpr_assets.core.active_model import active_model
    from vpr_assets.core.vision.index import VectorIndex
    from vpr_assets.core.vision.index_builds import latest_index_build
    from vpr_assets.storage import Catalog

    cat = Catalog(home)
    row = latest_index_build(cat)
    if row is None:
        raise NoIndexError(f"no search index in {home}: materialise the faiss_index asset first")
    path = home / str(row["path"])
    same_index = previous is not None and previous.index_row.get("path") == row["path"] \
        and previous.index_row.get("build_id") == row.get("build_id")
    if same_index:
        index, model = previous.index, previous.model
    else:
        if not Path(str(path) + ".json").exists():
            raise NoIndexError(f"the current index {path} is missing from the data root")
        index = VectorIndex.load(path)
        model = active_model(home, str(row["model_version"]))
        log.info("search: loaded index %s (%d cards, model %s)", row["path"], index.count, model.version)

    scans: dict[str, dict] = {}
    if cat.has("raw_scans"):
        cols = ["scan_id", "batch", "path", "file_name", "description", "thumbnail"]
        df = cat.read("raw_scans")
        df = df[[c for c in cols if c in df.columns]].drop_duplicates("scan_id")
        scans = {r["scan_id"]: {k: clean_value(v) for k, v in r.items()} for r in df.to_dict("records")}

    clusters: dict[int, Cluster] = {}
    cluster_of: dict[str, int] = {}
    if cat.has("landmark_clusters"):
        lc = cat.read("landmark_clusters")
        for r in lc.to_dict("records"):
            cid = int(r["cluster_id"])
            c = clusters.get(cid)
            if c is None:
                c = clusters[cid] = Cluster(cid, str(r["cluster_name"]), str(r["status"]), int(r["cluster_size"]),
                                             str(r["representative_scan_id"]), places_from_json(r.get("places_json")))
            c.members.append(r["scan_id"])
            cluster_of[r["scan_id"]] = cid
    if clusters and cat.has("geo_words"):
        geo = cat.read("geo_words", columns=["scan_id", "places"])
        for sid, places in zip(geo.scan_id, geo.places):
            cid = cluster_of.get(sid)
            if cid is None or places is None:
                continue
            for p in places:
                name = p.get("name") if isinstance(p, dict) else None
                if name:
                    clusters[cid].geo_places.add(str(name))

    version = str(row["model_version"])
    found = evaluation_threshold(cat, version)
    if config.threshold is not None:
        threshold, source, eid = float(config.threshold), "config", None
    elif found is not None:
        threshold, eid, by = found
        source = f"evaluation ({by})"
    else:
        threshold, source, eid = float(config.fallback_threshold), "fallback", None
    rule = evaluation_rule(cat, eid) if config.threshold is None else None
    return SearchState(row, index, model, clusters, cluster_of, scans, threshold, source, eid, signature,
                  previous.positions if same_index and previous is not None else None, rule)
