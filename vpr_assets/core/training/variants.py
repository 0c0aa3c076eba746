"""The model variants the product trains, and the one definition of the text each variant sees
(torch-free, so the code location loads fast).

`variant_text` is what training, the `text_embeddings` asset (one row per card and text source
set), the index, evaluation and queries all use: a variant trained on OCR text alone is indexed,
evaluated and queried with OCR text alone.
"""

from __future__ import annotations

from dataclasses import dataclass


def text_source_key(sources) -> str:
    """A stable name for a set of text sources: "ocr", "ocr+description", or "" (no text)."""
    return "+".join(s for s in ("ocr", "description") if s in tuple(sources))


@dataclass(frozen=True)
class Variant:
    """A model variant: what it trains on and the text it sees (the same text in training, the
    index, evaluation and queries)."""

    name: str
    clusters: bool  # trains on the collection's landmark clusters (else only on the external corpus)
    text_sources: tuple[str, ...] = ()  # "ocr", "description"

    @property
    def uses_text(self) -> bool:
        return bool(self.text_sources)

    @property
    def text_source(self) -> str:
        """`text_source_key` of the variant: the `source` of its rows in `text_embeddings`."""
        return text_source_key(self.text_sources)

    def text(self, ocr_text: str | None, description: str | None) -> str | None:
        """The text this variant sees for a card (None: image-only, or a card without such text)."""
        return text_for_sources(self.text_sources, ocr_text, description) if self.uses_text else None


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("image", clusters=False),
    Variant("image_clusters", clusters=True),
    Variant("image_ocr", clusters=True, text_sources=("ocr",)),
    Variant("image_ocr_desc", clusters=True, text_sources=("ocr", "description")),
)}


def variant(name: str) -> Variant:
    """The registered variant `name` (ValueError naming the known ones otherwise)."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; one of {sorted(VARIANTS)}") from None


# every text source set some variant fuses: `text_embeddings` stores a vector for each
FUSED_TEXT_SOURCES = tuple(sorted({v.text_source for v in VARIANTS.values() if v.uses_text}))
LEGACY_TEXT_SOURCE = "ocr+description"  # rows written before the `source` column held this text


def text_for_sources(sources, ocr_text: str | None, description: str | None) -> str | None:
    """The card's text from the given sources: description first, then the OCR'd caption; None if empty."""
    sources = tuple(sources)
    parts = [p.strip() for p, s in ((description, "description"), (ocr_text, "ocr"))
             if s in sources and isinstance(p, str) and p.strip()]
    return "\n".join(parts) if parts else None


def variant_text(name: str, ocr_text: str | None, description: str | None) -> str | None:
    """`variant(name).text(...)`."""
    return variant(name).text(ocr_text, description)


def variant_text_sources(name: str) -> str:
    """`variant(name).text_source` ("" for image-only variants)."""
    return variant(name).text_source
