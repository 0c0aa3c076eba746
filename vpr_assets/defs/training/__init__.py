"""Training domain: recognition models per variant, the read-only promotion check, the champion
asset that moves the alias, and the observed alias that embeddings follow."""

from vpr_assets.defs.history import vpr_models_history
from vpr_assets.defs.training.assets import candidate_beats_champion, champion_alias, champion_model, vpr_model
from vpr_assets.defs.training.sensors import champion_alias_sensor

assets = [vpr_model, vpr_models_history, champion_model, champion_alias]
asset_checks = [candidate_beats_champion]
sensors = [champion_alias_sensor]
