"""Browsing the collection: filtered, paged card lists and one card's full record, straight from
the DuckDB catalog (the filtering and paging run in DuckDB, so a page costs the same on 1M cards).

Tables that are not materialised yet are left out of the join (a fresh collection has raw_scans
only); their columns come back empty.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vpr_assets.core.csv_rows import read_rows
from vpr_assets.core.landmarks import (
    CLUSTER_ACTIONS,
    CURATION_FILE,
    CURATION_LOG,
    ClusterDecisionRow,
    anchors,
    landmark_location,
)
from vpr_assets.storage import Catalog

PAGE_MAX = 200


@dataclass(frozen=True)
class CardFilter:
    """What a curator narrows the grid to; None = any."""

    batch: str | None = None
    label: str | None = None  # good | bad
    status: str | None = None  # keep | duplicate | rejected
    reason: str | None = None  # one of scan_quality.reasons (blurry, no_landmark, curator_reject, ...)
    group: str | None = None  # duplicate group id
    landmark: str | None = None  # cluster name (case-insensitive substring) or id
    country: str | None = None  # ISO-2 of the card's resolved place
    has_caption: bool | None = None  # OCR read any text
    after: str | None = None  # paging cursor: the last scan_id of the previous page
    limit: int = 48


def _joins(cat: Catalog) -> tuple[str, dict[str, bool]]:
    have = {t: cat.has(t) for t in ("scan_quality", "ocr_text", "geo_words", "landmark_clusters")}
    sql = "raw_scans r"
    if have["scan_quality"]:
        sql += " LEFT JOIN scan_quality q USING (scan_id)"
    if have["ocr_text"]:
        sql += " LEFT JOIN ocr_text o USING (scan_id)"
    if have["geo_words"]:
        sql += " LEFT JOIN geo_words g USING (scan_id)"
    if have["landmark_clusters"]:
        sql += " LEFT JOIN landmark_clusters c USING (scan_id)"
    return sql, have


def _select(have: dict[str, bool]) -> str:
    cols = ["r.scan_id", "r.batch", "r.file_name", "r.path", "r.thumbnail", "r.description", "r.width", "r.height"]
    cols += ["q.label", "q.status", "q.reasons", "q.group_id", "q.group_size", "q.duplicate_of", "q.landmark_score",
             "q.curator_decision", "q.curator_label"] if have["scan_quality"] else \
        ["NULL AS label", "NULL AS status", "NULL AS reasons", "NULL AS group_id", "NULL AS group_size",
         "NULL AS duplicate_of", "NULL AS landmark_score", "NULL AS curator_decision", "NULL AS curator_label"]
    cols += ["o.text AS caption"] if have["ocr_text"] else ["NULL AS caption"]
    cols += ["g.place AS place"] if have["geo_words"] else ["NULL AS place"]
    cols += ["c.cluster_id", "c.cluster_name", "c.status AS cluster_status"] if have["landmark_clusters"] else \
        ["NULL AS cluster_id", "NULL AS cluster_name", "NULL AS cluster_status"]
    return ", ".join(cols)


def list_cards(cat: Catalog, f: CardFilter) -> dict[str, Any]:
    """One page of cards matching `f`, ordered by scan_id: {"cards": [...], "next": cursor or None}."""
    if not cat.has("raw_scans"):
        return {"cards": [], "next": None}
    joins, have = _joins(cat)
    where, params = [], []
    if f.batch:
        where.append("r.batch = ?")
        params.append(f.batch)
    if have["scan_quality"]:
        for col, val in (("q.label", f.label), ("q.status", f.status), ("q.group_id", f.group)):
            if val:
                where.append(f"{col} = ?")
                params.append(val)
        if f.reason:
            where.append("list_contains(q.reasons, ?)")
            params.append(f.reason)
    elif f.label or f.status or f.group or f.reason:
        return {"cards": [], "next": None}  # nothing curated yet: no card has a label
    if f.landmark:
        if not have["landmark_clusters"]:
            return {"cards": [], "next": None}
        if f.landmark.isdigit():
            where.append("c.cluster_id = ?")
            params.append(int(f.landmark))
        else:
            where.append("c.cluster_name ILIKE ?")
            params.append(f"%{f.landmark}%")
    if f.country:
        if not have["geo_words"]:
            return {"cards": [], "next": None}
        where.append("g.place.country = ?")
        params.append(f.country.upper())
    if f.has_caption is not None:
        if have["ocr_text"]:
            where.append("coalesce(trim(o.text), '') <> ''" if f.has_caption else "coalesce(trim(o.text), '') = ''")
        elif f.has_caption:
            return {"cards": [], "next": None}  # nothing read yet: no card has a caption (and every card has none)
    if f.after:
        where.append("r.scan_id > ?")
        params.append(f.after)
    limit = max(1, min(int(f.limit), PAGE_MAX))
    sql = f"SELECT {_select(have)} FROM {joins}" + (f" WHERE {' AND '.join(where)}" if where else "") + \
        f" ORDER BY r.scan_id LIMIT {limit + 1}"
    rows = [_clean(r) for r in cat.query(sql, params).to_dict("records")]
    nxt = rows[limit - 1]["scan_id"] if len(rows) > limit else None
    return {"cards": rows[:limit], "next": nxt}


def facets(cat: Catalog) -> dict[str, list]:
    """The values each filter can take (for the filter form): batches, labels, reasons, countries."""
    out: dict[str, list] = {"batches": [], "labels": [], "statuses": [], "reasons": [], "countries": [], "landmarks": []}
    if not cat.has("raw_scans"):
        return out
    out["batches"] = list(cat.query("SELECT DISTINCT batch FROM raw_scans ORDER BY 1").batch)
    if cat.has("scan_quality"):
        out["labels"] = list(cat.query("SELECT DISTINCT label FROM scan_quality WHERE label IS NOT NULL ORDER BY 1").label)
        out["statuses"] = list(cat.query("SELECT DISTINCT status FROM scan_quality WHERE status IS NOT NULL ORDER BY 1").status)
        out["reasons"] = list(cat.query("SELECT DISTINCT unnest(reasons) AS r FROM scan_quality ORDER BY 1").r)
    if cat.has("geo_words"):
        try:
            out["countries"] = list(cat.query("SELECT DISTINCT place.country AS c FROM geo_words "
                                              "WHERE place IS NOT NULL AND place.country IS NOT NULL ORDER BY 1").c)
        except Exception:  # partitions written before the `place` column
            out["countries"] = []
    out["landmarks"] = landmark_list(cat)
    return out


def landmark_list(cat: Catalog, status: str | None = "landmark") -> list[dict]:
    """Landmark clusters (id, name, size), largest first; `status` None for every cluster."""
    if not cat.has("landmark_clusters"):
        return []
    where = "WHERE status = ?" if status else ""
    return cat.query(f"""SELECT cluster_id, any_value(cluster_name) AS name, count(*) AS size
                         FROM landmark_clusters {where} GROUP BY 1 ORDER BY 3 DESC, 2""",
                     [status] if status else []).to_dict("records")


def scan_path(cat: Catalog, scan_id: str) -> str | None:
    """The scan's path under the data root, or None if the scan is unknown."""
    if not cat.has("raw_scans"):
        return None
    rows = cat.query("SELECT path FROM raw_scans WHERE scan_id = ? LIMIT 1", [scan_id])
    return str(rows.path.iloc[0]) if len(rows) else None


