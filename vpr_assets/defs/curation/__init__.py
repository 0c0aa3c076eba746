"""Curation domain: scan_quality and derived_scans, the landmark classifier, and their checks (thin wrappers over
vpr_assets.core.curation)."""

from vpr_assets.defs.curation.assets import curate_scans
from vpr_assets.defs.curation.checks import curation_checks
from vpr_assets.defs.curation.classifier import landmark_classifier
from vpr_assets.defs.curation.sensors import curator_actions_sensor, landmark_decisions_sensor

assets = [curate_scans, landmark_classifier]
asset_checks = curation_checks
sensors = [curator_actions_sensor, landmark_decisions_sensor]
