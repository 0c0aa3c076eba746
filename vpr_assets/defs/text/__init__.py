"""Text domain: ocr_text -> geo_words -> text_embeddings and their checks (thin wrappers over
vpr_assets.core.text)."""

from vpr_assets.defs.text.assets import geo_words, ocr_text, text_embeddings
from vpr_assets.defs.text.checks import text_checks
from vpr_assets.defs.text.sensors import stale_lexicon_sensor

assets = [ocr_text, geo_words, text_embeddings]
asset_checks = text_checks
sensors = [stale_lexicon_sensor]
