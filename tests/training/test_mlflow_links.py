"""MLflow as its users expect: evaluation runs carry their parameters, the Dagster run (id and URL)
and the dev manifest as an input dataset; links use the configured UI base URLs; and a collection
without a dev manifest materialises `evaluations` as "not evaluated" instead of failing the run."""

from __future__ import annotations

import pandas as pd

from vpr_assets.core import tracking
from vpr_assets.core.evaluation_records import record_evaluation
from vpr_assets.runner import materialize_partitions
from vpr_assets.storage import Catalog


def test_links_follow_the_configured_base_urls():
    links = tracking.UiLinks("https://mlflow.example.org/", "https://dagster.example.org")
    assert links.mlflow_run("3", "abc") == "https://mlflow.example.org/#/experiments/3/runs/abc"
    assert links.mlflow_model_version("m", "7") == "https://mlflow.example.org/#/models/m/versions/7"
    assert links.dagster_run("r1") == "https://dagster.example.org/runs/r1"


def test_an_evaluation_run_has_params_dagster_tags_and_its_dataset(tmp_path):
    cat = Catalog(tmp_path)
    frame = pd.DataFrame({"file": ["a.jpg", "b.jpg"], "label": ["x", "none"]})
    rec = record_evaluation(cat, tmp_path, {"mAP@5": 0.5, "P@1": 0.4}, "pretrained:lite0_gem512", "/m.tsv", "dagster",
                            params={"image_size": 320, "images": 2},
                            tags={"dagster_run_id": "r1", "dagster_run_url": "http://d/runs/r1"}, manifest_frame=frame)
    run = tracking.client(tmp_path).get_run(rec["run_id"])
    assert run.data.params["image_size"] == "320" and run.data.params["model_version"] == "pretrained:lite0_gem512"
    assert run.data.tags["dagster_run_id"] == "r1" and run.data.tags["evaluation_id"] == rec["evaluation_id"]
    assert run.data.metrics["mAP_at_5"] == 0.5
    (ds,) = run.inputs.dataset_inputs
    assert ds.dataset.name == "dev manifest" and {t.value for t in ds.tags} == {"evaluation"}
    assert set(cat.read("evaluations").metric) == {"mAP@5", "P@1"}


def test_evaluations_without_a_dev_manifest_is_not_a_failed_run(vpr_home, dagster_home):
    res = materialize_partitions(["evaluations"], [None])[0]
    assert res.success
    (mat,) = res.asset_materializations_for_node("evaluations")
    assert mat.metadata["evaluated"].value is False and mat.metadata["reason"].value == "no dev manifest"
    assert not Catalog(vpr_home).has("evaluations")
