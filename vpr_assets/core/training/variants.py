"""The model variants the product trains, and the one definition of the text each variant sees
(torch-free, so the code location loads fast).

`variant_text` is what training, the `text_embeddings` asset (one row per card and text source
set), the index, evaluation and queries all use: a variant trained on OCR text alone is indexed,
evaluated and queried with OCR text alone.
"""

from __future__ import annotations

VARIANTS = {
    "image": {"clusters": False, "text_sources": ()},
    "image_clusters": {"clusters": True, "text_sources": ()},
    "image_ocr": {"clusters": True, "text_sources": ("ocr",)},
    "image_ocr_desc": {"clusters": True, "text_sources": ("ocr", "description")},
}


def text_source_key(sources) -> str:
    """A stable name for a set of text sources: "ocr", "ocr+description", or "" (no text)."""
    return "+".join(s for s in ("ocr", "description") if s in tuple(sources))


# every text source set some variant fuses: `text_embeddings` stores a vector for each
FUSED_TEXT_SOURCES = tuple(sorted({text_source_key(v["text_sources"]) for v in VARIANTS.values() if v["text_sources"]}))
LEGACY_TEXT_SOURCE = "ocr+description"  # rows written before the `source` column held this text


def text_for_sources(sources, ocr_text: str | None, description: str | None) -> str | None:
    """The card's text from the given sources: description first, then the OCR'd caption; None if empty."""
    sources = tuple(sources)
    parts = [p.strip() for p, s in ((description, "description"), (ocr_text, "ocr"))
             if s in sources and isinstance(p, str) and p.strip()]
    return "\n".join(parts) if parts else None


def variant_text(variant: str, ocr_text: str | None, description: str | None) -> str | None:
    """The text `variant` sees for a card (None for image-only variants or cards without such text)."""
    return text_for_sources(VARIANTS[variant]["text_sources"], ocr_text, description)


def variant_text_sources(variant: str) -> str:
    """`text_source_key` of a variant ("" for image-only variants)."""
    return text_source_key(VARIANTS[variant]["text_sources"])
