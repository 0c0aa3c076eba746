"""Search settings: the non-landmark threshold and its fallback, voting, and the limits a query
picture or name must respect."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vpr_assets.core.images.decode import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    from vpr_assets.core.text.ocr import OcrTools

NON_LANDMARK = "non-landmark"
# Fallback when no evaluation recorded a threshold for the index's model version (pretrained
# lite0_gem512, measured): on the demo collection every held-out landmark card's best neighbour in
# the index scores >= 0.82 and the dev-set evaluation chose 0.76; on the real photos
# (realsample/MANIFEST.tsv, `vpr evaluate`) the data-chosen threshold is 0.61. Real photos score
# lower than printed cards, so the fallback is the lower, safe value: it must not reject true
# landmarks. Greeting and portrait cards cannot be told apart by score with the pretrained
# embedder (they match each other at 0.90-0.99); the vote does that: their neighbours belong to
# no landmark cluster.
FALLBACK_THRESHOLD = 0.60


@dataclass
class SearchConfig:
    threshold: float | None = None  # set to override the evaluation's / fallback threshold
    fallback_threshold: float = FALLBACK_THRESHOLD
    vote_neighbours: int = 5  # how many top neighbours vote for the landmark
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_k: int = 200
    fuzzy_cutoff: float = 80.0  # rapidfuzz score (0-100) a name must reach to match
    max_landmarks: int = 10  # landmarks returned by a name search
    read_captions: bool = True  # text-fused models: read the query's printed caption and fuse it, as the index was built
    ocr_tools: OcrTools | None = None  # OcrTools for that caption (None: Tesseract on PATH, user cache)
    embedding_runtime: str = "onnx"  # as `image_embeddings` embeds on a CPU (embedder.embed_paths `runtime`)
    embedder_cache: Path | None = None  # folder of the embedder's ONNX exports (None: this user's cache)
    # refused from the header before any decoding, outside the search lock: memory a decode costs
    # (pixels x bytes per pixel of the file's mode + the RGB copy; see decode.ImageHeader)
    max_decode_bytes: int = 256 * 1024 * 1024
    max_file_bytes: int = 50 * 1024 * 1024  # a query picture read from a path (`vpr search`)
    # formats a query may be, sniffed from the content (never the declared type)
    query_formats: tuple = ("JPEG", "MPO", "PNG", "WEBP", "TIFF", "BMP", "DIB", "GIF", "AVIF")
    decode_slots: int = 2  # concurrent query decodes (each up to max_decode_bytes)
    min_name_chars: int = 3  # a shorter name matches everything fuzzily
