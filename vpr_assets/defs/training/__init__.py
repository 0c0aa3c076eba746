"""Training domain: Dagster assets, checks and sensors (thin wrappers over vpr_assets.core)."""

assets: list = []
asset_checks: list = []
sensors: list = []
