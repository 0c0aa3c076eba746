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
    tracking.client(home)
    with mlflow.start_run(experiment_id=tracking.experiment_id(home)) as run:
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
