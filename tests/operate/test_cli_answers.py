"""Small answers of the CLI, in-process: `vpr status` names the model and the index search uses,
and --json means JSON on stdout with the same exit status, errors included."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from vpr_assets.cli import main
from vpr_assets.storage import Catalog


def test_status_names_the_model_and_the_current_index(vpr_home, dagster_home, capsys):
    assert main(["status", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "pretrained:lite0_gem512" and out["index"] is None
    assert out["evaluation"]["evaluated"] is False and "no dev manifest" in out["evaluation"]["reason"]

    row = {"build_id": "b2", "path": "indexes/b2", "factory": "Flat", "index_type": "flat", "count": 7, "dim": 512,
           "model_version": "vpr_landmark_recognizer/3", "embedding_data_version": "x", "mode": "rebuild",
           "fused_text": False, "build_seconds": 0.1, "created_at": datetime(2026, 1, 2, tzinfo=timezone.utc),
           "dagster_run_id": "r"}
    older = row | {"build_id": "b1", "path": "indexes/b1", "count": 5, "created_at": datetime(2026, 1, 1, tzinfo=timezone.utc)}
    Catalog(vpr_home).append_rows("faiss_indexes", [row, older])
    assert main(["status", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["index"]["build_id"] == "b2" and out["index"]["count"] == 7
    assert out["index"]["model_version"] == "vpr_landmark_recognizer/3"
    assert out["tables"]["faiss_indexes"]["rows"] == 2
    assert main(["status"]) == 0
    text = capsys.readouterr().out
    assert "model        pretrained:lite0_gem512" in text and "index        7 cards" in text
    assert "evaluation   none: no dev manifest" in text
    assert "curation     0 card decisions, 0 labels from the browser, 0 landmark decisions" in text

    from vpr_assets.core.curation.curator_files import DECISIONS_LOG, append_curator_action
    from vpr_assets.core.landmarks import append_cluster_decision

    append_curator_action(vpr_home, DECISIONS_LOG, "a" * 64, "reject", "ana")
    append_cluster_decision(vpr_home, "rename", "b" * 64, "ana", name="Somewhere")
    assert main(["status", "--json"]) == 0
    cu = json.loads(capsys.readouterr().out)["curation"]
    assert cu == {"card_decisions": 1, "labels_from_the_browser": 0, "landmark_decisions": 1,
                  "landmark_decisions_not_applied": 0}  # no clusters yet: nothing was tried

    from vpr_assets.core.evaluation_records import record_evaluation

    record_evaluation(Catalog(vpr_home), vpr_home, {"mAP@5": 0.75}, "pretrained:lite0_gem512", "/m.tsv", "cli")
    assert main(["status", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)["evaluation"]
    assert ev["evaluated"] and ev["mAP@5"] == 0.75 and ev["manifest"] == "/m.tsv"


def test_json_errors_are_json_with_the_same_exit_status(vpr_home, dagster_home, tmp_path, capsys):
    missing = str(tmp_path / "no_such_picture.jpg")
    plain = main(["search", missing])
    captured = capsys.readouterr()
    assert plain != 0 and "error" in captured.err and captured.out == ""
    as_json = main(["search", missing, "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert as_json == plain and payload["exit"] == plain and payload["command"] == "search"
    assert "no_such_picture.jpg" in payload["error"]


def test_landmark_exit_status_does_not_depend_on_json(vpr_home, dagster_home, capsys):
    plain = main(["landmark", "Paris"])
    capsys.readouterr()
    as_json = main(["landmark", "Paris", "--json"])
    out = capsys.readouterr().out
    json.loads(out)  # an answer or an error, as JSON either way
    assert plain == as_json != 0
