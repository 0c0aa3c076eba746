"""Where evaluations are kept: one row per figure in the `evaluations` table and one MLflow run each,
with the parameters that produced them and, from Dagster, the run that asked (the asset and
`vpr evaluate` both record through here)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from vpr_assets.storage import Catalog
from vpr_assets.storage.schemas import EVALUATIONS_SCHEMA


def default_manifest(home: Path) -> Path | None:
    """$VPR_HOME/eval/manifest.tsv if a curator put one there, else the demo collection's."""
    for cand in (home / "eval" / "manifest.tsv", home / "demo_source" / "manifest.tsv"):
        if cand.exists():
            return cand
    return None


def record_evaluation(cat: Catalog, home: Path, figures: dict, model_version: str, manifest: str, source: str,
                      params: dict | None = None, tags: dict | None = None, manifest_frame=None) -> dict:
    """Append one evaluation to `evaluations` and log it as an MLflow run (params, tags, the dev
    manifest as an input dataset). Returns {evaluation_id, experiment_id, run_id}."""
    import mlflow

    from vpr_assets.core import tracking

    now = datetime.now(timezone.utc)
    eid = f"{now:%Y%m%dT%H%M%S%f}"
    rows = [{"evaluation_id": eid, "evaluated_at": now, "model_version": model_version, "manifest": manifest,
             "metric": k, "value": float(v), "source": source} for k, v in figures.items()]
    cat.append_rows("evaluations", rows, EVALUATIONS_SCHEMA)
    exp = tracking.experiment_id(home, "vpr_evaluations")
    with tracking.active_store(home), mlflow.start_run(experiment_id=exp, run_name=f"eval {model_version}") as run:
        mlflow.set_tags({"model_version": model_version, "manifest": manifest, "source": source,
                         "evaluation_id": eid, **(tags or {})})
        mlflow.log_params({"model_version": model_version, "manifest": manifest, **(params or {})})
        if manifest_frame is not None:
            tracking.log_dataset(manifest_frame, "dev manifest", manifest, "evaluation", targets="label")
        mlflow.log_metrics(tracking.mlflow_metrics(figures))
    return {"evaluation_id": eid, "experiment_id": exp, "run_id": run.info.run_id}
