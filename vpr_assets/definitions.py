"""The `vpr_assets` code location: every domain's assets, checks, sensors and resources."""

from __future__ import annotations

import os

import dagster as dg

from vpr_assets.defs import curation, ingestion, text, training, vision
from vpr_assets.defs.automation import default_sensor_status
from vpr_assets.defs.executor import step_executor
from vpr_assets.defs.jobs import jobs
from vpr_assets.defs.recovery import sensors as recovery_sensors
from vpr_assets.defs.resources import (
    CaptionOcrResource,
    CatalogResource,
    ModelRegistryResource,
    TextEncoderResource,
    UiLinksResource,
)

DOMAINS = [ingestion, curation, text, vision, training]

catalog = CatalogResource()

defs = dg.Definitions(
    assets=[a for d in DOMAINS for a in d.assets],
    asset_checks=[c for d in DOMAINS for c in d.asset_checks],
    sensors=[s for d in DOMAINS for s in d.sensors]
    + recovery_sensors
    + [
        dg.AutomationConditionSensorDefinition(
            "downstream_automation",
            target=dg.AssetSelection.all(),
            default_status=default_sensor_status(),
            description="Evaluates the assets' automation conditions (new batches, new champion model).",
        )
    ],
    jobs=jobs,
    resources={
        "catalog": catalog,
        "model_registry": ModelRegistryResource(catalog=catalog),
        "caption_ocr": CaptionOcrResource(),
        "text_encoder": TextEncoderResource(),
        # the only place the environment is read for resources: where the UIs are served
        "ui_links": UiLinksResource(
            mlflow_ui_url=os.environ.get("VPR_MLFLOW_UI_URL", "http://127.0.0.1:5000"),
            dagster_ui_url=os.environ.get("VPR_DAGSTER_UI_URL", "http://127.0.0.1:3000"),
        ),
    },
    executor=step_executor,
)
