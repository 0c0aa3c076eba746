"""`evaluations`: retrieval figures of the active model on a labelled manifest, in DuckDB and MLflow."""

import json
from pathlib import Path

import dagster as dg

from vpr_assets.core.collection_reads import text_vectors_by_scan
from vpr_assets.core.evaluation import embed_fn_for, evaluate_manifest, flat_figures, landmark_score_fn, read_manifest
from vpr_assets.core.evaluation_records import default_manifest, record_evaluation
from vpr_assets.defs.metadata import table_metadata
from vpr_assets.defs.resources import CaptionOcrResource, CatalogResource, ModelRegistryResource, UiLinksResource

EVALUATIONS_CODE_VERSION = "evaluations-v1"


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
def evaluations(context: dg.AssetExecutionContext, config: EvaluationConfig, catalog: CatalogResource,
                ui_links: UiLinksResource, model_registry: ModelRegistryResource, caption_ocr: CaptionOcrResource):
    home = catalog.root
    manifest_path = Path(config.manifest) if config.manifest else default_manifest(home)
    if manifest_path is None or not manifest_path.exists():
        # a new collection has no labelled dev set yet: that is not a failure of the run
        context.log.warning(f"no evaluation manifest: put one at {home / 'eval' / 'manifest.tsv'} or set config.manifest")
        return dg.MaterializeResult(metadata={"evaluated": False, "reason": "no dev manifest",
                                              "expected_at": dg.MetadataValue.path(str(home / "eval" / "manifest.tsv"))})
    manifest = read_manifest(manifest_path, config.images_dir or None)
    version = model_registry.label()
    model = model_registry.active(version)
    result = evaluate_manifest(manifest, embed_fn_for(model, config.image_size or None,
                                                      text_vectors_by_scan(catalog.catalog, model.text_sources),
                                                      read_captions=config.read_captions, ocr_tools=caption_ocr.tools),
                               landmark_score=landmark_score_fn() if config.landmark_score else None)
    figures = flat_figures(result.metrics)
    links = ui_links.links
    params = {**config.model_dump(), "images": len(manifest.files), "code_version": EVALUATIONS_CODE_VERSION}
    rec = record_evaluation(catalog.catalog, home, figures, version, str(manifest_path), "dagster", params=params,
                            tags={"dagster_run_id": context.run.run_id, "dagster_run_url": links.dagster_run(context.run.run_id),
                                  "dagster_asset_key": "evaluations"},
                            manifest_frame=manifest.frame())
    md = "\n".join(["| metric | value |", "|---|---|"] + [f"| {k} | {v:.4f} |" for k, v in figures.items()])
    context.log.info(json.dumps(figures))
    return dg.MaterializeResult(metadata={
        "evaluated": True, "model_version": version, "evaluation_id": rec["evaluation_id"], "manifest": str(manifest_path),
        "mAP@5": figures.get("mAP@5", float("nan")), "landmark_accuracy": figures.get("landmark_accuracy", float("nan")),
        "figures": dg.MetadataValue.md(md), "manifest_problems": len(manifest.problems),
        "mlflow_run": dg.MetadataValue.url(links.mlflow_run(rec["experiment_id"], rec["run_id"])),
    })