def card_record(cat: Catalog, scan_id: str) -> dict[str, Any] | None:
    """Everything the collection knows of one card: scan, quality, OCR boxes, geo-words and places,
    duplicates and crops, cluster, embedding model; None if the scan is unknown."""
    if not cat.has("raw_scans"):
        return None
    joins, have = _joins(cat)
    rows = cat.query(f"SELECT {_select(have)} FROM {joins} WHERE r.scan_id = ?", [scan_id]).to_dict("records")
    if not rows:
        return None
    card = _clean(rows[0])
    card["ocr"] = None
    if have["ocr_text"]:
        o = cat.query("SELECT text, boxes, width, height, engine, error FROM ocr_text WHERE scan_id = ?", [scan_id])
        card["ocr"] = _clean(o.to_dict("records")[0]) if len(o) else None
    card["geo"] = None
    if have["geo_words"]:
        g = cat.query("SELECT * FROM geo_words WHERE scan_id = ?", [scan_id])
        card["geo"] = _clean(g.to_dict("records")[0]) if len(g) else None
    card["duplicates"] = []
    if have["scan_quality"] and card.get("group_id"):
        d = cat.query("""SELECT q.scan_id, q.status, q.is_representative, r.file_name, r.batch, r.thumbnail
                         FROM scan_quality q JOIN raw_scans r USING (scan_id)
                         WHERE q.group_id = ? AND q.scan_id <> ? ORDER BY q.scan_id""", [card["group_id"], scan_id])
        card["duplicates"] = [_clean(x) for x in d.to_dict("records")]
    card["crops"] = []
    if cat.has("derived_scans"):
        d = cat.query("SELECT scan_id, crop_index, box, thumbnail FROM derived_scans WHERE source_scan_id = ? "
                      "ORDER BY crop_index", [scan_id])
        card["crops"] = [_clean(x) for x in d.to_dict("records")]
    card["model_version"] = None
    if cat.has("image_embeddings"):
        m = cat.query("SELECT model_version FROM image_embeddings WHERE scan_id = ? LIMIT 1", [scan_id])
        card["model_version"] = m.model_version.iloc[0] if len(m) else None
    return card


