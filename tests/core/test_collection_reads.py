"""What landmark_clusters clusters while only some batches are curated."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from vpr_assets.core.collection_reads import clustering_inputs, set_aside_scan_ids
from vpr_assets.storage import Catalog
from vpr_assets.storage.schemas import IMAGE_EMBEDDINGS_SCHEMA, SCAN_QUALITY_SCHEMA


def _embeddings(batch: str, ids: list[str], version: str = "m/1") -> pa.Table:
    rng = np.random.default_rng(len(batch))
    return pa.Table.from_pylist([{"scan_id": s, "batch": batch, "model_version": version, "dim": 8,
                                  "embedding": rng.standard_normal(8).astype(np.float32).tolist()} for s in ids],
                                schema=IMAGE_EMBEDDINGS_SCHEMA)


def test_cards_of_batches_not_curated_yet_are_clustered_and_set_aside_cards_are_not(tmp_path):
    cat = Catalog(tmp_path)
    cat.write_partition("image_embeddings", "b1", _embeddings("b1", ["good1", "bad1", "dup1"]))
    cat.write_partition("image_embeddings", "b2", _embeddings("b2", ["new1", "new2"]))
    assert clustering_inputs(cat, "m/1")[0] == ["bad1", "dup1", "good1", "new1", "new2"]  # nothing curated: all
    cat.write_partition("scan_quality", "b1", pa.Table.from_pylist([
        {"scan_id": "good1", "batch": "b1", "label": "good"},
        {"scan_id": "bad1", "batch": "b1", "label": "bad"},
        {"scan_id": "dup1", "batch": "b1", "label": "good", "duplicate_of": "good1"}], schema=SCAN_QUALITY_SCHEMA))
    assert set_aside_scan_ids(cat) == {"bad1", "dup1"}
    ids, vecs, geo, stale = clustering_inputs(cat, "m/1")
    assert ids == ["good1", "new1", "new2"] and vecs.shape == (3, 8) and geo == {} and stale == 0
