"""Scans to clusters, index, a registered model and back: the vision and training graph through a
real Dagster instance, a real DuckDB catalog and a real MLflow store."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from vpr_assets.core import tracking
from vpr_assets.core.active_model import REGISTERED_MODEL
from vpr_assets.core.images import synth
from vpr_assets.demo import automation_requests, build_demo_collection, build_eval_set
from vpr_assets.runner import materialize_partitions
from vpr_assets.storage import Catalog

pytestmark = pytest.mark.slow

PER_BATCH = ["raw_scans", "scan_rejects", "image_embeddings"]
TRAIN = ["vpr_model", "champion_model"]
EMBED_CFG = {"ops": {"image_embeddings": {"config": {"image_size": 224, "num_workers": 0}}}}
CLUSTER_CFG = {"ops": {"landmark_clusters": {"config": {"min_size": 3}},
                       "evaluations": {"config": {"image_size": 224}}}}
# the default recipe, smaller: PCA-started neck trained on cached features of 2 augmented views
TRAIN_CFG = {"neck_epochs": 10, "views": 2, "min_class_size": 3}


def _check(res, name):
    return {e.check_name: e for e in res.get_asset_check_evaluations()}[name]


def test_collection_to_index_to_registered_model(vpr_home, dagster_home, tmp_path):
    batches = build_demo_collection(tmp_path / "src", n_per_place=6, seed=3)
    build_eval_set(vpr_home / "eval", n_per_place=3, seed=3)
    for name, folder in batches.items():
        shutil.copytree(folder, vpr_home / "inbox" / name)
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", list(batches))
    for b in batches:
        assert materialize_partitions(PER_BATCH, [b], run_config=EMBED_CFG)[0].success
    res = materialize_partitions(["landmark_clusters", "faiss_index", "evaluations"], [None], run_config=CLUSTER_CFG)[0]
    assert res.success
    cat = Catalog(vpr_home)

    emb = cat.read("image_embeddings")
    assert set(emb.model_version) == {"pretrained:lite0_gem512"}
    assert len(emb) == len(cat.read("raw_scans"))
    # clusters: same-place cards together, never two places in one cluster
    clusters = cat.query("""SELECT c.cluster_id, r.file_name FROM landmark_clusters c JOIN raw_scans r USING (scan_id)""")
    place = clusters.file_name.str.rsplit("_", n=1).str[0].replace("near", synth.DEMO_PLACES[0].key)  # near_copy.jpg
    places_per_cluster = clusters.assign(place=place).groupby("cluster_id").place.nunique()
    assert places_per_cluster.to_dict() == {k: 1 for k in places_per_cluster.index}, clusters.to_string()
    assert len(places_per_cluster) >= 5 and (places_per_cluster == 1).all()

    idx = cat.read("faiss_indexes")
    assert len(idx) == 1 and idx["count"][0] == len(emb) and idx["mode"][0] == "rebuild"
    assert (vpr_home / idx["path"][0]).exists()
    evals = cat.query("SELECT metric, value FROM evaluations").set_index("metric")["value"]
    assert evals["mAP@5"] > 0.6 and evals["landmark_accuracy"] > 0.6

    # a new batch is added to the index without a rebuild while the model is unchanged
    new = vpr_home / "inbox" / "late"
    new.mkdir()
    for i in range(3):
        synth.landmark_card(synth.DEMO_PLACES[1], 50 + i, 3).save(new / f"late_{i}.jpg")
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", ["late"])
    assert materialize_partitions(PER_BATCH, ["late"], run_config=EMBED_CFG)[0].success
    assert materialize_partitions(["faiss_index"], [None])[0].success
    idx = cat.read("faiss_indexes").sort_values("created_at")
    assert list(idx["mode"]) == ["rebuild", "incremental"] and idx["count"].iloc[-1] == len(emb) + 3

    # the automation sensor's view before training: nothing to re-embed
    _, before = automation_requests()
    assert automation_requests(before)[0] == []

    # train a model: MLflow run + registered version with lineage tags, candidate alias; the
    # read-only check gates champion_model in the same run
    run_config = {"ops": {"vpr_model": {"config": TRAIN_CFG}}}
    res = materialize_partitions(TRAIN, ["image_clusters"], raise_on_error=False, run_config=run_config)[0]
    models = cat.read("vpr_models")
    assert len(models) == 1
    row = models.iloc[0]
    reg = tracking.ModelRegistry(vpr_home)
    mv = reg.client.get_model_version(REGISTERED_MODEL, row.version)
    assert mv.tags["dagster_run_id"] == res.run_id and mv.tags["variant"] == "image_clusters"
    assert mv.tags["code_version"] == "vpr-model-v2" and "input_data_version/landmark_clusters" in mv.tags
    assert str(reg.version_by_alias(REGISTERED_MODEL, "candidate").version) == row.version
    run = reg.client.get_run(row.run_id)
    assert "mAP_at_5" in run.data.metrics and "loss" in run.data.metrics
    artifacts = {a.path for a in reg.client.list_artifacts(row.run_id, "reports")}
    assert {"reports/loss_curve.png", "reports/retrieval_examples.png", "reports/class_map.json"} <= artifacts
    with dg.DagsterInstance.get() as instance:
        mat = instance.fetch_materializations(dg.AssetKey("vpr_model"), limit=1).records[0].asset_materialization
        assert mat.tags["dagster/data_version"] == f"{REGISTERED_MODEL}/{row.version}"
        assert mat.metadata["mlflow_run_id"].value == row.run_id
    check = _check(res, "candidate_beats_champion")
    # the trained model beats the pretrained embedder on the held-out cards: the check passes and
    # champion_model, downstream of the blocking check, moves the alias
    assert check.passed, {k: v.value for k, v in check.metadata.items()}
    champ_mat = {m.asset_key.to_user_string(): m for m in res.get_asset_materialization_events()}["champion_model"]
    assert champ_mat.materialization.metadata["promoted"].value is True
    assert "decision" in check.metadata and "candidate" in check.metadata
    assert str(reg.version_by_alias(REGISTERED_MODEL, "champion").version) == row.version
    baseline = check.metadata["champion"].value  # before any champion: the pretrained embedder's figures
    assert row.mAP_at_5 > baseline["mAP_at_5"] and row.landmark_accuracy >= baseline["landmark_accuracy"]
    tags = reg.client.get_model_version(REGISTERED_MODEL, row.version).tags
    assert tags["promotion_decision"] == "promoted" and tags["promotion_vs_version"] == "pretrained:lite0_gem512"
    assert tags["promotion_reason"].startswith("beats the pretrained embedder")
    # every phase's dev figures are in the MLflow run (epoch 0 = the PCA-started model, then after the neck phase)
    history = reg.client.get_metric_history(row.run_id, "dev_mAP_at_5")
    assert len(history) == 2 and history[-1].value == pytest.approx(row.mAP_at_5)

    # the same training again, same seed, gives the same figures (deterministic), which do not beat
    # the champion, so the champion stays
    res2 = materialize_partitions(TRAIN, ["image_clusters"], raise_on_error=False, run_config=run_config)[0]
    c2 = _check(res2, "candidate_beats_champion")
    assert c2.passed is False, {k: v.value for k, v in c2.metadata.items()}
    # the blocking check stopped champion_model in that run
    assert "champion_model" not in {m.asset_key.to_user_string() for m in res2.get_asset_materialization_events()}
    row2 = cat.read("vpr_models").sort_values("created_at").iloc[-1]
    assert row2.version != row.version
    assert row2.mAP_at_5 == pytest.approx(row.mAP_at_5) and row2.landmark_accuracy == pytest.approx(row.landmark_accuracy)
    assert str(reg.version_by_alias(REGISTERED_MODEL, "champion").version) == row.version
    v2 = cat.read("vpr_models").sort_values("created_at").iloc[-1].version
    assert "promotion_decision" not in reg.client.get_model_version(REGISTERED_MODEL, v2).tags  # the check is read-only
    # champion_model on its own (as eager automation would run it) decides the same and records it
    alone = materialize_partitions(["champion_model"], ["image_clusters"])[0]
    (m,) = [m for m in alone.get_asset_materialization_events()]
    assert m.materialization.metadata["promoted"].value is False
    assert m.materialization.tags["dagster/data_version"] == f"{REGISTERED_MODEL}/{row.version}"
    assert reg.client.get_model_version(REGISTERED_MODEL, v2).tags["promotion_decision"] == "kept_champion"
    assert str(reg.version_by_alias(REGISTERED_MODEL, "champion").version) == row.version

    # image_embeddings follows the observed champion_alias: the automation sensor asks to re-embed
    # every batch; embeddings then record the champion's version
    requested, _ = automation_requests(before)
    assert requested == sorted([*batches, "late"])
    for b in requested:
        assert materialize_partitions(["image_embeddings"], [b], run_config=EMBED_CFG)[0].success
    champion = f"{REGISTERED_MODEL}/{row.version}"
    late = cat.read("image_embeddings", "late")
    assert set(late.model_version) == {champion} and set(late.dim) == {512}
    assert set(cat.read("image_embeddings").model_version) == {champion}
    # the index follows: a full rebuild over the champion's vectors, then its evaluation
    res = materialize_partitions(["landmark_clusters", "faiss_index", "evaluations"], [None], run_config=CLUSTER_CFG)[0]
    assert res.success
    idx = cat.read("faiss_indexes").sort_values("created_at").iloc[-1]
    assert idx["mode"] == "rebuild" and idx["model_version"] == champion and idx["count"] == len(emb) + 3
    latest = cat.query("SELECT model_version, metric, value FROM evaluations ORDER BY evaluated_at")
    assert latest.model_version.iloc[-1] == champion
