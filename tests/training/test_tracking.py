"""MLflow registry under the data root: versions, tags, aliases, and promotion rules."""

from __future__ import annotations

import mlflow
import pytest

from vpr_assets.core import tracking


def test_beats_requires_no_worse_and_some_better():
    assert tracking.beats({"mAP_at_5": 0.8, "landmark_accuracy": 0.9}, None)[0]
    assert tracking.beats({"mAP_at_5": 0.8, "landmark_accuracy": 0.9}, {"mAP_at_5": 0.7, "landmark_accuracy": 0.9})[0]
    ok, reason = tracking.beats({"mAP_at_5": 0.9, "landmark_accuracy": 0.8}, {"mAP_at_5": 0.7, "landmark_accuracy": 0.9})
    assert not ok and "landmark_accuracy" in reason
    assert not tracking.beats({"mAP_at_5": 0.7, "landmark_accuracy": 0.9}, {"mAP_at_5": 0.7, "landmark_accuracy": 0.9})[0]


def test_metric_names_are_mlflow_safe():
    assert tracking.mlflow_metrics({"mAP@5": 0.5, "R-precision": 0.4, "n": float("nan")}) == {"mAP_at_5": 0.5, "R_precision": 0.4}


def _logged_run(home, metrics: dict) -> str:
    with tracking.active_store(home), mlflow.start_run(experiment_id=tracking.experiment_id(home)) as run:
        mlflow.log_metrics(metrics)
        (home / "ck").mkdir(exist_ok=True)
        (home / "ck" / "weights.pt").write_bytes(b"weights")
        mlflow.log_artifacts(str(home / "ck"), artifact_path="checkpoint")
        return run.info.run_id


def test_registry_aliases_and_a_worse_candidate_never_replaces_the_champion(tmp_path):
    home = tmp_path
    reg = tracking.ModelRegistry(home)
    good = reg.register("m", _logged_run(home, {"mAP_at_5": 0.8, "landmark_accuracy": 0.9}), "checkpoint",
                        {"variant": "image", "dagster_run_id": "r1"})
    assert str(reg.version_by_alias("m", "candidate").version) == good
    d1 = reg.promote_if_better("m", good, {"mAP_at_5": 0.8, "landmark_accuracy": 0.9})
    assert d1.promoted and str(reg.version_by_alias("m", "champion").version) == good

    worse = reg.register("m", _logged_run(home, {"mAP_at_5": 0.6, "landmark_accuracy": 0.95}), "checkpoint", {"variant": "image"})
    assert str(reg.version_by_alias("m", "candidate").version) == worse
    d2 = reg.promote_if_better("m", worse, {"mAP_at_5": 0.6, "landmark_accuracy": 0.95})
    assert not d2.promoted
    assert str(reg.version_by_alias("m", "champion").version) == good
    tags = reg.client.get_model_version("m", worse).tags
    assert tags["promotion_decision"] == "kept_champion" and "mAP_at_5" in tags["promotion_reason"]
    assert tags["variant"] == "image"

    better = reg.register("m", _logged_run(home, {"mAP_at_5": 0.85, "landmark_accuracy": 0.9}), "checkpoint", {})
    assert reg.promote_if_better("m", better, {"mAP_at_5": 0.85, "landmark_accuracy": 0.9}).promoted
    versions = {v["version"]: v for v in reg.versions("m")}
    assert versions[better]["aliases"] == ["candidate", "champion"]
    assert versions[good]["aliases"] == []
    assert versions[good]["metrics"]["mAP_at_5"] == pytest.approx(0.8)
    folder = reg.download("m", better, home / "dl")
    assert (folder / "weights.pt").read_bytes() == b"weights"
    assert (home / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


def test_the_store_is_set_for_a_block_only_and_two_data_roots_never_cross(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(None)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    with tracking.active_store(a) as uri:
        assert mlflow.get_tracking_uri() == uri == tracking.tracking_uri(a)
        with mlflow.start_run(experiment_id=tracking.experiment_id(a)) as run_a:
            mlflow.log_metric("m", 1.0)
    assert not mlflow.is_tracking_uri_set()  # unset before, unset after
    with tracking.active_store(b), mlflow.start_run(experiment_id=tracking.experiment_id(b)) as run_b:
        mlflow.log_metric("m", 2.0)
    in_a = tracking.client(a).search_runs([tracking.experiment_id(a)])
    in_b = tracking.client(b).search_runs([tracking.experiment_id(b)])
    assert [r.info.run_id for r in in_a] == [run_a.info.run_id]
    assert [r.info.run_id for r in in_b] == [run_b.info.run_id]
    elsewhere = f"sqlite:///{tmp_path / 'other.db'}"
    mlflow.set_tracking_uri(elsewhere)
    try:
        with tracking.active_store(a):
            pass
        assert mlflow.get_tracking_uri() == elsewhere  # a URI set before comes back
    finally:
        mlflow.set_tracking_uri(None)
