"""Storage: per-partition Parquet files exposed as views in one DuckDB catalog."""

from vpr_assets.storage.catalog import Catalog

__all__ = ["Catalog"]
