"""Curators' cluster decisions (anchored on scan_ids) and landmark naming from geo-words."""

from __future__ import annotations

import csv

import pytest

from vpr_assets.core.landmarks import (
    CURATION_LOG,
    append_cluster_decision,
    apply_decisions,
    landmark_location,
    name_cluster,
    read_cluster_decisions,
)

IDS = [f"{c}{i}" * 8 for c, i in zip("aaabbbccd", range(9))]  # 8+ character ids
LABELS = [0, 0, 0, 1, 1, 1, 2, 2, -1]


def _decide(tmp_path, rows: str):
    (tmp_path / "clusters.csv").write_text("action,scan_id,other_scan_id,name\n" + rows, encoding="utf-8")
    return read_cluster_decisions(tmp_path / "clusters.csv")


def test_rename_merge_reject_split_move(tmp_path):
    decisions, problems = _decide(tmp_path, "\n".join([
        f"rename,{IDS[0][:10]},,Tower Bridge",
        f"merge,{IDS[3]},{IDS[6]},",           # cluster 2 joins cluster 1
        f"reject,{IDS[1]},,",                   # cluster 0 is not a landmark
        f"split,{IDS[4]},,Old Town Hall",       # one card leaves cluster 1 for a new cluster
        f"move,{IDS[8]},{IDS[3]},",             # a noise card joins cluster 1
        "explode,x,,",                          # unknown action: reported, not fatal
    ]) + "\n")
    assert len(decisions) == 5 and len(problems) == 1
    e = apply_decisions(IDS, LABELS, {}, decisions)
    assert e.names[0] == "Tower Bridge" and e.rejected == {0}
    assert e.labels[6] == e.labels[7] == e.labels[3] == 1          # merged
    assert e.labels[4] not in (0, 1, 2, -1) and e.names[e.labels[4]] == "Old Town Hall"
    assert e.labels[8] == 1                                      # moved
    assert len(e.applied) == 5 and not e.problems


def test_unknown_or_ambiguous_anchors_are_reported(tmp_path):
    decisions, _ = _decide(tmp_path, "rename,zzzzzzzzzz,,X\nrename,a0a0,,too short\n")
    e = apply_decisions(IDS, LABELS, {}, decisions)
    assert e.labels == LABELS and e.names == {} and len(e.problems) == 2
    assert all(p.startswith("clusters.csv line ") for p in e.problems)


def test_name_from_dominant_landmark_and_city():
    tower = {"name": "Tower Bridge", "country": "GB", "kind": "landmark", "score": 0.95}
    london = {"name": "London", "country": "GB", "kind": "city", "score": 1.0}
    paris = {"name": "Paris", "country": "FR", "kind": "city", "score": 1.0}
    name, places = name_cluster([[tower, london], [london], [tower, london], [paris]], [[], [], [], []])
    assert name == "Tower Bridge, London (GB)"
    assert places[0]["name"] in ("London", "Tower Bridge") and all("share" in p for p in places)
    # no places: the words at least 30% of the members share, most common first (ties alphabetical)
    assert name_cluster([[], [], []], [["bridge", "thames"], ["bridge"], ["bridge", "river"]])[0] == "bridge river thames"


def test_browser_log_follows_the_hand_file_with_who_and_when_and_locate_restore(tmp_path):
    """The browser's append-only log is applied after clusters.csv; locate sets where a landmark
    stands, restore undoes a reject, a merged cluster's point serves the cluster it joins."""
    (tmp_path / "curation").mkdir()
    (tmp_path / "curation" / "clusters.csv").write_text(f"action,scan_id,other_scan_id,name\nreject,{IDS[0]},,\n")
    append_cluster_decision(tmp_path, "rename", IDS[0], "ana", name="  Tower   Bridge ")
    append_cluster_decision(tmp_path, "restore", IDS[1], "ana")
    append_cluster_decision(tmp_path, "locate", IDS[6], "bo", lat=51.5055, lon=-0.0754)
    append_cluster_decision(tmp_path, "merge", IDS[3], "bo", other_scan_id=IDS[6])  # cluster 2 (located) joins 1
    rows = list(csv.DictReader((tmp_path / CURATION_LOG).open(encoding="utf-8")))
    assert [r["who"] for r in rows] == ["ana", "ana", "bo", "bo"] and all(r["when"] for r in rows)
    assert rows[0]["name"] == "Tower Bridge"
    decisions, problems = read_cluster_decisions(tmp_path / "curation" / "clusters.csv")
    assert [d.source for d in decisions] == ["clusters.csv"] + ["clusters_log.csv"] * 4 and not problems
    e = apply_decisions(IDS, LABELS, {}, decisions)
    assert e.rejected == set() and e.names == {0: "Tower Bridge"}   # rejected, then restored
    assert e.labels[6] == 1 and e.locations == {1: (51.5055, -0.0754)}
    assert not e.problems and len(e.applied) == 5


