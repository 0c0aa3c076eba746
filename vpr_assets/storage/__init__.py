"""Storage: per-partition Parquet files exposed as views in one DuckDB catalog.

`Catalog` is imported lazily so that `vpr_assets.storage.atomic` (used by the core to write files
safely) does not pull DuckDB into processes that only need the core.
"""

__all__ = ["Catalog"]


def __getattr__(name: str):
    if name == "Catalog":
        from vpr_assets.storage.catalog import Catalog

        return Catalog
    raise AttributeError(name)
