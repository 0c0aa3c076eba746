"""Text-fused recognition models end to end through a real Dagster instance, DuckDB catalog and MLflow
store: scans -> OCR -> MiniLM text embeddings -> clusters -> `vpr_model` (image_ocr_desc) ->
registry -> champion -> fused FAISS index -> search by picture; and a crashing training run that
leaves the registry and the earlier model untouched."""

from __future__ import annotations

import csv
import hashlib
import shutil
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from vpr_assets.core import tracking
from vpr_assets.core.active_model import REGISTERED_MODEL
from vpr_assets.core.images import synth
from vpr_assets.core.training.mlflow_model import checkpoint_dir
from vpr_assets.demo import build_demo_collection, build_eval_set
from vpr_assets.runner import materialize_partitions
from vpr_assets.storage import Catalog

pytestmark = pytest.mark.slow

BATCH = "fusion_batch"
PLACES = [p.key for p in synth.DEMO_PLACES[:4]]
PER_BATCH = ["raw_scans", "scan_rejects", "ocr_text", "geo_words", "text_embeddings", "image_embeddings"]
EMBED_CFG = {"ops": {"image_embeddings": {"config": {"image_size": 224, "num_workers": 0}}}}
TRAIN_CFG = {"neck_epochs": 5, "views": 2, "image_size": 128, "min_class_size": 3}


