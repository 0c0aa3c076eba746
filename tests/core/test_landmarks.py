"""Curators' cluster decisions (anchored on scan_ids) and landmark naming from geo-words."""

from __future__ import annotations

from vpr_assets.core.landmarks import apply_decisions, name_cluster, read_cluster_decisions

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
    labels, names, rejected, report = apply_decisions(IDS, LABELS, {}, decisions)
    assert names[0] == "Tower Bridge" and rejected == {0}
    assert labels[6] == labels[7] == labels[3] == 1          # merged
    assert labels[4] not in (0, 1, 2, -1) and names[labels[4]] == "Old Town Hall"
    assert labels[8] == 1                                      # moved
    assert len(report.applied) == 5 and not report.problems


def test_unknown_or_ambiguous_anchors_are_reported(tmp_path):
    decisions, _ = _decide(tmp_path, "rename,zzzzzzzzzz,,X\nrename,a0a0,,too short\n")
    labels, names, rejected, report = apply_decisions(IDS, LABELS, {}, decisions)
    assert labels == LABELS and names == {} and len(report.problems) == 2


def test_name_from_dominant_landmark_and_city():
    tower = {"name": "Tower Bridge", "country": "GB", "kind": "landmark", "score": 0.95}
    london = {"name": "London", "country": "GB", "kind": "city", "score": 1.0}
    paris = {"name": "Paris", "country": "FR", "kind": "city", "score": 1.0}
    name, places = name_cluster([[tower, london], [london], [tower, london], [paris]], [[], [], [], []])
    assert name == "Tower Bridge, London (GB)"
    assert places[0]["name"] in ("London", "Tower Bridge") and all("share" in p for p in places)
    # no places: the words at least 30% of the members share, most common first (ties alphabetical)
    assert name_cluster([[], [], []], [["bridge", "thames"], ["bridge"], ["bridge", "river"]])[0] == "bridge river thames"
