"""The text a query card brings: its printed caption read the way `ocr_text` reads collection
cards (the same `CaptionOCR` and default settings), turned into the text the model's variant sees
(`training.variants.text_for_sources`) and embedded with MiniLM, so a query is fused exactly as
the index was built. A query picture without a caption stays an image-only vector.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np


@lru_cache(maxsize=2)
def _caption_ocr(tools=None):
    from vpr_assets.core.text.ocr import CaptionOCR

    return CaptionOCR(tools=tools)


_FILE_CAPTIONS: dict[tuple, str] = {}  # (path, size, mtime) -> caption: evaluations during training re-read none


def read_captions(images: Sequence, tools=None) -> list[str]:
    """Caption text of each image (a path or a PIL image); "" where there is none or it fails.
    `tools`: the OCR's OcrTools (None: Tesseract on PATH, exports in this user's cache)."""
    from vpr_assets.core.images.decode import load_rgb

    out = []
    for im in images:
        key = None
        if isinstance(im, (str, Path)):
            st = Path(im).stat()
            key = (str(Path(im).resolve()), st.st_size, st.st_mtime_ns)
            if key in _FILE_CAPTIONS:
                out.append(_FILE_CAPTIONS[key])
                continue
        try:
            text = _caption_ocr(tools).read(load_rgb(im) if key else im.convert("RGB")).text or ""
        except Exception:  # an unreadable query is an image-only query, not a failed search
            text = ""
        if key:
            _FILE_CAPTIONS[key] = text
        out.append(text)
    return out


def query_text_vectors(sources: str, captions: Sequence[str | None],
                       descriptions: Sequence[str | None] | None = None) -> list[np.ndarray | None]:
    """MiniLM vector of each query's text from `sources` ("ocr", "ocr+description"), None where empty."""
    from vpr_assets.core.text.text_embeddings import embed_texts
    from vpr_assets.core.training.variants import text_for_sources

    descriptions = descriptions or [None] * len(captions)
    texts = [text_for_sources(sources.split("+"), c, d) for c, d in zip(captions, descriptions)]
    vecs, idx = embed_texts(texts)
    out: list[np.ndarray | None] = [None] * len(texts)
    for j, i in enumerate(idx):
        out[i] = vecs[j]
    return out
