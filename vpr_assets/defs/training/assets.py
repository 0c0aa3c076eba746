"""`vpr_model`: one ArcFace-trained recognition model per variant (a static partition each),
tracked as an MLflow run and registered as a version of `vpr_landmark_recognizer`.

Lineage runs both ways: the MLflow version carries the Dagster run id, asset key, variant, code
version and the data versions of its inputs as tags; the Dagster materialisation carries the
registry version as its DataVersion and the MLflow run URL/ids as metadata.
"""

import warnings
from pathlib import Path
from typing import Optional

import dagster as dg

from vpr_assets.core.active_model import REGISTERED_MODEL
from vpr_assets.core.training.variants import VARIANTS, variant_text_sources
from vpr_assets.defs.metadata import record_history_table
from vpr_assets.defs.resources import CaptionOcrResource, CatalogResource, ModelRegistryResource, UiLinksResource
from vpr_assets.storage.schemas import VPR_MODELS_SCHEMA

DATA_VERSION_TAG = "dagster/data_version"  # the tag Dagster reads an event's data version from
VPR_MODEL_CODE_VERSION = "vpr-model-v2"  # v2: PCA-started neck, imprinted head, neck phase on cached views
model_variants = dg.StaticPartitionsDefinition(list(VARIANTS))
UPSTREAM = ["landmark_clusters", "ocr_text", "text_embeddings", "raw_scans"]


class TrainModelConfig(dg.Config):
    """Training settings (see `vpr_assets.core.training.trainer.TrainConfig` for what each does);
    the defaults are the recipe measured in docs/benchmarks.md."""

    model_name: str = "lite0_gem512"
    image_size: Optional[int] = None  # None = the size the embedder judges at (320 CPU, 448 GPU)
    neck_init: str = "pca"
    whiten: float = 0.0
    head_init: str = "imprint"
    views: int = 8
    neck_epochs: int = 20
    neck_lr: float = 1e-3
    epochs: int = 0  # end-to-end fine-tuning epochs after the neck phase (GPU-sized work)
    batch_size: int = 16
    lr: float = 1e-4
    optimizer: str = "adamw"
    arc_s: float = 30.0
    arc_m: float = 0.2
    freeze_stages: int = 5
    min_class_size: int = 3
    seed: int = 0
    external_manifest: str = ""  # an extra labelled set (TSV file,label[,split]) trained alongside the clusters
    external_images_dir: str = ""
    external_split: str = "train"  # rows of the external manifest's `split` column trained on (all without one)
    eval_manifest: str = ""  # "" = $VPR_HOME/eval/manifest.tsv, else the demo collection's

    def train_config(self, variant: str):
        from dataclasses import fields

        from vpr_assets.core.training.trainer import TrainConfig

        names = {f.name for f in fields(TrainConfig)}
        return TrainConfig(variant=variant, **{k: v for k, v in self.model_dump().items() if k in names})


def input_data_versions(context: dg.AssetExecutionContext) -> dict[str, str]:
    """Latest data version of each upstream asset (partitioned ones: a digest over partitions)."""
    import hashlib

    out = {}
    for key in UPSTREAM:
        ak = dg.AssetKey(key)
        try:
            ev = context.instance.get_latest_materialization_event(ak)
        except Exception:
            ev = None
        if ev is None or ev.asset_materialization is None:
            continue
        partitions = sorted(context.instance.get_materialized_partitions(ak) or [])
        tags = ev.asset_materialization.tags or {}
        if partitions:
            digest = hashlib.sha256("\0".join(partitions).encode()).hexdigest()[:12]
            out[key] = f"{len(partitions)} partitions ({digest}), latest {tags.get('dagster/data_version', '?')}"
        else:
            out[key] = tags.get("dagster/data_version", "?")
    return out


@dg.asset(
    partitions_def=model_variants,
    # every partition of the per-batch inputs feeds every model variant
    deps=[dg.AssetDep(k, partition_mapping=dg.AllPartitionMapping()) for k in UPSTREAM],
    group_name="training",
    code_version=VPR_MODEL_CODE_VERSION,
    kinds={"pytorch", "mlflow"},
    pool="torch",  # one torch step at a time across all runs (an op tag would never reach the run queue)
    description="ArcFace recognition model (EfficientNet-Lite + GeM + 512-d neck, optionally fused with MiniLM "
    "text) trained on the landmark clusters; one MLflow run and one registered version per materialisation.",
)
def vpr_model(context: dg.AssetExecutionContext, config: TrainModelConfig, catalog: CatalogResource,
              ui_links: UiLinksResource, caption_ocr: CaptionOcrResource):
    from vpr_assets.core.collection_reads import text_vectors_by_scan
    from vpr_assets.core.evaluation_records import default_manifest
    from vpr_assets.core.training.items import training_items
    from vpr_assets.core.training.run import train_and_register

    variant = context.partition_key
    home, cat, links = catalog.root, catalog.catalog, ui_links.links
    items, source = training_items(cat, home, variant, config.external_manifest, config.external_images_dir,
                                   config.external_split)
    context.log.info(f"variant {variant}: {len(items)} training items {source}")
    data_versions = input_data_versions(context)
    tags = {"dagster_run_id": context.run.run_id, "dagster_run_url": links.dagster_run(context.run.run_id),
            "dagster_asset_key": "vpr_model", "dagster_partition": variant, "code_version": VPR_MODEL_CODE_VERSION,
            **{f"input_data_version/{k}": v for k, v in data_versions.items()}}
    manifest_path = Path(config.eval_manifest) if config.eval_manifest else default_manifest(home)
    run = train_and_register(
        home, variant, config.train_config(variant), items, source,
        " + ".join(x for x in (f"{home}/catalog: landmark_clusters", config.external_manifest) if x),
        manifest_path, tags, f"{variant} {context.run.run_id[:8]}",
        text_vectors=lambda: text_vectors_by_scan(cat, variant_text_sources(variant)),
        info=context.log.info, warn=context.log.warning, ocr_tools=caption_ocr.tools)
    cat.append_rows("vpr_models", [run.history_row(data_versions, manifest_path, context.run.run_id)], VPR_MODELS_SCHEMA)
    record_history_table(context, "vpr_models", cat, 1)
    return dg.MaterializeResult(data_version=dg.DataVersion(f"{REGISTERED_MODEL}/{run.version}"),
                                metadata=training_run_metadata(run, home, links, data_versions))


