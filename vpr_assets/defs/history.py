"""History tables as assets of the graph: append-only catalog tables that a materialisation of their
writer extends by a row. They are declared as specs (Dagster does not run them); the writer reports
their materialisation, so lineage shows which run wrote which rows."""

import dagster as dg

from vpr_assets.defs.metadata import table_metadata

vpr_models_history = dg.AssetSpec(
    "vpr_models",
    deps=["vpr_model"],
    group_name="training",
    kinds={"duckdb"},
    metadata=table_metadata("vpr_models"),
    description="One row per registered model version (variant, MLflow run, dev figures, input data versions, "
    "Dagster run id); appended by every `vpr_model` materialisation.",
)

faiss_indexes_history = dg.AssetSpec(
    "faiss_indexes",
    deps=["faiss_index"],
    group_name="vision",
    kinds={"duckdb"},
    metadata=table_metadata("faiss_indexes"),
    description="One row per index build (folder, factory, model version, embedding data version, mode, "
    "seconds, Dagster run id); appended by `faiss_index` when the index changes. Search reads the newest.",
)