def small_demo_batch(src: Path, dst: Path) -> list[str]:
    """The landmark cards of 4 demo places (5 each, both demo batches) in one batch folder, with
    their descriptions; returns the file names."""
    batches = build_demo_collection(src, n_per_place=5, seed=3)
    dst.mkdir(parents=True)
    names, rows = [], []
    for folder in batches.values():
        with open(folder / "descriptions.csv", newline="", encoding="utf-8") as fh:
            desc = {r["file"]: r["description"] for r in csv.DictReader(fh)}
        for f in sorted(folder.glob("*.jpg")):
            if f.name.rsplit("_", 1)[0] in PLACES:
                shutil.copy(f, dst / f.name)
                names.append(f.name)
                rows.append((f.name, desc[f.name]))
    with open(dst / "descriptions.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "description"])
        w.writerows(rows)
    return names


def folder_digest(folder: Path) -> dict[str, str]:
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


def test_text_fused_model_to_fused_index_and_search(vpr_home, dagster_home, tmp_path):
    t0 = time.perf_counter()

    def stage(what: str) -> None:
        print(f"  [{time.perf_counter() - t0:6.1f} s] {what}")

    names = small_demo_batch(tmp_path / "src", vpr_home / "inbox" / BATCH)
    assert len(names) == 4 * 5
    eval_manifest = build_eval_set(vpr_home / "eval", n_per_place=2, seed=3)
    kept = [ln for ln in eval_manifest.read_text().splitlines(keepends=True)[1:]
            if ln.split("\t")[1].strip() in PLACES + ["none"]]
    eval_manifest.write_text("file\tlabel\n" + "".join(kept))  # the 4 places and the non-landmark cards
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", [BATCH])
    assert materialize_partitions(PER_BATCH, [BATCH], run_config=EMBED_CFG)[0].success
    stage("per-batch assets (ingest, OCR, geo-words, text + image embeddings)")
    cfg = {"ops": {"landmark_clusters": {"config": {"min_size": 3}}}}
    assert materialize_partitions(["landmark_clusters"], [None], run_config=cfg)[0].success
    cat = Catalog(vpr_home)
    te = cat.read("text_embeddings")
    assert len(te) >= len(names) // 2, "most cards should have OCR text or a description"
    clusters = cat.query("""SELECT c.scan_id, c.cluster_id, c.status, r.file_name, r.path FROM landmark_clusters c
                            JOIN raw_scans r USING (scan_id)""")
    assert (clusters.status == "landmark").sum() >= 9

    stage("landmark clusters")
    # train the text-fused variant: an MLflow run and a registered version tagged with the variant
    res = materialize_partitions(["vpr_model"], ["image_ocr_desc"], raise_on_error=False,
                                 run_config={"ops": {"vpr_model": {"config": TRAIN_CFG}}})[0]
    # (the blocking promotion check may fail the run: a one-epoch model need not beat the pretrained one)
    assert res.get_asset_materialization_events(), "vpr_model image_ocr_desc did not materialise"
    row = cat.read("vpr_models").iloc[-1]
    assert row.variant == "image_ocr_desc" and row.n_classes >= 3
    reg = tracking.ModelRegistry(vpr_home)
    mv = reg.client.get_model_version(REGISTERED_MODEL, row.version)
    assert mv.tags["variant"] == "image_ocr_desc" and mv.tags["dagster_partition"] == "image_ocr_desc"
    params = reg.client.get_run(row.run_id).data.params
    assert int(params["data_with_text"]) > 0 and params["variant"] == "image_ocr_desc"
    folder = reg.download(REGISTERED_MODEL, row.version, tmp_path / "downloaded")
    assert "MLmodel" in {f.name for f in folder.iterdir()}  # a loadable MLflow model (pyfunc)...
    ckpt = checkpoint_dir(folder)  # ...that carries the recognizer checkpoint
    assert {"fusion.pt", "recognizer.json", "weights.pt", "config.json"} <= {f.name for f in ckpt.iterdir()}
    run_inputs = reg.client.get_run(row.run_id).inputs.dataset_inputs
    assert {t.value for d in run_inputs for t in d.tags} >= {"training", "evaluation"}

    stage("vpr_model image_ocr_desc (train, evaluate, register, promotion check)")
    # a crash mid-training (a clustered card's file vanishes after the clusters were made: the first
    # batch fails to load) registers nothing, moves no alias, and leaves the earlier version's
    # artifacts and the vpr_models table as they were
    versions_before = [v["version"] for v in reg.versions(REGISTERED_MODEL)]
    candidate_before = str(reg.version_by_alias(REGISTERED_MODEL, "candidate").version)
    artifacts_before = folder_digest(folder)
    victim = vpr_home / clusters[clusters.status == "landmark"].path.iloc[0]
    aside = tmp_path / "aside.jpg"
    victim.rename(aside)
    try:
        crashed = materialize_partitions(["vpr_model"], ["image_ocr"], raise_on_error=False,
                                         run_config={"ops": {"vpr_model": {"config": TRAIN_CFG}}})[0]
    finally:
        aside.rename(victim)
    assert not crashed.success
    failure = [e for e in crashed.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure and "FileNotFoundError" in failure[0].event_specific_data.error.to_string()
    runs = reg.client.search_runs([tracking.experiment_id(vpr_home)], "tags.variant = 'image_ocr'")
    assert [r.info.status for r in runs] == ["FAILED"]  # the MLflow run records the crash
    assert [v["version"] for v in reg.versions(REGISTERED_MODEL)] == versions_before
    assert str(reg.version_by_alias(REGISTERED_MODEL, "candidate").version) == candidate_before
    assert reg.version_by_alias(REGISTERED_MODEL, "champion") is None or \
        str(reg.version_by_alias(REGISTERED_MODEL, "champion").version) == row.version
    assert len(cat.read("vpr_models")) == 1
    assert not (vpr_home / "models" / "staging").exists() or not any((vpr_home / "models" / "staging").iterdir())
    again = reg.download(REGISTERED_MODEL, row.version, tmp_path / "downloaded_again")
    assert folder_digest(again) == artifacts_before

    stage("crashed vpr_model image_ocr")
    # champion: re-embed with it, then the index fuses each card's image vector with its text
    reg.client.set_registered_model_alias(REGISTERED_MODEL, "champion", row.version)
    assert materialize_partitions(["image_embeddings"], [BATCH], run_config=EMBED_CFG)[0].success
    assert materialize_partitions(["faiss_index"], [None])[0].success
    idx = cat.read("faiss_indexes").sort_values("created_at").iloc[-1]
    assert bool(idx.fused_text) is True and idx.model_version == f"{REGISTERED_MODEL}/{row.version}"
    assert idx["count"] == len(names)

    stage("champion re-embedding and fused faiss_index")
    from vpr_assets.core.search import SearchEngine

    engine = SearchEngine(vpr_home)
    landmark_cards = clusters[clusters.status == "landmark"].sort_values("file_name")
    for card in landmark_cards.iloc[::4].itertuples():
        out = engine.search_image(vpr_home / card.path, k=5)
        assert out["model_version"] == f"{REGISTERED_MODEL}/{row.version}"
        assert out["results"][0]["cluster_id"] == card.cluster_id, (card.file_name, out["results"][:3])
        assert out["landmark"] is not None and out["landmark"]["cluster_id"] == card.cluster_id, out

    stage("search by picture")
    # fused vs image-only retrieval of the collection's cards by their cluster, from the champion's
    # stored image vectors (printed for the report: each card's caption/description names its
    # place, so fusing is expected to help here; the query side of search stays image-only)
    from vpr_assets.core.active_model import active_model
    from vpr_assets.core.collection_reads import current_embeddings
    from vpr_assets.core.evaluation import evaluate_vectors
    from vpr_assets.defs.vision.index import fused_vectors

    model = active_model(vpr_home)
    assert model.uses_text
    ids_df, vecs, _ = current_embeddings(cat, model.version)
    fvecs, was_fused = fused_vectors(model, list(ids_df.scan_id), vecs, cat)
    assert was_fused and fvecs.shape == vecs.shape
    label = {s: (f"c{c}" if st == "landmark" else "none") for s, c, st in
             zip(clusters.scan_id, clusters.cluster_id, clusters.status)}
    labels = [label.get(s, "none") for s in ids_df.scan_id]
    fused = evaluate_vectors(list(ids_df.scan_id), labels, fvecs).metrics
    image_only = evaluate_vectors(list(ids_df.scan_id), labels, vecs).metrics
    print(f"\n[demo collection, {len(labels)} cards, image_ocr_desc v{row.version}, gate "
          f"{float(model.recognizer.fusion.gate.detach()):.5f}] cluster retrieval mAP@5 fused "
          f"{fused['mAP@5']:.4f} vs image-only {image_only['mAP@5']:.4f}; dev-set mAP@5 (no text) {row.mAP_at_5:.4f}")
    assert all(np.isfinite([fused["mAP@5"], image_only["mAP@5"]]))
    assert not np.allclose(fvecs, vecs)  # cards with text moved
