"""Earlier batches' geo_words are re-made when the collection's landmark lexicon changes."""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd

from vpr_assets.defs.text.sensors import stale_lexicon_sensor
from vpr_assets.storage import Catalog


def _geo(batch: str, version: str) -> pd.DataFrame:
    return pd.DataFrame({"scan_id": [f"{batch}-1"], "batch": [batch], "lexicon_version": [version]})


def test_sensor_requests_only_batches_made_with_an_older_lexicon(vpr_home, dagster_home):
    with dg.DagsterInstance.get() as instance:
        ctx = dg.build_sensor_context(instance=instance)
        assert isinstance(stale_lexicon_sensor(ctx), dg.SkipReason)  # no lexicon yet
        (vpr_home / "models").mkdir()
        (vpr_home / "models" / "landmark_lexicon.json").write_text(json.dumps({"fitted_on": {"version": "v2"}}))
        cat = Catalog(vpr_home)
        cat.write_partition("geo_words", "b1", _geo("b1", "v1"))
        cat.write_partition("geo_words", "b2", _geo("b2", "v2"))
        cat.write_partition("geo_words", "b3", _geo("b3", "v1"))
        result = stale_lexicon_sensor(dg.build_sensor_context(instance=instance))
        assert [r.partition_key for r in result.run_requests] == ["b1", "b3"]
        assert {r.run_key for r in result.run_requests} == {"lexicon-v2-b1", "lexicon-v2-b3"}
        cat.write_partition("geo_words", "b1", _geo("b1", "v2"))
        cat.write_partition("geo_words", "b3", _geo("b3", "v2"))
        assert isinstance(stale_lexicon_sensor(dg.build_sensor_context(instance=instance)), dg.SkipReason)
