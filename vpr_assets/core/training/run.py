"""One training run of one variant, end to end: train, judge on the dev manifest after every phase,
log everything to MLflow, register the model as a `candidate` version. What `vpr_model` calls.

Lineage both ways: `tags` (the caller's: Dagster run id and URL, code version, input data versions)
go onto the MLflow run and the registered version; the returned `TrainingRun` carries the version
and run ids back to the caller's metadata and history table.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Sequence

from vpr_assets.core.active_model import REGISTERED_MODEL


@dataclass
class TrainingRun:
    variant: str
    version: str  # the registered version (alias `candidate`)
    run_id: str
    experiment_id: str
    figures: dict  # dev figures of the final model ({} without a dev manifest)
    class_map: dict[str, int]
    history: list[dict]
    seconds: float
    items: int
    final_loss: float = float("nan")

    def summary(self) -> dict:
        """The run in figures, as `vpr_model` records them with its materialisation."""
        nan = float("nan")
        return {"registered_model": REGISTERED_MODEL, "version": self.version, "alias": "candidate",
                "mlflow_run_id": self.run_id, "mAP@5": self.figures.get("mAP@5", nan),
                "landmark_accuracy": self.figures.get("landmark_accuracy", nan), "classes": len(self.class_map),
                "training_items": self.items, "train_seconds": round(self.seconds, 1), "final_loss": self.final_loss}

    def history_row(self, input_data_versions: Mapping[str, str], eval_manifest: Path | None,
                    dagster_run_id: str) -> dict:
        """Its row of the `vpr_models` history table (storage.schemas.VPR_MODELS_SCHEMA)."""
        return {"variant": self.variant, "registered_model": REGISTERED_MODEL, "version": self.version,
                "run_id": self.run_id, "mAP_at_5": self.figures.get("mAP@5"),
                "landmark_accuracy": self.figures.get("landmark_accuracy"), "n_classes": len(self.class_map),
                "n_items": self.items, "train_seconds": self.seconds,
                "input_data_versions": json.dumps(dict(input_data_versions)), "eval_manifest": str(eval_manifest or ""),
                "dagster_run_id": dagster_run_id, "created_at": datetime.now(timezone.utc)}


def train_and_register(home: Path, variant: str, config, items: Sequence, source: Mapping[str, str],
                       dataset_source: str, manifest_path: Path | None, tags: Mapping[str, str], run_name: str,
                       text_vectors: Callable[[], Mapping] | None = None,
                       info: Callable[[str], None] = lambda m: None,
                       warn: Callable[[str], None] = lambda m: None, ocr_tools=None) -> TrainingRun:
    """Train `config` (a TrainConfig) on `items`, tracked in the MLflow store of `home`.

    `manifest_path`: the dev manifest the model is judged on (no manifest: registered without
    figures, so it can never be promoted). `text_vectors()`: {scan_id: text vector} the variant
    fuses when judging (called once, only with a manifest). `ocr_tools`: the OcrTools that read
    the dev cards' captions."""
    import mlflow
    import pandas as pd

    from vpr_assets.core import tracking
    from vpr_assets.core.active_model import ActiveModel
    from vpr_assets.core.evaluation import embed_fn_for, evaluate_manifest, flat_figures, read_manifest
    from vpr_assets.core.training.mlflow_model import log_recognizer_model
    from vpr_assets.core.training.reports import loss_curve_png, retrieval_grid_png
    from vpr_assets.core.training.trainer import train

    home = Path(home)
    exp = tracking.experiment_id(home)
    staging_root = home / "models" / "staging"
    staging_root.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(manifest_path) if manifest_path is not None and Path(manifest_path).exists() else None
    with tracking.active_store(home), tempfile.TemporaryDirectory(dir=staging_root) as tmp, \
            mlflow.start_run(experiment_id=exp, run_name=run_name) as run:
        tmp = Path(tmp)
        mlflow.set_tags({"variant": variant, **tags})
        mlflow.log_params({**config.to_json(), **{f"data_{k}": v for k, v in source.items()}})
        tracking.log_dataset(pd.DataFrame({"path": [it.path for it in items], "label": [it.label for it in items]}),
                             f"{variant} training items", dataset_source, "training", targets="label")
        if manifest is not None:
            tracking.log_dataset(manifest.frame(), "dev manifest", str(manifest_path), "evaluation", targets="label")
        vectors = text_vectors() if (manifest is not None and text_vectors is not None) else None

        evaluated: dict = {}  # the last evaluation is the final model's (train() evaluates after its last phase)

        def judge(model) -> dict:
            am = ActiveModel(f"candidate:{variant}", model.embedder, model, "training")
            evaluated["result"] = evaluate_manifest(manifest, embed_fn_for(am, None, vectors, read_captions=True,
                                                                                ocr_tools=ocr_tools))
            return flat_figures(evaluated["result"].metrics)

        step = {"n": 0}

        def log_epoch(rec: dict) -> None:
            if rec["phase"] == "eval":  # dev figures at epoch 0 (the initialised model) and after each phase
                info(f"dev figures after {rec['after']}: mAP@5 {rec.get('mAP@5', float('nan')):.3f}")
                mlflow.log_metrics({f"dev_{k}": v for k, v in tracking.mlflow_metrics(
                    {k: v for k, v in rec.items() if k not in ("phase", "after", "seconds")}).items()}, step=step["n"])
                return
            step["n"] += 1
            info(f"{rec['phase']} epoch {rec['epoch']}: loss {rec['loss']:.4f} acc {rec['train_accuracy']:.3f}")
            mlflow.log_metrics({"loss": rec["loss"], "train_accuracy": rec["train_accuracy"], "lr": rec["lr"]},
                               step=step["n"])

        result = train(config, items, tmp / "checkpoint", log=log_epoch, evaluate=judge if manifest is not None else None)
        figures: dict = {}
        if manifest is not None:
            if "result" not in evaluated:  # a config with no phase to run: judge the model as it is
                judge(result.model)
            figures = flat_figures(evaluated["result"].metrics)
            mlflow.log_metrics(tracking.mlflow_metrics(figures))
            labels = dict(zip(manifest.files, manifest.labels))
            (tmp / "retrieval_examples.png").write_bytes(retrieval_grid_png(evaluated["result"].rankings, labels,
                                                                           manifest.root))
        else:
            warn("no evaluation manifest: the model is registered without figures and cannot be promoted")
        (tmp / "loss_curve.png").write_bytes(loss_curve_png(result.history))
        (tmp / "class_map.json").write_text(json.dumps(result.class_map, indent=2, ensure_ascii=False))
        (tmp / "train_config.json").write_text(json.dumps(config.to_json(), indent=2))
        # the checkpoint as a loadable MLflow model (signature, one training picture as input example)
        model_info = log_recognizer_model(result.model, tmp / "checkpoint", Path(items[0].path).read_bytes())
        for name in ("loss_curve.png", "retrieval_examples.png", "class_map.json", "train_config.json"):
            if (tmp / name).exists():
                mlflow.log_artifact(str(tmp / name), artifact_path="reports")
        version = tracking.ModelRegistry(home).register(REGISTERED_MODEL, run.info.run_id, "model",
                                                        source=model_info.model_uri, tags={
            "variant": variant, **tags, "eval_manifest": str(manifest_path or ""),
            **{tracking.mlflow_metric_name(k): f"{v:.4f}" for k, v in figures.items()
               if k in ("mAP@5", "landmark_accuracy")},
        })
        run_id = run.info.run_id
    if not any(staging_root.iterdir()):
        staging_root.rmdir()
    return TrainingRun(variant, version, run_id, exp, figures, result.class_map, result.history, result.seconds,
                       len(items), result.epochs[-1]["loss"] if result.epochs else float("nan"))
