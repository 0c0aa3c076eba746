"""SearchEngine on the session store: landmark by picture, non-landmark, search by name, errors."""

from __future__ import annotations

import pandas as pd
import pytest

from vpr_assets.core.search import (
    NON_LANDMARK,
    BadImageError,
    BadQueryError,
    ImageTooLargeError,
    NoIndexError,
    SearchConfig,
    SearchEngine,
    name_score,
    normalise_name,
)

pytestmark = pytest.mark.slow  # builds the session store (~1 min)


def _cluster_files(store) -> pd.DataFrame:
    from vpr_assets.storage import Catalog

    return Catalog(store.home).query(
        "SELECT l.cluster_id, l.cluster_name, l.status, r.file_name FROM landmark_clusters l JOIN raw_scans r USING (scan_id)")


def _place_of_cluster(store, cluster_id: int) -> str:
    """The demo place most of a cluster's members were drawn from (file names are <place>_NN.jpg)."""
    df = _cluster_files(store)
    files = df[df.cluster_id == cluster_id].file_name
    return files.str.rsplit("_", n=1).str[0].value_counts().index[0]


def test_held_back_cards_get_their_landmark(store, engine):
    df = _cluster_files(store)
    from vpr_assets.core.images.synth import DEMO_PLACES

    clustered_places = set(df[df.status == "landmark"].file_name.str.rsplit("_", n=1).str[0]) & {p.key for p in DEMO_PLACES}
    assert {"tower_bridge", "eiffel"} <= clustered_places, df.groupby("cluster_id").file_name.apply(list)
    n, right = 0, 0
    for place in sorted(clustered_places):
        for i in (100, 101, 102):  # dev-set cards: never ingested
            res = engine.search_image(store.eval_card(f"{place}_{i}.jpg").read_bytes(), k=5)
            n += 1
            right += res["landmark"] is not None and _place_of_cluster(store, res["landmark"]["cluster_id"]) == place
            # the nearest card is a card of the same place whatever the vote says
            assert res["results"][0]["file_name"].startswith(place), res["results"]
    assert right / n >= 0.9, f"{right}/{n}"

    res = engine.search_image(store.eval_card("tower_bridge_101.jpg").read_bytes(), k=3)
    assert res["prediction"] == "Tower Bridge" and res["landmark"]["name"] == "Tower Bridge"
    assert [r["rank"] for r in res["results"]] == [1, 2, 3]
    assert res["results"][0]["score"] >= res["results"][1]["score"] >= res["results"][2]["score"]
    top = res["results"][0]
    assert top["thumbnail"].startswith("thumbnails/") and (store.home / top["thumbnail"]).is_file()
    assert top["batch"].startswith("demo_batch_") and top["description"]
    assert res["threshold_source"] == "evaluation (dagster)" and res["threshold_evaluation_id"]
    assert res["model_version"] == "pretrained:lite0_gem512"


@pytest.mark.parametrize("card", ["greeting_100.jpg", "portrait_101.jpg"])
def test_non_landmark_cards_are_answered_non_landmark(store, engine, card):
    from PIL import Image

    with Image.open(store.eval_card(card)) as im:
        res = engine.search_image(im.copy(), k=5)  # a PIL image works as well as bytes
    assert res["prediction"] == NON_LANDMARK and res["landmark"] is None
    assert res["results"], "neighbours are still listed"


def test_a_file_sent_as_a_query_is_embedded_as_the_collection_embeds_it(store, engine, tmp_path):
    """Queries are decoded for embedding as the collection's files are (`embed_paths`: a large JPEG
    at reduced scale), so the same file gives the same vector by path or by bytes; a PIL image
    (already decoded at full size) is another picture of it."""
    from PIL import Image

    from tests.badinput import jpeg_bytes, photo
    from vpr_assets.core.vision.embedder import embed_paths

    path = tmp_path / "large.jpg"
    path.write_bytes(jpeg_bytes(photo(3, size=(1400, 1000))))  # > 2x the embedding size: drafted at 1/2
    collection = embed_paths(engine.state().model.embedder, [path], num_workers=0).vectors[0]
    by_path, by_bytes = engine.embed(path)[0], engine.embed(path.read_bytes())[0]
    assert float(by_path @ collection) > 0.99999 and float(by_bytes @ collection) > 0.99999
    full = engine.embed(Image.open(path))[0]
    assert 0.8 < float(full @ collection) < 0.9999


