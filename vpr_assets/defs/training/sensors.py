"""When the champion model changes, re-embed every batch; the index and clusters follow eagerly."""

import dagster as dg

from vpr_assets.defs.automation import default_sensor_status

from vpr_assets.core.active_model import champion_version
from vpr_assets.defs.partitions import SCAN_BATCHES
from vpr_assets.paths import vpr_home


@dg.sensor(
    name="champion_model_sensor",
    description="Watches the MLflow `champion` alias of vpr_landmark_recognizer; a new champion makes every "
    "image_embeddings partition stale, so it requests their re-materialisation (faiss_index and "
    "landmark_clusters follow through their eager automation conditions).",
    asset_selection=dg.AssetSelection.assets("image_embeddings"),
    default_status=default_sensor_status(),
    minimum_interval_seconds=60,
)
def champion_model_sensor(context: dg.SensorEvaluationContext):
    version = champion_version(vpr_home())
    if version is None:
        return dg.SkipReason("no champion registered yet: embeddings use the pretrained model")
    if context.cursor == version:
        return dg.SkipReason(f"champion still version {version}")
    batches = context.instance.get_dynamic_partitions(SCAN_BATCHES)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=b, run_key=f"champion-{version}-{b}",
                                    tags={"vpr/champion": version, "vpr/heavy": "true"}) for b in batches],
        cursor=version,
    )
