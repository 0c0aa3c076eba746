"""Training domain: recognition models per variant, promotion check, and the champion sensor."""

from vpr_assets.defs.training.assets import candidate_beats_champion, vpr_model
from vpr_assets.defs.training.sensors import champion_model_sensor

assets = [vpr_model]
asset_checks = [candidate_beats_champion]
sensors = [champion_model_sensor]