def test_threshold_is_configurable_and_reported(store):
    strict = SearchEngine(store.home, SearchConfig(threshold=0.999))
    res = strict.search_image(store.eval_card("tower_bridge_100.jpg").read_bytes(), k=3)
    assert res["threshold"] == 0.999 and res["threshold_source"] == "config"
    assert res["prediction"] == NON_LANDMARK and "below" in res["reason"]


def test_search_by_name_accent_case_and_typos(engine):
    for query in ("tour eiffel a paris", "TOUR EIFFEL", "eiffel", "Tour Eifel à Paris"):
        res = engine.search_landmark(query)
        assert res["matches"] and res["matches"][0]["name"] == "Tour Eiffel à Paris", (query, res["matches"][:1])
    res = engine.search_landmark("Towr Bridge", k=3)
    m = res["matches"][0]
    assert m["name"] == "Tower Bridge" and m["matched_on"] == "cluster_name" and 80 <= m["match_score"] < 100
    assert len(m["cards"]) == 3 and m["cards"][0]["is_representative"] and m["cards"][0]["similarity"] == pytest.approx(1.0, abs=1e-4)
    sims = [c["similarity"] for c in m["cards"]]
    assert sims == sorted(sims, reverse=True)
    assert all(c["file_name"].startswith("tower_bridge") or c["file_name"] in ("near_copy.jpg", "exact_copy.jpg")
               for c in engine.search_landmark("tower bridge")["matches"][0]["cards"])
    assert engine.search_landmark("Zzyzx Road")["matches"] == []


def test_bad_inputs_raise_clear_value_errors(store, engine, tmp_path):
    with pytest.raises(BadImageError) as e:
        engine.search_image(b"this is not an image")
    assert isinstance(e.value, ValueError) and e.value.reason == "not_an_image"
    with pytest.raises(BadImageError):
        engine.search_image(b"")
    small = SearchEngine(store.home, SearchConfig(max_pixels=10_000))
    with pytest.raises(ImageTooLargeError) as e:
        small.search_image(store.eval_card("eiffel_100.jpg").read_bytes())
    assert e.value.reason == "too_many_pixels"
    with pytest.raises(BadQueryError):
        engine.search_image(store.eval_card("eiffel_100.jpg").read_bytes(), k=0)
    for bad in ("", "  !! ", "x" * 300):
        with pytest.raises(BadQueryError):
            engine.search_landmark(bad)
    with pytest.raises(NoIndexError):
        SearchEngine(tmp_path).search_image(store.eval_card("eiffel_100.jpg").read_bytes())  # a good picture, no index


def test_engine_reloads_when_the_clusters_change(store):
    """A curator renames a cluster: the next query sees it without restarting anything."""
    from vpr_assets.storage import Catalog

    eng = SearchEngine(store.home)
    before = eng.search_landmark("tower bridge")["matches"][0]
    cat = Catalog(store.home)
    path = cat.partition_path("landmark_clusters")
    original = path.read_bytes()
    try:
        df = cat.read("landmark_clusters")
        df.loc[df.cluster_id == before["cluster_id"], "cluster_name"] = "Puente de la Torre"
        cat.write_table("landmark_clusters", df)
        assert eng.search_landmark("puente de la torre")["matches"][0]["cluster_id"] == before["cluster_id"]
    finally:
        path.write_bytes(original)
        cat.sync_views(["landmark_clusters"])
    assert eng.search_landmark("tower bridge")["matches"][0]["name"] == "Tower Bridge"


def test_normalise_and_score():
    assert normalise_name("Pão de Açúcar!") == "pao de acucar"
    assert name_score("PAO DE ACUCAR", "Pão de Açúcar") == 100.0
    assert name_score("eiffel", "Tour Eiffel") == 95.0
    assert name_score("Notre Dam", "Notre-Dame") >= 85
    assert name_score("Berlin", "Tower Bridge") < 60
    assert name_score("Paris", "Brandenburg Gate on Pariser Platz") < 80  # part of a word is no match
    assert name_score("Towr Bridge", "Tower Bridge") >= 90 and name_score("Tour Eifel", "Tour Eiffel a Paris") >= 90
    assert name_score("eiffel tower", "Tour Eiffel à Paris") >= 80 > name_score("berlin tower", "Tower Bridge")