def training_run_metadata(run, home: Path, links, data_versions: dict[str, str]) -> dict:
    """A TrainingRun's figures, with links to its MLflow run and registered version and its loss curve."""
    from vpr_assets.core import tracking

    return {**run.summary(),
            "mlflow_run": dg.MetadataValue.url(links.mlflow_run(run.experiment_id, run.run_id)),
            "mlflow_model_version": dg.MetadataValue.url(links.mlflow_model_version(REGISTERED_MODEL, run.version)),
            "mlflow_store": dg.MetadataValue.text(f"mlflow ui --backend-store-uri {tracking.tracking_uri(home)}"),
            "input_data_versions": dg.MetadataValue.json(data_versions),
            "loss_curve": dg.MetadataValue.md(_png_md(run.history))}


def _png_md(history) -> str:
    import base64

    from vpr_assets.core.training.reports import loss_curve_png

    return f"![loss](data:image/png;base64,{base64.b64encode(loss_curve_png(history)).decode()})"


def _candidate(cat, *, run_id: str | None = None, variant: str | None = None):
    """The newest `vpr_models` row registered by `run_id` (or for `variant`), as a promotion Candidate."""
    from vpr_assets.core.training.promotion import Candidate

    rows = cat.read("vpr_models") if cat.has("vpr_models") else None
    if rows is None or rows.empty:
        return None
    if run_id is not None:
        rows = rows[rows.dagster_run_id == run_id]
    if variant is not None:
        rows = rows[rows.variant == variant]
    if rows.empty:
        return None
    row = rows.sort_values("created_at").iloc[-1]
    return Candidate(str(row.version), {"mAP_at_5": row.mAP_at_5, "landmark_accuracy": row.landmark_accuracy},
                     str(row.eval_manifest or ""))


def _decision_metadata(decision) -> dict:
    return {"candidate_version": decision.candidate_version, "champion_version": str(decision.champion_version),
            "candidate": dg.MetadataValue.json(decision.candidate_metrics),
            "champion": dg.MetadataValue.json(decision.champion_metrics or {}),
            "decision": decision.reason}


@dg.asset_check(asset=vpr_model, blocking=True,
                description="Read-only: passes when the version this run registered beats the current champion "
                "(or, before any, the pretrained embedder) on mAP@5 and landmark accuracy. Blocking: a losing "
                "candidate stops `champion_model` in the same run, so the alias never moves to it.")
def candidate_beats_champion(context: dg.AssetCheckExecutionContext, catalog: CatalogResource) -> dg.AssetCheckResult:
    from vpr_assets.core.training.promotion import judge

    cand = _candidate(catalog.catalog, run_id=context.op_execution_context.run.run_id)
    if cand is None:
        return dg.AssetCheckResult(passed=False, metadata={"decision": "no model registered by this run"})
    decision = judge(catalog.root, cand)
    return dg.AssetCheckResult(passed=decision.promoted, metadata=_decision_metadata(decision))


@dg.asset(
    partitions_def=model_variants,
    deps=[vpr_model],
    group_name="training",
    kinds={"mlflow"},
    automation_condition=dg.AutomationCondition.eager(),
    description="The registry's `champion` alias after judging this variant's newest candidate: moved to it "
    "when it beats the champion (or, before any, the pretrained embedder), left alone otherwise. The decision "
    "is recorded as tags on the version. Re-running it decides the same way.",
)
def champion_model(context: dg.AssetExecutionContext, catalog: CatalogResource,
                   model_registry: ModelRegistryResource) -> dg.MaterializeResult:
    from vpr_assets.core.training.promotion import judge, promote

    home = catalog.root
    cand = _candidate(catalog.catalog, variant=context.partition_key)
    decision = None
    if cand is not None:
        decision = judge(home, cand)
        if decision.changes_champion or not decision.promoted:  # an unchanged champion keeps its promotion tags
            promote(home, decision)
    label = model_registry.label()
    # tell the graph at once that the alias changed (champion_alias_sensor would see it on its next tick)
    context.log_event(dg.AssetObservation(asset_key="champion_alias", tags={DATA_VERSION_TAG: label}))
    return dg.MaterializeResult(
        data_version=dg.DataVersion(label),
        metadata={"champion": label, **(_decision_metadata(decision) if decision else {"decision": "no candidate"}),
                  "promoted": bool(decision and decision.changes_champion)},
    )


with warnings.catch_warnings():  # observable_source_asset is marked beta; it is the documented way
    warnings.simplefilter("ignore", dg.BetaWarning)

    @dg.observable_source_asset(
        name="champion_alias",
        group_name="training",
        required_resource_keys={"model_registry"},
        description="The MLflow registry's `champion` alias of vpr_landmark_recognizer (else the pretrained embedder). "
        "Its data version is the model label; `image_embeddings` follows it, so a new champion (promoted here or "
        "moved by hand in MLflow) re-embeds every batch and the index and clusters follow.",
    )
    def champion_alias(context) -> dg.DataVersion:
        return dg.DataVersion(context.resources.model_registry.label())
