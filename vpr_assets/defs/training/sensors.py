"""Observe the MLflow `champion` alias, so a change made outside a run (the MLflow UI, `vpr`) reaches
the graph: `image_embeddings` follows `champion_alias`, and the index and clusters follow it."""

import dagster as dg

from vpr_assets.defs.automation import default_sensor_status
from vpr_assets.defs.resources import ModelRegistryResource
from vpr_assets.defs.training.assets import DATA_VERSION_TAG


@dg.sensor(
    name="champion_alias_sensor",
    description="Reports an observation of `champion_alias` (no run) when the registry's champion differs from "
    "the last one observed; the automation sensor then re-embeds every batch.",
    default_status=default_sensor_status(),
    minimum_interval_seconds=60,
)
def champion_alias_sensor(context: dg.SensorEvaluationContext, model_registry: ModelRegistryResource):
    label = model_registry.label()
    record = context.instance.get_latest_data_version_record(dg.AssetKey("champion_alias"), is_source=True)
    observed = record.asset_observation.tags.get(DATA_VERSION_TAG) if record and record.asset_observation else None
    if label == (observed or context.cursor):
        return dg.SkipReason(f"champion still {label}")
    if observed is None and label.startswith("pretrained:"):
        # never observed and still the pretrained embedder: what image_embeddings already uses, so
        # reporting it would only make every batch look stale
        return dg.SkipReason(f"no champion yet: {label}")
    return dg.SensorResult(
        asset_events=[dg.AssetObservation(asset_key="champion_alias", tags={DATA_VERSION_TAG: label})],
        cursor=label,
    )
