"""`evaluations`: retrieval figures of the active model on a labelled manifest, in DuckDB and MLflow."""

import json
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from vpr_assets.core.active_model import active_model, model_version_label
from vpr_assets.core.evaluation import embed_fn_for, evaluate_manifest, flat_figures, landmark_score_fn, read_manifest
from vpr_assets.defs.metadata import table_metadata
from vpr_assets.defs.resources import CatalogResource
from vpr_assets.defs.vision.loading import text_vectors_by_scan  # noqa: F401  (re-exported for callers)
from vpr_assets.storage import Catalog
from vpr_assets.storage.schemas import EVALUATIONS_SCHEMA

EVALUATIONS_CODE_VERSION = "evaluations-v1"


def default_manifest(home: Path) -> Path | None:
    """$VPR_HOME/eval/manifest.tsv if a curator put one there, else the demo collection's."""
    for cand in (home / "eval" / "manifest.tsv", home / "demo_source" / "manifest.tsv"):
        if cand.exists():
            return cand
    return None


def record_evaluation(cat: Catalog, home: Path, figures: dict, model_version: str, manifest: str, source: str) -> str:
    """Append one evaluation to the `evaluations` table and log it as an MLflow run."""
    from vpr_assets.core import tracking

    now = datetime.now(timezone.utc)
    eid = f"{now:%Y%m%dT%H%M%S%f}"
    rows = [{"evaluation_id": eid, "evaluated_at": now, "model_version": model_version, "manifest": manifest,
             "metric": k, "value": float(v), "source": source} for k, v in figures.items()]
    cat.append_rows("evaluations", rows, EVALUATIONS_SCHEMA)
    import mlflow

    tracking.client(home)
    with mlflow.start_run(experiment_id=tracking.experiment_id(home, "vpr_evaluations"), run_name=f"eval {model_version}"):
        mlflow.set_tags({"model_version": model_version, "manifest": manifest, "source": source})
        mlflow.log_metrics(tracking.mlflow_metrics(figures))
    return eid


class EvaluationConfig(dg.Config):
    manifest: str = ""  # "" = $VPR_HOME/eval/manifest.tsv, else the demo collection's manifest
    images_dir: str = ""
    image_size: int = 0
    read_captions: bool = True  # models that fuse text read each query card's caption (as `vpr search` does)
    landmark_score: bool = True  # non-landmark rejection combines top-1 similarity with the landmark score


@dg.asset(
    metadata=table_metadata('evaluations'),
    deps=["faiss_index"],
    group_name="vision",
    code_version=EVALUATIONS_CODE_VERSION,
    kinds={"mlflow", "parquet"},
    description="P@k, R-precision, Recall@k, mAP@k, landmark accuracy and non-landmark rejection of the "
    "active model on a labelled manifest (every landmark image queries all others, distractors stay in).",
)
def evaluations(context: dg.AssetExecutionContext, config: EvaluationConfig, catalog: CatalogResource):
    home = catalog.root
    manifest_path = Path(config.manifest) if config.manifest else default_manifest(home)
    if manifest_path is None or not manifest_path.exists():
        raise dg.Failure(f"no evaluation manifest: put one at {home / 'eval' / 'manifest.tsv'} or set config.manifest")
    manifest = read_manifest(manifest_path, config.images_dir or None)
    version = model_version_label(home)
    model = active_model(home, version)
    result = evaluate_manifest(manifest, embed_fn_for(model, config.image_size or None,
                                                      text_vectors_by_scan(catalog.catalog, model.text_sources),
                                                      read_captions=config.read_captions),
                               landmark_score=landmark_score_fn() if config.landmark_score else None)
    figures = flat_figures(result.metrics)
    eid = record_evaluation(catalog.catalog, home, figures, version, str(manifest_path), "dagster")
    md = "\n".join(["| metric | value |", "|---|---|"] + [f"| {k} | {v:.4f} |" for k, v in figures.items()])
    context.log.info(json.dumps(figures))
    return dg.MaterializeResult(metadata={
        "model_version": version, "evaluation_id": eid, "manifest": str(manifest_path),
        "mAP@5": figures.get("mAP@5", float("nan")), "landmark_accuracy": figures.get("landmark_accuracy", float("nan")),
        "figures": dg.MetadataValue.md(md), "manifest_problems": len(manifest.problems),
    })