def _clean(row: dict) -> dict:
    """DuckDB/pandas values as plain JSON-able Python (numpy arrays -> lists, NaN -> None)."""
    out = {}
    for k, v in row.items():
        out[k] = _plain(v)
    return out


def _plain(v):
    import math

    import numpy as np

    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if v is not None and not isinstance(v, (str, int, float, bool)):
        try:
            return json.loads(json.dumps(v, default=str))
        except (TypeError, ValueError):
            return str(v)
    return v


def _location_sql(cat: Catalog) -> str:
    """The location columns of `landmark_clusters`; nulls for a table written before they existed."""
    if "location_source" in cat.columns("landmark_clusters"):
        return "any_value(lat) AS lat, any_value(lon) AS lon, any_value(location_source) AS location_source"
    return "NULL::DOUBLE AS lat, NULL::DOUBLE AS lon, NULL::VARCHAR AS location_source"


def landmark_record(cat: Catalog, cluster_id: int) -> dict[str, Any] | None:
    """One landmark cluster: name, status, size, where it stands (and who said so), medoid card,
    places, member cards, the curators' decisions that name its cards, and the other landmarks
    (what it can be merged with)."""
    if not cat.has("landmark_clusters"):
        return None
    rows = cat.query(f"""SELECT cluster_id, any_value(cluster_name) AS name, any_value(status) AS status,
                               count(*) AS size, any_value(representative_scan_id) AS medoid,
                               any_value(places_json) AS places_json, any_value(model_version) AS model_version,
                               {_location_sql(cat)}
                        FROM landmark_clusters WHERE cluster_id = ? GROUP BY 1""", [int(cluster_id)])
    if rows.empty:
        return None
    rec = _clean(rows.to_dict("records")[0])
    rec["places"] = json.loads(rec.pop("places_json") or "[]")
    rec["lat"], rec["lon"], rec["location_source"] = _stands_at(rec["lat"], rec["lon"], rec["location_source"],
                                                                rec["places"])
    rec["cards"] = list_cards(cat, CardFilter(landmark=str(int(cluster_id)), limit=PAGE_MAX))["cards"]
    rec["medoid_card"] = next((c for c in rec["cards"] if c["scan_id"] == rec["medoid"]), None)
    members = set(cat.query("SELECT scan_id FROM landmark_clusters WHERE cluster_id = ?", [int(cluster_id)]).scan_id)
    rec["decisions"] = [d for d in landmark_decisions(cat) if members.intersection(d["scan_ids"] + d["other_scan_ids"])]
    rec["others"] = [c for c in landmark_list(cat, status=None) if c["cluster_id"] != int(cluster_id)]
    return rec


def _stands_at(lat, lon, source, places: list[dict]) -> tuple[float | None, float | None, str | None]:
    """The stored location of a landmark; for a table written before the location columns, the
    one `landmark_clusters` would store now (`core.landmarks.landmark_location`)."""
    if source is not None and lat is not None and lat == lat:  # NaN-safe
        return float(lat), float(lon), str(source)
    return landmark_location(places, None)


