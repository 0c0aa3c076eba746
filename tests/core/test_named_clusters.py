"""build_named_clusters: the landmark_clusters stage without Dagster."""

from __future__ import annotations

import numpy as np

from vpr_assets.core.landmarks import ClusterDecision, ClusterSettings, build_named_clusters


def _collection(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2, 64)).astype(np.float32)
    labels = [0] * 9 + [1] * 9 + [-1] * 4
    x = np.stack([centres[c] + 0.2 * rng.standard_normal(64) if c >= 0 else rng.standard_normal(64) * 2 for c in labels])
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    ids = [f"{'ab'[c] if c >= 0 else 'z'}{i:02d}xxxxxxxx" for i, c in enumerate(labels)]
    return ids, x, labels


def test_clusters_are_named_from_geo_words_with_a_medoid_and_curator_renames():
    ids, x, truth = _collection()
    tower = {"name": "Tower Bridge", "kind": "landmark", "country": "GB", "lat": 51.5, "lon": -0.07, "score": 1.0}
    geo = {sid: (np.array([tower], dtype=object), np.array(["tower", "bridge"], dtype=object)) if c == 0 else (None, None)
           for sid, c in zip(ids, truth)}
    rename = ClusterDecision("rename", ids[9], "", "Old Town Hall", 2)
    locate = ClusterDecision("locate", ids[10], line=3, lat=50.0875, lon=14.4213)
    res = build_named_clusters(ids, x, geo, [rename, locate], "pretrained:lite0_gem512", pretrained=True,
                               settings=ClusterSettings(min_size=5, k=8))
    assert res.threshold == ClusterSettings().pretrained_threshold and not res.problems and len(res.applied) == 2
    by_card = {r["scan_id"]: r for r in res.rows}
    assert {by_card[s]["cluster_name"] for s in ids[:9]} == {"Tower Bridge"}
    assert {by_card[s]["cluster_name"] for s in ids[9:18]} == {"Old Town Hall"}
    assert not set(ids[18:]) & set(by_card)  # the loose cards are noise, not a landmark
    # where each stands: the curator's point, else the top place's (a city's point), with its source
    assert {(by_card[s]["lat"], by_card[s]["lon"], by_card[s]["location_source"]) for s in ids[9:18]} == {
        (50.0875, 14.4213, "curator")}
    assert {(by_card[s]["lat"], by_card[s]["lon"], by_card[s]["location_source"]) for s in ids[:9]} == {(51.5, -0.07, "city")}
    for r in res.rows:
        assert r["representative_scan_id"] in ids and by_card[r["representative_scan_id"]]["cluster_id"] == r["cluster_id"]
    assert sorted(s["size"] for s in res.summary) == [9, 9]


def test_an_empty_collection_gives_no_clusters():
    res = build_named_clusters([], np.zeros((0, 64), np.float32), {}, [], "m/1", pretrained=False)
    assert res.rows == [] and res.summary == [] and res.threshold == ClusterSettings().threshold
