"""vpr_assets: scanned postcards -> a searchable geographic collection (a Dagster code location)."""

from vpr_assets.definitions import defs

__all__ = ["defs"]
