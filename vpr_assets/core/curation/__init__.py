"""Curation core (framework-free): quality, near duplicates, postcard traps, landmark score,
contact sheets. Dagster wiring lives in vpr_assets/defs/."""
