"""Promotion in the graph: a read-only decision, and a champion alias that `image_embeddings`
follows. A champion moved by hand in MLflow is observed by `champion_alias_sensor` (no run) and the
automation sensor then asks to re-embed every batch; nothing is asked while the alias stays."""

from __future__ import annotations

import dagster as dg
import mlflow

from vpr_assets.core import tracking
from vpr_assets.core.active_model import REGISTERED_MODEL
from vpr_assets.defs.resources import CatalogResource, ModelRegistryResource

BATCHES = ["b1", "b2"]


def _version(home, metrics: dict) -> str:
    with tracking.active_store(home), mlflow.start_run(experiment_id=tracking.experiment_id(home)) as run:
        mlflow.log_metrics(metrics)
        mlflow.log_text("w", "checkpoint/weights.txt")
    return tracking.ModelRegistry(home).register(REGISTERED_MODEL, run.info.run_id, "checkpoint", {})


def test_decide_is_read_only_and_apply_moves_the_alias(tmp_path):
    reg = tracking.ModelRegistry(tmp_path)
    v1 = _version(tmp_path, {"mAP_at_5": 0.8, "landmark_accuracy": 0.9})
    bar = {"mAP_at_5": 0.85, "landmark_accuracy": 0.9}
    lost = reg.decide(REGISTERED_MODEL, v1, {"mAP_at_5": 0.8, "landmark_accuracy": 0.9}, baseline=bar,
                      baseline_label="pretrained:x")
    assert not lost.promoted and lost.champion_version == "pretrained:x" and "does not beat" in lost.reason
    won = reg.decide(REGISTERED_MODEL, v1, {"mAP_at_5": 0.9, "landmark_accuracy": 0.9}, baseline=bar)
    assert won.promoted
    # deciding changed nothing
    assert reg.version_by_alias(REGISTERED_MODEL, "champion") is None
    assert "promotion_decision" not in reg.client.get_model_version(REGISTERED_MODEL, v1).tags
    reg.apply(REGISTERED_MODEL, lost)
    assert reg.version_by_alias(REGISTERED_MODEL, "champion") is None
    assert reg.client.get_model_version(REGISTERED_MODEL, v1).tags["promotion_decision"] == "kept_pretrained"
    reg.apply(REGISTERED_MODEL, won)
    assert str(reg.version_by_alias(REGISTERED_MODEL, "champion").version) == v1
    assert reg.decide(REGISTERED_MODEL, v1, {"mAP_at_5": 0.0, "landmark_accuracy": 0.0}).reason == "already champion"


def _observe(instance, home):
    from vpr_assets.defs.training.sensors import champion_alias_sensor

    resources = {"model_registry": ModelRegistryResource(catalog=CatalogResource(home=str(home)))}
    with dg.build_sensor_context(instance=instance, resources=resources, cursor=None) as ctx:
        result = champion_alias_sensor(ctx)
    if isinstance(result, dg.SensorResult):
        for event in result.asset_events:
            instance.report_runless_asset_event(event)
        return [e.tags["dagster/data_version"] for e in result.asset_events]
    return []


def test_a_champion_set_in_mlflow_is_observed_and_re_embeds_every_batch(vpr_home, dagster_home):
    from vpr_assets.definitions import defs

    embeddings = dg.AssetSelection.assets("image_embeddings")
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", BATCHES)
        for key in ("raw_scans", "image_embeddings"):
            for b in BATCHES:
                instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=b))
        settled = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=embeddings)

        # no champion yet: the pretrained embedder is what the embeddings use; nothing is reported
        assert _observe(instance, vpr_home) == []
        quiet = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor,
                                                  asset_selection=embeddings)
        assert quiet.get_requested_partitions(dg.AssetKey("image_embeddings")) == set()

        # someone moves the alias in the MLflow UI: observed once, and every batch is re-embedded
        v = _version(vpr_home, {"mAP_at_5": 0.9, "landmark_accuracy": 0.9})
        tracking.ModelRegistry(vpr_home).client.set_registered_model_alias(REGISTERED_MODEL, "champion", v)
        assert _observe(instance, vpr_home) == [f"{REGISTERED_MODEL}/{v}"]
        assert _observe(instance, vpr_home) == []  # same alias: no second observation
        moved = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=quiet.cursor,
                                                  asset_selection=embeddings)
        assert moved.get_requested_partitions(dg.AssetKey("image_embeddings")) == set(BATCHES)

        # once re-embedded, an unchanged alias asks for nothing more
        for b in BATCHES:
            instance.report_runless_asset_event(dg.AssetMaterialization("image_embeddings", partition=b))
        after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=moved.cursor,
                                                  asset_selection=embeddings)
        assert after.get_requested_partitions(dg.AssetKey("image_embeddings")) == set()
