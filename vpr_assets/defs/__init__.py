"""Dagster wiring, one sub-package per domain; each is a thin layer over vpr_assets.core."""
