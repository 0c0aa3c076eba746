"""The collection browser on a real ingested batch: the grid and its filters, a card's page and
JSON record, its original scan, and curator actions appended (who, when) to the logs that the next
`scan_quality` run reads, the latest action winning."""

from __future__ import annotations

import csv

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from tests.badinput import jpeg_bytes, photo
from vpr_assets.api.server import create_app
from vpr_assets.core.curation.curator_files import DECISIONS_FILE, read_curator_labels, read_decisions
from vpr_assets.runner import materialize_partitions
from vpr_assets.storage import Catalog


@pytest.fixture
def client(vpr_home, dagster_home):
    for batch, seeds in (("b1", (1, 2, 3)), ("b2", (4,))):
        folder = vpr_home / "inbox" / batch
        folder.mkdir(parents=True)
        for s in seeds:
            (folder / f"card_{s}.jpg").write_bytes(jpeg_bytes(photo(s)))
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", ["b1", "b2"])
    for b in ("b1", "b2"):
        assert materialize_partitions(["raw_scans", "scan_rejects"], [b])[0].success
    with TestClient(create_app(vpr_home), raise_server_exceptions=False) as c:
        yield c


def test_grid_filters_and_pages_in_the_catalog(client):
    every = client.get("/api/cards").json()
    assert len(every["cards"]) == 4 and every["next"] is None
    assert [c["scan_id"] for c in every["cards"]] == sorted(c["scan_id"] for c in every["cards"])
    assert {c["batch"] for c in client.get("/api/cards", params={"batch": "b2"}).json()["cards"]} == {"b2"}
    first = client.get("/api/cards", params={"limit": 3}).json()
    rest = client.get("/api/cards", params={"limit": 3, "after": first["next"]}).json()
    assert len(first["cards"]) == 3 and len(rest["cards"]) == 1 and rest["next"] is None
    assert first["cards"][0]["thumbnail_url"].startswith("/thumbnails/")
    assert client.get("/api/cards", params={"label": "good"}).json()["cards"] == []  # nothing curated yet
    assert client.get("/api/cards", params={"limit": 0}).status_code == 422
    page = client.get("/browse", params={"batch": "b1"})
    assert page.status_code == 200 and page.text.count('data-scan-id="') == 3
    assert '<select name="batch">' in page.text and "b2" in page.text  # the facet offers every batch