def landmark_decisions(cat: Catalog) -> list[dict]:
    """The curators' landmark decisions, in the order they apply (who and when for the browser's log),
    with the scan-id prefixes of hand-edited rows resolved to full ids where one card has the prefix."""
    rows = [(rel, line, r) for rel in (CURATION_FILE, CURATION_LOG) for line, r in read_rows(cat.home / rel, ClusterDecisionRow)]
    prefixes = sorted({sid for _, _, r in rows for sid in (r.scan_id + " " + r.other_scan_id).split() if 8 <= len(sid) < 64})
    hits: dict[str, list[str]] = {}
    if prefixes and cat.has("raw_scans"):
        found = cat.query("""SELECT p.prefix, r.scan_id FROM (SELECT DISTINCT scan_id FROM raw_scans) r
                             JOIN (SELECT unnest(?::VARCHAR[]) AS prefix) p ON starts_with(r.scan_id, p.prefix)""",
                          [prefixes])
        for prefix, sid in zip(found.prefix, found.scan_id):
            hits.setdefault(prefix, []).append(sid)

    def full(field: str) -> list[str]:
        return [hits[a][0] if len(hits.get(a, [])) == 1 else a for a in anchors(field)]

    return [{"file": rel, "line": line, "action": r.action, "scan_ids": full(r.scan_id),
             "other_scan_ids": full(r.other_scan_id), "name": r.name, "lat": r.lat, "lon": r.lon,
             "who": r.who, "when": r.when} for rel, line, r in rows]


def unapplied_landmark_decisions(cat: Catalog, decisions: list[dict] | None = None) -> list[dict]:
    """Landmark decisions (`landmark_decisions`, read here unless given) the last clustering could not
    apply because the cards they name are in no cluster now (set aside by curation since, or never
    clustered): a curator should see them."""
    clustered = set(cat.query("SELECT DISTINCT scan_id FROM landmark_clusters").scan_id)
    out = []
    for d in landmark_decisions(cat) if decisions is None else decisions:
        if d["action"] in CLUSTER_ACTIONS:  # a landmark, named by any of its cards (merge: and the one joining it)
            named = [d["scan_ids"], d["other_scan_ids"]]
        elif d["action"] == "move":  # the card may be outside every cluster; its target may not
            named = [d["other_scan_ids"]]
        else:  # split: the card itself
            named = [d["scan_ids"][:1]]
        missing = [ids for ids in named if ids and not any(s in clustered for s in ids)]
        if missing:
            out.append({**d, "missing": [s for ids in missing for s in ids]})
    return out


def map_points(cat: Catalog) -> dict[str, list[dict]]:
    """What the offline map draws: landmark clusters where they stand (a curator's point, else their
    top place's; listed, not drawn, when none is known), and the cards' resolved places counted per
    place."""
    out: dict[str, list[dict]] = {"landmarks": [], "places": [], "rejected": [], "unapplied": []}
    if cat.has("landmark_clusters"):
        out["unapplied"] = unapplied_landmark_decisions(cat)
        out["rejected"] = landmark_list(cat, status="rejected")
        for r in cat.query(f"""SELECT cluster_id, any_value(cluster_name) AS name, count(*) AS size,
                                     any_value(places_json) AS places_json, {_location_sql(cat)}
                              FROM landmark_clusters WHERE status = 'landmark' GROUP BY 1 ORDER BY 3 DESC""").itertuples():
            places = json.loads(r.places_json or "[]")
            lat, lon, source = _stands_at(r.lat, r.lon, r.location_source, places)
            top = next((p for p in places if p.get("lat") is not None and p.get("lon") is not None), {})
            out["landmarks"].append({"cluster_id": int(r.cluster_id), "name": r.name, "size": int(r.size),
                                     "lat": lat, "lon": lon, "location_source": source,
                                     "place": top.get("name")})  # listed even when no place is known
    if cat.has("geo_words"):
        try:
            df = cat.query("""SELECT place.name AS name, place.country AS country, place.lat AS lat, place.lon AS lon,
                                     count(*) AS cards
                              FROM geo_words WHERE place IS NOT NULL AND place.lat IS NOT NULL
                              GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC LIMIT 2000""")
            out["places"] = [_clean(x) for x in df.to_dict("records")]
        except Exception:  # partitions from before the `place` column
            out["places"] = []
    return out
