"""Helpers that turn core results into Dagster metadata and data versions."""

from __future__ import annotations

from typing import Iterable

import dagster as dg
import pandas as pd
import pyarrow as pa

from vpr_assets.core.versions import content_version


def data_version_of(values: Iterable[str]) -> dg.DataVersion:
    """A content-derived data version: same rows in, same version out (order-independent)."""
    return dg.DataVersion(content_version(values))


def column_schema(schema: pa.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(f.name, str(f.type)) for f in schema])


def table_metadata(table: str) -> dict:
    """Definition metadata of an asset stored as catalog table `table`: its columns (from
    storage.schemas, the schema every write is held to) and the DuckDB view that reads it."""
    from vpr_assets.storage.schemas import SCHEMAS

    return {"dagster/column_schema": column_schema(SCHEMAS[table]), "dagster/table_name": f"catalog.main.{table}"}


def record_history_table(context, table: str, cat, rows_added: int) -> None:
    """Report a materialisation of the history table `table` (an AssetSpec of the graph) from the
    run that appended to it, so the UI shows when and by which run each row was written."""
    n = cat.query(f"SELECT count(*) AS n FROM {table}").n.iloc[0] if cat.has(table) else 0
    context.log_event(dg.AssetMaterialization(asset_key=table, metadata={
        "dagster/row_count": int(n), "rows_added": rows_added}))


def counts_markdown(series: pd.Series, title: str) -> dg.MetadataValue:
    if series.empty:
        return dg.MetadataValue.md(f"_no {title}_")
    counts = series.value_counts()
    lines = [f"| {title} | count |", "|---|---|"] + [f"| {k} | {v} |" for k, v in counts.items()]
    return dg.MetadataValue.md("\n".join(lines))


def catalog_views_metadata(context, cat) -> dict:
    """Whether the catalog's views are in step with the Parquet files after this step: a held
    catalog.duckdb is reported here and as a warning in the run's event log, never a silent
    success (the next sync defines the pending views)."""
    pending = cat.views_pending()
    if pending:
        context.log.warning(f"catalog views NOT synced (catalog.duckdb held by another program): {pending}; "
                            "the Parquet files are written; the next run or sync defines the views")
    return {"catalog_views_synced": not pending, "catalog_views_pending": dg.MetadataValue.json(pending)}


def written_partition_metadata(context, cat, table: pa.Table, path) -> dict:
    """What a per-batch table asset records of the partition it has just written: its rows, columns
    and file, and whether the catalog's views are in step with it (`catalog_views_metadata`)."""
    return {**catalog_views_metadata(context, cat), "dagster/row_count": table.num_rows,
            "dagster/column_schema": column_schema(table.schema), "parquet": dg.MetadataValue.path(str(path))}


def md_cell(text: str | None, limit: int = 80) -> str:
    """One markdown table cell: single line, pipes escaped, shortened."""
    s = " / ".join((text or "").split("\n"))
    s = s.replace("|", "\\|")
    return s if len(s) <= limit else s[: limit - 1] + "…"