def test_card_page_record_scan_and_a_decision_the_next_run_reads(client, vpr_home):
    sid = client.get("/api/cards", params={"batch": "b1"}).json()["cards"][0]["scan_id"]
    record = client.get(f"/api/cards/{sid}").json()
    assert record["scan_id"] == sid and record["batch"] == "b1" and record["neighbours"] == []  # no index yet
    scan = client.get(f"/scans/{sid}")
    assert scan.status_code == 200 and scan.content[:2] == b"\xff\xd8"
    assert client.get("/scans/nope").status_code == 404 and client.get("/api/cards/nope").status_code == 404
    page = client.get(f"/cards/{sid}")
    assert page.status_code == 200 and f'href="/scans/{sid}"' in page.text and 'name="action" value="reject"' in page.text

    # a curator rejects it in the page, then changes their mind through the API
    r = client.post(f"/cards/{sid}/decision", data={"action": "reject", "who": "ana"}, follow_redirects=False)
    assert r.status_code == 303 and "done=reject" in r.headers["location"]
    assert "Recorded: reject" in client.get(r.headers["location"]).text
    assert sid in read_decisions(vpr_home / DECISIONS_FILE).reject
    ok = client.post("/api/decisions", json={"scan_id": sid, "action": "keep", "who": "ben"})
    assert ok.status_code == 200 and ok.json()["row"]["who"] == "ben"
    d = read_decisions(vpr_home / DECISIONS_FILE)
    assert sid in d.keep and sid not in d.reject  # the latest action wins
    client.post("/api/decisions", json={"scan_id": sid, "action": "non_landmark", "who": "ana"})
    scans = Catalog(vpr_home).read("raw_scans")
    labels, _ = read_curator_labels(vpr_home, scans)
    assert labels[sid] == "non_landmark"
    with open(vpr_home / "curation" / "decisions_log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(x["decision"], x["who"]) for x in rows] == [("reject", "ana"), ("keep", "ben")]
    assert all(x["when"] for x in rows)  # append-only, with who and when
    bad = client.post("/api/decisions", json={"scan_id": sid, "action": "delete", "who": "x"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_parameter"
    assert client.post("/api/decisions", json={"scan_id": "nope", "action": "keep", "who": "x"}).status_code == 404


def test_curator_actions_request_scan_quality_of_their_batches(client, vpr_home):
    from vpr_assets.defs.curation.sensors import curator_actions_sensor
    from vpr_assets.defs.resources import CatalogResource

    def tick(cursor):
        with dg.DagsterInstance.get() as instance:
            ctx = dg.build_sensor_context(instance=instance, cursor=cursor,
                                          resources={"catalog": CatalogResource(home=str(vpr_home))})
            return curator_actions_sensor(ctx)

    assert isinstance(tick(None), dg.SkipReason)  # no action yet
    cards = {c["batch"]: c["scan_id"] for c in client.get("/api/cards").json()["cards"]}
    client.post("/api/decisions", json={"scan_id": cards["b2"], "action": "reject", "who": "ana"})
    first = tick(None)
    curation = [dg.AssetKey("scan_quality"), dg.AssetKey("derived_scans")]
    assert [(r.partition_key, r.asset_selection) for r in first.run_requests] == [("b2", curation)]
    assert isinstance(tick(first.cursor), dg.SkipReason)  # nothing new since
    client.post("/api/decisions", json={"scan_id": cards["b1"], "action": "landmark", "who": "ana"})
    second = tick(first.cursor)
    # a label: the classifier is refitted ahead of scan_quality, in the same run
    assert [(r.partition_key, r.asset_selection) for r in second.run_requests] == [
        ("b1", [dg.AssetKey("landmark_classifier"), *curation])]
    assert second.run_requests[0].run_key != first.run_requests[0].run_key


def test_the_map_draws_landmarks_and_places_and_a_landmark_page_lists_its_cards(client, vpr_home):
    import json

    import pyarrow as pa

    from vpr_assets.storage.schemas import GEO_WORDS_SCHEMA, LANDMARK_CLUSTERS_SCHEMA

    cat = Catalog(vpr_home)
    ids = list(cat.read("raw_scans", "b1").scan_id)
    paris = {"name": "Paris", "country": "FR", "lat": 48.85, "lon": 2.35, "score": 1.0, "kind": "city",
             "matched": "paris", "city": None, "population": 2_000_000}
    cat.write_table("landmark_clusters", pa.Table.from_pylist([
        {"scan_id": s, "cluster_id": 7, "cluster_name": "Tour Eiffel", "cluster_size": len(ids), "status": "landmark",
         "representative_scan_id": ids[0], "model_version": "pretrained:lite0_gem512",
         "places_json": json.dumps([paris])} for s in ids], schema=LANDMARK_CLUSTERS_SCHEMA))
    cat.write_partition("geo_words", "b1", pa.Table.from_pylist([
        {"scan_id": s, "batch": "b1", "words": ["paris"], "places": [paris], "text_source": "description",
         "lexicon_version": "x", "place": paris, "place_evidence": "name match"} for s in ids], schema=GEO_WORDS_SCHEMA))
    page = client.get("/map").text
    assert page.count('class="landmark"') == 1 and page.count('class="place"') == 1
    assert 'cx="2.35" cy="-48.85"' in page and 'href="/landmarks/7"' in page
    assert "http://" not in page and "https://" not in page  # nothing from the internet
    lm = client.get("/landmarks/7").text
    assert lm.count("data-scan-id=") == len(ids) and "medoid" in lm and "Paris" in lm
    assert client.get("/landmarks/8").status_code == 404
    fr = client.get("/api/cards", params={"country": "fr"}).json()["cards"]
    assert sorted(c["scan_id"] for c in fr) == sorted(ids)
    assert client.get("/api/cards", params={"landmark": "eiffel"}).json()["cards"][0]["cluster_name"] == "Tour Eiffel"