@pytest.mark.parametrize("kwargs, message", [
    (dict(action="locate", lat=51.5), "locate needs lat and lon"),
    (dict(action="locate", lat=95.0, lon=0.0), "less than or equal to 90"),
    (dict(action="rename", name="   "), "rename needs a name"),
    (dict(action="merge"), "merge needs other_scan_id"),
    (dict(action="explode"), "action must be one of"),
])
def test_a_bad_landmark_action_is_refused_and_nothing_is_written(tmp_path, kwargs, message):
    action = kwargs.pop("action")
    with pytest.raises(ValueError, match=message):
        append_cluster_decision(tmp_path, action, IDS[0], "ana", **kwargs)
    assert not (tmp_path / CURATION_LOG).exists()


def test_a_bad_row_in_the_log_is_a_problem_naming_the_file(tmp_path):
    (tmp_path / "clusters_log.csv").write_text("action,scan_id,other_scan_id,name,lat,lon,who,when\n"
                                               f"locate,{IDS[0]},,,north,,ana,2026\nreject,{IDS[1]},,,,,ana,2026\n")
    decisions, problems = read_cluster_decisions(tmp_path / "clusters.csv")
    assert [d.action for d in decisions] == ["reject"]
    assert len(problems) == 1 and problems[0].startswith("clusters_log.csv: line 2")


def test_where_a_landmark_stands():
    paris = {"name": "Paris", "country": "FR", "kind": "city", "lat": 48.85, "lon": 2.35}
    france = {"name": "France", "country": "FR", "kind": "country", "lat": 46.0, "lon": 2.0}
    eiffel = {"name": "Tour Eiffel", "country": "FR", "kind": "landmark"}  # a landmark with no point of its own
    assert landmark_location([eiffel, paris], (48.8584, 2.2945)) == (48.8584, 2.2945, "curator")
    assert landmark_location([eiffel, paris, france], None) == (48.85, 2.35, "city")
    assert landmark_location([france], None) == (46.0, 2.0, "country")
    assert landmark_location([eiffel], None) == (None, None, None)


def test_a_landmark_decision_naming_several_cards_survives_one_leaving():
    """Named by its medoid and other cards, a rename still finds its landmark when the medoid is no
    longer clustered (set aside by curation), and applies to the cluster most of them are in."""
    from vpr_assets.core.landmarks import ClusterDecision

    rename = ClusterDecision("rename", " ".join([IDS[0], IDS[1], IDS[2][:10]]), name="Tower Bridge", line=2)
    e = apply_decisions(IDS[1:], LABELS[1:], {}, [rename])  # IDS[0] is gone
    assert e.names == {0: "Tower Bridge"} and not e.problems
    one = ClusterDecision("rename", IDS[0], name="Tower Bridge", line=3)
    assert apply_decisions(IDS[1:], LABELS[1:], {}, [one]).problems  # one anchor: lost with its card
    # most anchors decide: two cards of cluster 1 outvote one of cluster 0
    mixed = ClusterDecision("locate", " ".join([IDS[0], IDS[3], IDS[4]]), lat=1.0, lon=2.0, line=4)
    assert apply_decisions(IDS, LABELS, {}, [mixed]).locations == {1: (1.0, 2.0)}
    # a card-level action (split) takes the first card only
    split = ClusterDecision("split", " ".join([IDS[4], IDS[0]]), name="Hall", line=5)
    e = apply_decisions(IDS, LABELS, {}, [split])
    assert e.labels[4] == 3 and e.labels[0] == 0


def test_prefix_lookup_is_unique_or_nothing():
    from vpr_assets.core.landmarks import ScanIds

    ids = ScanIds(["abcdefgh1111", "abcdefgh2222", "bbbbbbbb0000"])
    assert ids.find("bbbbbbbb") == "bbbbbbbb0000" and ids.find("abcdefgh1") == "abcdefgh1111"
    assert ids.find("abcdefgh") is None and ids.find("bbbb") is None and ids.find("zzzzzzzz") is None
    assert ids.find("abcdefgh2222") == "abcdefgh2222"
