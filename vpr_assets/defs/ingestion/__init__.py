"""Ingestion: inbox batches -> raw_scans and scan_rejects."""

from vpr_assets.defs.ingestion.assets import ingest_scans
from vpr_assets.defs.ingestion.checks import ingestion_checks
from vpr_assets.defs.ingestion.sensors import new_scan_batches_sensor

assets = [ingest_scans]
asset_checks = ingestion_checks
sensors = [new_scan_batches_sensor]