def _copy_store(store, dst, tables=("faiss_indexes", "landmark_clusters", "raw_scans")):
    """A second data root sharing the session store's index and thumbnails, with only `tables`."""
    import shutil

    for t in tables:
        shutil.copytree(store.home / "tables" / t, dst / "tables" / t)
    (dst / "indexes").symlink_to(store.home / "indexes")
    return dst


def test_fallback_threshold_and_places_from_geo_words(store, tmp_path):
    """Without an evaluation the measured fallback threshold is used (and said so); places come
    from the clusters' places_json and from their members' geo_words."""
    import json

    import pyarrow as pa

    from vpr_assets.core.search import FALLBACK_THRESHOLD
    from vpr_assets.storage import Catalog

    home = _copy_store(store, tmp_path)
    cat = Catalog(home)
    lc = cat.read("landmark_clusters")
    eiffel = lc[lc.cluster_name == "Tour Eiffel à Paris"]
    paris = [{"name": "Paris", "country": "FR", "lat": 48.85, "lon": 2.35, "score": 0.9}]
    lc.loc[lc.cluster_id == eiffel.cluster_id.iloc[0], "places_json"] = json.dumps(paris)
    cat.write_table("landmark_clusters", lc)
    tower_member = lc[lc.cluster_name == "Tower Bridge"].scan_id.iloc[0]
    from vpr_assets.storage.schemas import GEO_WORDS_SCHEMA

    londres = {"name": "Londres", "country": "GB", "lat": 51.5, "lon": -0.1, "score": 0.8}
    cat.write_partition("geo_words", "demo_batch_1", pa.Table.from_pylist([{
        "scan_id": tower_member, "batch": "demo_batch_1", "words": ["londres"], "places": [londres],
        "text_source": "ocr", "lexicon_version": None, "place": londres, "place_evidence": "name match"}],
        schema=GEO_WORDS_SCHEMA))

    eng = SearchEngine(home)
    h = eng.health()
    assert h["threshold"] == FALLBACK_THRESHOLD and h["threshold_source"] == "fallback"
    res = eng.search_image(store.eval_card("eiffel_102.jpg").read_bytes(), k=3)
    assert res["threshold_source"] == "fallback" and res["landmark"]["places"][0]["name"] == "Paris"
    m = eng.search_landmark("PARIS")["matches"][0]
    assert m["name"] == "Tour Eiffel à Paris" and m["matched_on"] in ("place", "cluster_name")
    m = eng.search_landmark("londres")["matches"][0]
    assert m["name"] == "Tower Bridge" and m["matched_on"] == "geo_words" and m["matched_text"] == "Londres"


def test_pipeline_evaluation_wins_over_cli_runs(tmp_path):
    from datetime import datetime, timedelta, timezone

    import pyarrow as pa

    from vpr_assets.core.search import evaluation_threshold
    from vpr_assets.storage import Catalog

    cat = Catalog(tmp_path)
    assert evaluation_threshold(cat, "m/1") is None
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = [("e1", t0, "m/1", "non_landmark_threshold", 0.7, "dagster"),
            ("e2", t0 + timedelta(days=1), "m/1", "non_landmark_threshold", 0.5, "cli"),
            ("e3", t0 + timedelta(days=2), "m/2", "non_landmark_threshold", 0.9, "cli"),
            ("e4", t0 + timedelta(days=3), "m/2", "mAP@5", 0.4, "cli")]
    cols = ["evaluation_id", "evaluated_at", "model_version", "metric", "value", "source"]
    cat.write_table("evaluations", pa.Table.from_pylist([{**dict(zip(cols, r)), "manifest": "m.tsv"} for r in rows]))
    assert evaluation_threshold(cat, "m/1") == (0.7, "e1", "dagster")
    assert evaluation_threshold(cat, "m/2") == (0.9, "e3", "cli")
    assert evaluation_threshold(cat, "m/3") is None
