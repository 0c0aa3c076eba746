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


def _tick(sensor, vpr_home, cursor):
    """One evaluation of `sensor` against the test instance, with `cursor`."""
    from vpr_assets.defs.resources import CatalogResource

    with dg.DagsterInstance.get() as instance:
        ctx = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"catalog": CatalogResource(home=str(vpr_home))})
        return sensor(ctx)


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

    def tick(cursor):
        return _tick(curator_actions_sensor, vpr_home, cursor)

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


def _two_landmarks(vpr_home):
    import json

    import pyarrow as pa

    from vpr_assets.storage.schemas import LANDMARK_CLUSTERS_SCHEMA

    cat = Catalog(vpr_home)
    b1, b2 = list(cat.read("raw_scans", "b1").scan_id), list(cat.read("raw_scans", "b2").scan_id)
    paris = {"name": "Paris", "country": "FR", "lat": 48.85, "lon": 2.35, "score": 1.0, "kind": "city"}
    rows = [{"scan_id": s, "cluster_id": 7, "cluster_name": "Tour Eiffel", "cluster_size": len(b1), "status": "landmark",
             "representative_scan_id": b1[0], "model_version": "m", "places_json": json.dumps([paris]),
             "lat": 48.85, "lon": 2.35, "location_source": "city"} for s in b1]
    rows += [{"scan_id": s, "cluster_id": 8, "cluster_name": "landmark 8", "cluster_size": 1, "status": "landmark",
              "representative_scan_id": b2[0], "model_version": "m", "places_json": "[]"} for s in b2]
    cat.write_table("landmark_clusters", pa.Table.from_pylist(rows, schema=LANDMARK_CLUSTERS_SCHEMA))
    return b1, b2


def test_landmark_actions_from_the_page_and_the_api_reach_the_log_and_the_next_clustering(client, vpr_home):
    """Rename, locate, merge and reject from the landmark page and the JSON API are appended with who
    and when to clusters_log.csv, and the clustering applies them in order."""
    from vpr_assets.core.landmarks import CURATION_FILE, CURATION_LOG, apply_decisions, read_cluster_decisions

    b1, b2 = _two_landmarks(vpr_home)
    page = client.get("/landmarks/7").text
    assert "city point" in page and 'value="8">landmark 8' in page  # where it stands, and what can join it
    for form in ({"action": "rename", "name": "Eiffel Tower", "who": "ana"},
                 {"action": "locate", "lat": "48,8584", "lon": "2.2945", "who": "ana"},
                 {"action": "merge", "target": "8", "who": "bo"}):
        r = client.post("/landmarks/7/decision", data=form, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith(f"/landmarks/7?done={form['action']}")
    assert client.post("/landmarks/7/decision", data={"action": "locate", "lat": "north", "lon": "2", "who": "a"}
                       ).status_code == 422
    assert client.post("/landmarks/7/decision", data={"action": "merge", "target": "", "who": "a"}).status_code == 422
    assert client.post("/landmarks/99/decision", data={"action": "reject", "who": "a"}).status_code == 404
    ok = client.post("/api/landmark-decisions", json={"scan_id": b1[1], "action": "reject", "who": "cy"})
    assert ok.status_code == 200 and ok.json()["log"] == CURATION_LOG and ok.json()["row"]["who"] == "cy"
    bad = client.post("/api/landmark-decisions", json={"scan_id": b1[1], "action": "locate", "lat": 91, "lon": 0, "who": "cy"})
    assert bad.status_code == 422
    assert client.post("/api/landmark-decisions", json={"scan_id": "f" * 64, "action": "reject", "who": "cy"}
                       ).status_code == 404

    rows = list(csv.DictReader((vpr_home / CURATION_LOG).open(encoding="utf-8")))
    assert [(r["action"], r["who"]) for r in rows] == [("rename", "ana"), ("locate", "ana"), ("merge", "bo"),
                                                        ("reject", "cy")]
    # page decisions name the medoid and other cards of the landmark (they survive one card leaving)
    assert rows[0]["scan_id"] == rows[1]["scan_id"] and rows[0]["scan_id"].split()[0] == b1[0]  # the medoid first
    assert sorted(rows[0]["scan_id"].split()) == sorted(b1) and rows[2]["other_scan_id"] == b2[0]
    assert rows[1]["lat"] == "48.8584" and all(r["when"] for r in rows)

    ids = b1 + b2
    decisions, problems = read_cluster_decisions(vpr_home / CURATION_FILE)
    e = apply_decisions(ids, [0] * len(b1) + [1] * len(b2), {}, decisions)
    assert not problems and not e.problems
    assert set(e.labels) == {0} and e.names == {0: "Eiffel Tower"} and e.locations == {0: (48.8584, 2.2945)}
    assert e.rejected == {0}
    lm = client.get("/api/landmarks/7").json()
    assert [d["action"] for d in lm["decisions"]] == ["rename", "locate", "merge", "reject"]
    assert lm["location_source"] == "city" and client.get("/api/landmarks/99").status_code == 404


def test_landmark_decisions_request_one_clustering_run_per_change(client, vpr_home):
    from vpr_assets.defs.curation.sensors import landmark_decisions_sensor

    def tick(cursor):
        return _tick(landmark_decisions_sensor, vpr_home, cursor)

    b1, _ = _two_landmarks(vpr_home)
    first = tick(None)
    assert not first.run_requests and first.cursor  # no decisions yet: nothing to run, the state is remembered
    assert isinstance(tick(first.cursor), dg.SkipReason)
    client.post("/api/landmark-decisions", json={"scan_id": b1[0], "action": "rename", "name": "Eiffel", "who": "a"})
    second = tick(first.cursor)
    assert [r.asset_selection for r in second.run_requests] == [None]  # the sensor's own selection: landmark_clusters
    assert isinstance(tick(second.cursor), dg.SkipReason)  # nothing new since
    client.post("/api/landmark-decisions", json={"scan_id": b1[0], "action": "reject", "who": "a"})
    third = tick(second.cursor)
    assert len(third.run_requests) == 1 and third.run_requests[0].run_key != second.run_requests[0].run_key
    # a fresh cursor (a new daemon, a reset sensor): decisions newer than the last clustering run it
    # acts on; decisions that run already applied it does not run again
    assert len(tick(None).run_requests) == 1
    with dg.DagsterInstance.get() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization("landmark_clusters"))
    assert not tick(None).run_requests


