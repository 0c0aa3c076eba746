"""vpr_assets: scanned postcards -> a searchable geographic collection (a Dagster code location).

The package root imports nothing: the framework-free core (`vpr_assets.core`) must load without
Dagster, and the code location is `vpr_assets.definitions` (workspace.yaml, pyproject.toml).
"""
