"""Text domain: ocr_text -> landmark_lexicon -> geo_words -> text_embeddings and their checks
(thin wrappers over vpr_assets.core.text)."""

from vpr_assets.defs.text.assets import geo_words, landmark_lexicon, ocr_text, text_embeddings
from vpr_assets.defs.text.checks import text_checks

assets = [ocr_text, landmark_lexicon, geo_words, text_embeddings]
asset_checks = text_checks
sensors: list = []  # the lexicon is an asset: automation re-runs geo_words when it changes
