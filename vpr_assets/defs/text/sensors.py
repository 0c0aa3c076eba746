"""When the collection's landmark lexicon changes (a new batch brings new descriptions), the
geo_words of earlier batches were made with the old one: re-materialise those partitions."""

import json

import dagster as dg

from vpr_assets.defs.automation import default_sensor_status
from vpr_assets.defs.text.assets import LEXICON_FILE
from vpr_assets.paths import vpr_home
from vpr_assets.storage import Catalog


def stale_lexicon_batches(home) -> tuple[str | None, list[str]]:
    """(current lexicon version, batches whose geo_words used another version)."""
    path = home / "models" / LEXICON_FILE
    if not path.exists():
        return None, []
    try:
        version = json.loads(path.read_text(encoding="utf-8"))["fitted_on"]["version"]
    except (ValueError, KeyError, TypeError):
        return None, []
    cat = Catalog(home)
    if not cat.has("geo_words"):
        return version, []
    df = cat.query("SELECT DISTINCT batch FROM geo_words WHERE lexicon_version IS DISTINCT FROM ? ORDER BY batch",
                   [version])
    return version, list(df.batch)


@dg.sensor(
    name="stale_lexicon_sensor",
    description="Re-materialises geo_words for batches extracted with an older landmark lexicon.",
    asset_selection=dg.AssetSelection.assets("geo_words"),
    default_status=default_sensor_status(),
    minimum_interval_seconds=120,
)
def stale_lexicon_sensor(context: dg.SensorEvaluationContext):
    version, batches = stale_lexicon_batches(vpr_home())
    if not batches:
        return dg.SkipReason("every geo_words partition uses the current lexicon" if version else "no lexicon yet")
    return dg.SensorResult(run_requests=[dg.RunRequest(partition_key=b, run_key=f"lexicon-{version}-{b}")
                                         for b in batches])
