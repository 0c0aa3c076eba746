"""One schema per catalog table, held on every write: a write that does not fit is refused with the
columns named, and an empty batch stores the same column types as a full one."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from vpr_assets.storage import Catalog
from vpr_assets.storage.catalog import vectors_to_arrow
from vpr_assets.storage.schemas import SCHEMAS, SchemaMismatch, conform


def _embeddings(n: int, dim: int = 4) -> pa.Table:
    vecs = np.ones((n, dim), np.float32)
    return pa.table({"scan_id": [f"s{i}" for i in range(n)], "batch": ["b"] * n, "model_version": ["m"] * n,
                     "dim": pa.array([dim] * n, pa.int32()),
                     "embedding": vectors_to_arrow(vecs) if n else pa.array([], pa.list_(pa.float32()))})


def test_conform_orders_casts_and_names_what_does_not_fit():
    t = _embeddings(2).select(["embedding", "dim", "model_version", "batch", "scan_id"])
    out = conform("image_embeddings", t)
    assert out.schema == SCHEMAS["image_embeddings"]
    with pytest.raises(SchemaMismatch, match=r"missing columns \['dim'\], unexpected \['dims'\]"):
        conform("image_embeddings", t.rename_columns(["embedding", "dims", "model_version", "batch", "scan_id"]))
    bad = t.set_column(1, "dim", pa.array(["four", "five"]))
    with pytest.raises(SchemaMismatch, match="image_embeddings"):
        conform("image_embeddings", bad)
    free = pa.table({"x": [1]})
    assert conform("not_a_catalog_table", free) is free


def test_an_empty_batch_stores_the_same_column_types_as_a_full_one(tmp_path):
    cat = Catalog(tmp_path)
    cat.write_partition("image_embeddings", "full", _embeddings(3))
    cat.write_partition("image_embeddings", "empty", _embeddings(0))
    assert cat.arrow("image_embeddings", "full").schema == cat.arrow("image_embeddings", "empty").schema
    types = cat.query("SELECT column_name, column_type FROM (DESCRIBE image_embeddings)").set_index("column_name")
    assert types.column_type["embedding"] == "FLOAT[]" and types.column_type["dim"] == "INTEGER"
    assert len(cat.read("image_embeddings")) == 3
    with pytest.raises(SchemaMismatch):
        cat.write_partition("image_embeddings", "wrong", pa.table({"scan_id": ["x"]}))
    assert not cat.has("image_embeddings", "wrong")


def test_history_rows_follow_the_table_schema(tmp_path):
    cat = Catalog(tmp_path)
    row = {f.name: None for f in SCHEMAS["evaluations"]} | {"evaluation_id": "e1", "metric": "mAP@5", "value": 0.5}
    cat.append_rows("evaluations", [row])
    cat.append_rows("evaluations", [row | {"evaluation_id": "e2"}])
    assert list(cat.read("evaluations").evaluation_id) == ["e1", "e2"]
    import pyarrow.parquet as pq

    assert pq.read_schema(cat.partition_path("evaluations")).remove_metadata() == SCHEMAS["evaluations"]


def test_every_table_is_an_asset_of_the_graph_with_its_columns():
    import dagster as dg

    from vpr_assets.core.text.text_embeddings import EMBED_DIM
    from vpr_assets.definitions import defs
    from vpr_assets.storage.schemas import TEXT_EMBED_DIM

    assert TEXT_EMBED_DIM == EMBED_DIM
    graph = defs.resolve_asset_graph()
    for table, schema in SCHEMAS.items():
        node = graph.get(dg.AssetKey(table))  # raises if the table is not in the graph
        declared = node.metadata.get("dagster/column_schema")
        if declared is not None:
            columns = getattr(declared, "schema", declared).columns  # TableSchema or its MetadataValue
            assert [c.name for c in columns] == schema.names, table


def test_the_writer_lock_times_out_with_a_message_instead_of_hanging(tmp_path):
    a, b = Catalog(tmp_path), Catalog(tmp_path)
    with a.writer_lock():
        with pytest.raises(TimeoutError, match="catalog writer lock .* not free after"):
            with b.writer_lock(timeout_s=0.2):
                pass
    with b.writer_lock(timeout_s=0.2):  # free again
        pass