def test_a_card_moves_to_a_landmark_or_splits_off_from_its_page(client, vpr_home):
    from vpr_assets.core.landmarks import CURATION_FILE, apply_decisions, read_cluster_decisions

    b1, b2 = _two_landmarks(vpr_home)
    page = client.get(f"/cards/{b2[0]}").text
    assert 'aria-label="landmark of this card"' in page and 'value="7">Tour Eiffel' in page
    r = client.post(f"/cards/{b2[0]}/landmark", data={"action": "move", "target": "7", "who": "ana"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert "The next landmark_clusters run applies it" in client.get(r.headers["location"]).text
    # the curator's name is remembered (a cookie) and pre-fills every form of every page
    assert 'name="who" value="ana"' in client.get("/landmarks/7").text
    assert client.get(f"/cards/{b1[0]}").text.count('name="who" value="ana"') == 2
    assert client.post(f"/cards/{b1[2]}/landmark", data={"action": "split", "name": "Trocadéro", "who": "ana"},
                       follow_redirects=False).status_code == 303
    assert client.post(f"/cards/{b1[2]}/landmark", data={"action": "move", "target": "", "who": "a"}).status_code == 422
    assert client.post(f"/cards/{b1[2]}/landmark", data={"action": "reject", "who": "a"}).status_code == 422
    decisions, problems = read_cluster_decisions(vpr_home / CURATION_FILE)
    assert [(d.action, d.scan_id, sorted(d.other_scan_id.split()), d.name) for d in decisions] == [
        ("move", b2[0], sorted(b1), ""), ("split", b1[2], [], "Trocadéro")] and not problems
    e = apply_decisions(b1 + b2, [0] * len(b1) + [1] * len(b2), {}, decisions)
    assert e.labels == [0, 0, 2, 0] and e.names == {2: "Trocadéro"}  # b2's card joined 0; b1's third card split off


def test_decisions_that_cannot_apply_are_listed_on_the_map_and_prefixes_resolve(client, vpr_home):
    import pyarrow as pa

    from vpr_assets.storage.schemas import LANDMARK_CLUSTERS_SCHEMA

    b1, b2 = _two_landmarks(vpr_home)
    (vpr_home / "curation").mkdir(exist_ok=True)
    (vpr_home / "curation" / "clusters.csv").write_text(f"action,scan_id,other_scan_id,name\nrename,{b1[0][:16]},,Eiffel\n")
    client.post("/api/landmark-decisions", json={"scan_id": b2[0], "action": "rename", "name": "Lost", "who": "ana"})
    assert 'id="unapplied"' not in client.get("/map").text  # every card named is clustered
    lm = client.get("/api/landmarks/7").json()
    assert [(d["action"], d["scan_ids"], d["name"]) for d in lm["decisions"]] == [("rename", [b1[0]], "Eiffel")]
    # a rejected cluster is not drawn but listed, so that a curator can restore it
    cat = Catalog(vpr_home)
    lc = cat.read("landmark_clusters")
    lc.loc[lc.cluster_id == 8, "status"] = "rejected"
    cat.write_table("landmark_clusters", pa.Table.from_pandas(lc, preserve_index=False), schema=LANDMARK_CLUSTERS_SCHEMA)
    page = client.get("/map").text
    assert "Not landmarks (rejected by curators)" in page and page.count('href="/landmarks/8"') == 1
    assert "It is a landmark after all" in client.get("/landmarks/8").text
    # b2's card leaves every cluster (curation set it aside): its decision cannot apply, and the map says so
    kept = cat.read("landmark_clusters").query("cluster_id == 7")
    cat.write_table("landmark_clusters", pa.Table.from_pandas(kept, preserve_index=False), schema=LANDMARK_CLUSTERS_SCHEMA)
    page = client.get("/map").text
    assert 'id="unapplied"' in page and f'href="/cards/{b2[0]}"' in page and "Lost" in page
    from vpr_assets.cli import _curation_status

    assert _curation_status(cat) == {"card_decisions": 0, "labels_from_the_browser": 0, "landmark_decisions": 2,
                                     "landmark_decisions_not_applied": 1}  # what `vpr status` reports
