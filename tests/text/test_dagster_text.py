"""The text assets through Dagster: ocr_text -> landmark_lexicon -> geo_words -> text_embeddings on a small batch of
postcards with printed captions (real EasyOCR, real MiniLM, real DuckDB), re-runs, checks, the CLI."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vpr_assets.core.images import synth
from vpr_assets.storage import Catalog

ROOT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
TEXT_ASSETS = ["ocr_text", "geo_words", "text_embeddings"]
PLACES = {p.key: p for p in synth.DEMO_PLACES}


def blank_card(seed: int = 0) -> Image.Image:
    """A card-sized photo-like gradient with grain and no text at all."""
    rng = np.random.default_rng(seed)
    h, w = synth.CARD_H, synth.CARD_W
    grad = np.linspace(90, 200, h, dtype=np.float32)[:, None, None] * np.array([0.8, 0.9, 1.0], np.float32)
    arr = np.broadcast_to(grad, (h, w, 3)) + rng.integers(-6, 7, (h, w, 1))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def make_batch(folder: Path, cards: dict, descriptions: dict) -> None:
    """cards: file name -> PIL image; descriptions: file name -> text (descriptions.csv)."""
    folder.mkdir(parents=True)
    for name, im in cards.items():
        im.save(folder / name, quality=92)
    with open(folder / "descriptions.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "description"])
        for name, d in descriptions.items():
            w.writerow([name, d])


def register(batch: str) -> None:
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", [batch])


def run(keys, batch):
    from vpr_assets.runner import materialize_partitions

    res = materialize_partitions(keys, [batch])[0]
    assert res.success
    return res


def run_text_chain(batch):
    """The lexicon over the whole collection (its own run: it is not partitioned), then the batch."""
    lexicon = run(["landmark_lexicon"], None)
    return lexicon, run(TEXT_ASSETS, batch)


def meta(res, key: str) -> dict:
    mats = res.asset_materializations_for_node(key)
    assert len(mats) == 1, key
    return {k: v.value for k, v in mats[0].metadata.items()}


def places_of(geo, sid) -> set:
    row = geo[geo.scan_id == sid].iloc[0]
    return {(p["name"], p["country"], p["kind"]) for p in row.places}


# ---- fast: wiring and table rules ---------------------------------------------------------------


def test_text_assets_are_wired_as_specified():
    from vpr_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    expected_deps = {"ocr_text": {"raw_scans"}, "geo_words": {"ocr_text", "raw_scans", "landmark_lexicon"},
                     "text_embeddings": {"ocr_text", "raw_scans"}}
    for key, deps in expected_deps.items():
        node = graph.get(dg.AssetKey(key))
        assert {k.to_user_string() for k in node.parent_keys} == deps
        assert node.group_name == "text"
        assert node.code_version
        assert node.partitions_def is not None and node.partitions_def.name == "scan_batches"
        assert node.automation_condition is not None
    assert graph.get(dg.AssetKey("ocr_text")).pools == {"ocr"}
    lexicon = graph.get(dg.AssetKey("landmark_lexicon"))  # collection-wide: fitted on every batch
    assert lexicon.partitions_def is None and {k.to_user_string() for k in lexicon.parent_keys} == {"raw_scans"}
    assert lexicon.group_name == "text" and lexicon.automation_condition is not None
    checks = {c.name for c in defs.resolve_asset_graph().asset_check_keys}
    assert {"ocr_text_covers_batch", "geo_places_valid", "text_embeddings_valid"} <= checks


def test_place_validation_rules():
    from vpr_assets.defs.text.checks import invalid_places

    iso = {"GB", "FR", "IT"}
    good = [{"name": "London", "country": "GB", "lat": 51.5, "lon": -0.13, "score": 1.0, "kind": "city"},
            {"name": "Tower Bridge", "country": None, "lat": None, "lon": None, "score": 0.5, "kind": "landmark"}]
    bad = [{"name": "Atlantis", "country": "XX", "lat": 10.0, "lon": 10.0, "score": 1.0, "kind": "city"},
           {"name": "Nowhere", "country": None, "lat": 0.0, "lon": 0.0, "score": 1.0, "kind": "city"},
           {"name": "Pole", "country": "FR", "lat": 91.0, "lon": 200.0, "score": 1.2, "kind": "city"}]
    assert invalid_places([good, None, []], iso) == []
    reasons = [why for _, why, _ in invalid_places([good, bad], iso)]
    assert reasons == ["country 'XX' is not an ISO code", "no country", "lat 91.0", "lon 200.0", "score 1.2"]


def test_empty_text_embeddings_partition_is_a_typed_file(vpr_home):
    """A batch without text still writes its file (so re-runs replace old rows), typed like the others."""
    from vpr_assets.defs.text.assets import text_embedding_table

    cat = Catalog(vpr_home)
    vecs = np.eye(2, 384, dtype=np.float32)
    both, ocr = "ocr+description", "ocr"
    cat.write_partition("text_embeddings", "a", text_embedding_table([("s1", both), ("s1", ocr)], "a", ["x", "y"], vecs))
    cat.write_partition("text_embeddings", "a", text_embedding_table([], "a", [], np.zeros((0, 384), np.float32)))
    cat.write_partition("text_embeddings", "b", text_embedding_table([("s3", ocr)], "b", ["z"], vecs[:1]))
    assert cat.has("text_embeddings", "a") and len(cat.read("text_embeddings", "a")) == 0
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert pq.read_schema(cat.partition_path("text_embeddings", "a")).field("embedding").type == pa.list_(pa.float32(), 384)
    assert len(cat.query("SELECT DISTINCT typeof(embedding) AS t FROM text_embeddings")) == 1
    assert list(cat.read("text_embeddings").scan_id) == ["s3"] and list(cat.read("text_embeddings").source) == ["ocr"]


# ---- slow: the whole chain on real postcards --------------------------------------------------


@pytest.mark.slow
def test_text_chain_on_captioned_postcards_and_rerun(vpr_home, dagster_home):
    batch = "cards-1"
    cards = {"london_0.jpg": synth.landmark_card(PLACES["tower_bridge"], 0),
             "london_1.jpg": synth.landmark_card(PLACES["tower_bridge"], 1),
             "paris.jpg": synth.landmark_card(PLACES["notre_dame"], 0),
             "roma.jpg": synth.landmark_card(PLACES["san_pietro"], 0),
             "blank.jpg": blank_card(),
             "vanishing.jpg": synth.landmark_card(PLACES["brandenburger_tor"], 0)}
    # only the two London cards are described: "Tower Bridge" on two descriptions becomes a landmark
    # of the collection's lexicon; Paris and Rome must come from the printed captions alone
    desc = {"london_0.jpg": PLACES["tower_bridge"].description,
            "london_1.jpg": "Tower Bridge at dusk, London"}
    make_batch(vpr_home / "inbox" / batch, cards, desc)
    register(batch)
    run(["raw_scans", "scan_rejects"], batch)
    cat = Catalog(vpr_home)
    scans = cat.read("raw_scans", batch)
    assert len(scans) == 6
    sid = dict(zip(scans.file_name, scans.scan_id))
    # the scan disappears from disk after ingestion: its OCR row carries the error, the batch goes on
    (vpr_home / scans.set_index("file_name").at["vanishing.jpg", "path"]).write_bytes(b"not a jpeg any more")

    lexicon_run, first = run_text_chain(batch)
    checks = {e.check_name: e.passed for e in first.get_asset_check_evaluations()}
    assert checks == {"ocr_text_covers_batch": True, "geo_places_valid": True, "text_embeddings_valid": True}

    ocr = cat.read("ocr_text", batch).set_index("scan_id")
    assert len(ocr) == 6
    assert "LONDON" in ocr.at[sid["london_0.jpg"], "text"].upper()
    assert "PARIS" in ocr.at[sid["paris.jpg"], "text"].upper()
    assert ocr.at[sid["blank.jpg"], "text"] == "" and pd.isna(ocr.at[sid["blank.jpg"], "error"])
    assert ocr.at[sid["vanishing.jpg"], "text"] == "" and ocr.at[sid["vanishing.jpg"], "error"]
    assert ocr.error.notna().sum() == 1
    box = ocr.at[sid["paris.jpg"], "boxes"][0]
    assert set(box) == {"text", "confidence", "x0", "y0", "x1", "y1", "line", "script", "engine"} and box["x1"] > box["x0"]
    assert box["engine"] == "easyocr" and box["script"] == "latin"
    assert ocr.settings_hash.nunique() == 1 and json.loads(ocr.settings_json.iloc[0])["det_max_side"] == 640
    assert ocr.engine.iloc[0].startswith("easyocr 1.7.2 english_g2")
    m = meta(first, "ocr_text")
    assert (m["ocr_now"], m["reused"], m["failed"], m["cards_with_text"]) == (6, 0, 1, 4)
    assert m["images_per_second"] > 0 and 0.3 < m["mean_confidence"] <= 1.0
    print(f"\nocr_text: {m['images_per_second']} images/s, mean confidence {m['mean_confidence']}")

    geo = cat.read("geo_words", batch)
    assert len(geo) == 6
    assert ("Paris", "FR", "city") in places_of(geo, sid["paris.jpg"])
    assert ("Rome", "IT", "city") in places_of(geo, sid["roma.jpg"])
    for f in ("london_0.jpg", "london_1.jpg"):
        assert ("London", "GB", "city") in places_of(geo, sid[f])
    src = dict(zip(geo.scan_id, geo.text_source))
    assert (src[sid["paris.jpg"]], src[sid["london_0.jpg"]], src[sid["blank.jpg"]]) == ("ocr", "both", "none")
    assert places_of(geo, sid["blank.jpg"]) == set() and places_of(geo, sid["vanishing.jpg"]) == set()
    # the lexicon learned "Tower Bridge" from the descriptions and places it in London
    lex = json.loads((vpr_home / "models" / "landmark_lexicon.json").read_text())
    assert lex["landmarks"]["tower bridge"]["city"] == "London" and lex["landmarks"]["tower bridge"]["country"] == "GB"
    assert ("Tower Bridge", "GB", "landmark") in places_of(geo, sid["london_0.jpg"])
    gm = meta(first, "geo_words")
    assert gm["cards_with_places"] == 4 and gm["lexicon_size"] == len(lex["landmarks"]) >= 1
    lm = meta(lexicon_run, "landmark_lexicon")
    assert lm["refitted"] and lm["landmarks"] == len(lex["landmarks"]) and lm["descriptions"] == 2
    assert gm["lexicon_version"] == lex["fitted_on"]["version"]
    assert "Paris" in gm["top_places"]

    te_all = cat.read("text_embeddings", batch)
    te = te_all[te_all.source == "ocr+description"]  # the text image_ocr_desc sees: description + caption
    assert sorted(te.scan_id) == sorted(sid[f] for f in ("london_0.jpg", "london_1.jpg", "paris.jpg", "roma.jpg"))
    assert set(te_all.model) == {"all-MiniLM-L6-v2"}
    # the text image_ocr sees: the caption alone, for exactly the cards whose caption was read
    ocr_only = te_all[te_all.source == "ocr"].set_index("scan_id")
    read = {s for s, t in ocr.text.items() if t.strip()}
    assert set(ocr_only.index) == read and len(te_all) == len(te) + len(read)
    for s_id in read:
        assert ocr_only.at[s_id, "text"] == ocr.at[s_id, "text"].strip()
    v = np.stack(te.embedding.map(lambda e: np.asarray(e, np.float32)).to_list())
    assert v.shape == (4, 384) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    by = dict(zip(te.scan_id, v))
    london = by[sid["london_0.jpg"]] @ by[sid["london_1.jpg"]]
    assert london > by[sid["london_0.jpg"]] @ by[sid["roma.jpg"]]  # same place, closer texts
    # a card without a description has the same text, and so the same vector, in both sources
    paris_ocr = np.asarray(ocr_only.at[sid["paris.jpg"], "embedding"], np.float32)
    assert np.allclose(paris_ocr, by[sid["paris.jpg"]])

    # re-run: OCR is skipped (same settings), failures are retried, nothing is duplicated
    lexicon_again, second = run_text_chain(batch)
    # same descriptions: the lexicon is neither refitted nor materialised again, so nothing downstream is stale
    assert lexicon_again.asset_materializations_for_node("landmark_lexicon") == []
    m2 = meta(second, "ocr_text")
    assert (m2["ocr_now"], m2["reused"], m2["failed"]) == (1, 5, 1)
    assert meta(second, "text_embeddings")["reused"] == te_all.text.nunique()  # every distinct text embedded once
    assert meta(second, "text_embeddings")["embedded_now"] == 0
    ocr2 = cat.read("ocr_text", batch).set_index("scan_id")
    assert ocr2.loc[ocr.index, "text"].equals(ocr.text)
    kept = ocr.index[ocr.error.isna()]  # the rows reused as they were (timings included)
    assert ocr2.loc[kept, "seconds"].equals(ocr.loc[kept, "seconds"])
    counts = cat.query("SELECT (SELECT count(*) FROM ocr_text) a, (SELECT count(*) FROM geo_words) b, "
                       "(SELECT count(*) FROM text_embeddings) c").iloc[0]
    assert tuple(counts) == (6, 6, len(te_all))
    with dg.DagsterInstance.get() as instance:
        for key in TEXT_ASSETS:
            recs = instance.fetch_materializations(dg.AssetKey(key), limit=5).records
            versions = {r.asset_materialization.tags["dagster/data_version"] for r in recs}
            assert len(recs) == 2 and len(versions) == 1, key  # same content, same data version
    # and the DuckDB catalog file shows the tables to an analyst
    import duckdb

    with duckdb.connect(str(vpr_home / "catalog.duckdb"), read_only=True) as con:
        n = con.execute("SELECT count(*) FROM geo_words, unnest(places) AS t(p) WHERE p.country = 'IT'").fetchone()[0]
        assert n >= 1


# ---- the CLI path on a fresh store ------------------------------------------------------------


@pytest.mark.slow  # three `dagster`/`vpr` CLI processes on a fresh store (~2 min)
def test_dagster_cli_materializes_the_text_chain_for_a_new_batch(vpr_home, dagster_home):
    batch = "week-07"
    make_batch(vpr_home / "inbox" / batch, {"paris.jpg": synth.landmark_card(PLACES["notre_dame"], 3),
                                            "plain.jpg": blank_card(1)}, {})
    register(batch)
    env = {**os.environ, "VPR_HOME": str(vpr_home), "DAGSTER_HOME": str(dagster_home)}
    # a run holds one partitioning: the batch's scans, the collection's lexicon, then the batch's text
    for args in (["--select", "raw_scans,ocr_text", "--partition", batch], ["--select", "landmark_lexicon"],
                 ["--select", "geo_words,text_embeddings", "--partition", batch]):
        out = subprocess.run([DAGSTER, "asset", "materialize", "-m", "vpr_assets.definitions", *args],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
        assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    cat = Catalog(vpr_home)
    assert len(cat.read("raw_scans", batch)) == 2 and len(cat.read("ocr_text", batch)) == 2
    geo = cat.read("geo_words", batch)
    assert any(("Paris", "FR", "city") in {(p["name"], p["country"], p["kind"]) for p in ps} for ps in geo.places)
    te = cat.read("text_embeddings", batch)
    # one card with a caption and no description: the same text under both text sources
    assert sorted(te.source) == ["ocr", "ocr+description"] and te.scan_id.nunique() == 1 and te.text.nunique() == 1
    assert "PARIS" in te.text.iloc[0].upper()
    assert (vpr_home / "models" / "landmark_lexicon.json").exists()
    with dg.DagsterInstance.get() as instance:
        for key in ["raw_scans", *TEXT_ASSETS]:
            assert instance.get_materialized_partitions(dg.AssetKey(key)) == {batch}, key
