"""The `vpr_assets` code location: every domain's assets, checks, sensors and resources."""

from __future__ import annotations

import dagster as dg

from vpr_assets.defs import curation, ingestion, text, training, vision
from vpr_assets.defs.automation import default_sensor_status
from vpr_assets.defs.executor import step_executor
from vpr_assets.defs.jobs import jobs
from vpr_assets.defs.recovery import sensors as recovery_sensors
from vpr_assets.defs.resources import CatalogResource

DOMAINS = [ingestion, curation, text, vision, training]

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
    resources={"catalog": CatalogResource()},
    executor=step_executor,
)
