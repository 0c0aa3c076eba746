"""Recognition models: the landmark embedder, optionally fused with the card's text embedding.

Variants (as the product trains them, each registered in MLflow under its own name):

- `image`            images only, trained on the external labelled set
- `image_clusters`   images only, trained on the postcard landmark clusters (+ external set)
- `image_ocr`        + OCR text, entering through MiniLM embeddings fused with the image embedding
- `image_ocr_desc`   + OCR and the human descriptions

Fusion is late and gated: fused = normalise(img + g * W(text)), g = sigmoid(a) learnt; a card
without text (or a query picture) gets the image embedding alone, so one index serves both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vpr_assets.core.training.variants import variant
from vpr_assets.core.vision.models import LandmarkEmbedder, load_checkpoint, save_checkpoint, state_fingerprint
from vpr_assets.storage.atomic import atomic_path

TEXT_DIM = 384
FUSION_FILE = "fusion.pt"
RECOGNIZER_FILE = "recognizer.json"


@dataclass
class RecognizerConfig:
    variant: str
    text_dim: int = TEXT_DIM

    @property
    def uses_text(self) -> bool:
        return variant(self.variant).uses_text


class TextFusion(nn.Module):
    def __init__(self, text_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Linear(text_dim, out_dim)
        self.gate = nn.Parameter(torch.tensor(-1.0))  # starts mostly image (sigmoid(-1) ~ 0.27)

    def forward(self, img: torch.Tensor, text: torch.Tensor, has_text: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.gate) * has_text.view(-1, 1).to(img.dtype)
        return img + g * F.normalize(self.proj(text.to(img.dtype)), dim=-1)


class Recognizer(nn.Module):
    """Image batch (+ optional text vectors) -> L2-normalised 512-d embedding."""

    def __init__(self, embedder: LandmarkEmbedder, config: RecognizerConfig):
        super().__init__()
        variant(config.variant)  # ValueError for an unknown variant
        self.embedder = embedder.set_output("neck")
        self.config = config
        self.fusion = TextFusion(config.text_dim, embedder.config.embedding_dim) if config.uses_text else None

    @property
    def embedding_dim(self) -> int:
        return self.embedder.config.embedding_dim

    def features(self, x: torch.Tensor, text: torch.Tensor | None = None, has_text: torch.Tensor | None = None):
        """Unnormalised features for the ArcFace head."""
        return self.features_from_pooled(self.embedder.pooled(x), text, has_text)

    def features_from_pooled(self, pooled: torch.Tensor, text: torch.Tensor | None = None,
                             has_text: torch.Tensor | None = None) -> torch.Tensor:
        """`features` from GeM-pooled backbone features (training caches those of a frozen backbone)."""
        img = F.normalize(self.embedder.neck_from_pooled(pooled).float(), dim=-1)
        if self.fusion is not None and text is not None and has_text is not None:
            img = self.fusion(img, text, has_text)
        return img

    def forward(self, x, text=None, has_text=None) -> torch.Tensor:
        return F.normalize(self.features(x, text, has_text), dim=-1)

    def fuse(self, image_vectors: torch.Tensor, text: torch.Tensor, has_text: torch.Tensor) -> torch.Tensor:
        """Fuse precomputed (normalised) image embeddings with text vectors, e.g. at index time."""
        if self.fusion is None:
            return F.normalize(image_vectors, dim=-1)
        return F.normalize(self.fusion(image_vectors.float(), text, has_text), dim=-1)

    def fuse_by_id(self, image_vectors: np.ndarray, ids: Sequence[str], text_vectors: Mapping[str, np.ndarray]) -> np.ndarray:
        """Fuse image embeddings with the text vector of each id (scan_id), where one exists."""
        dim = len(next(iter(text_vectors.values()))) if text_vectors else self.config.text_dim
        text = np.stack([np.asarray(text_vectors.get(i, np.zeros(dim)), np.float32) for i in ids]) if len(ids) \
            else np.zeros((0, dim), np.float32)
        has = np.array([i in text_vectors for i in ids], np.float32)
        with torch.no_grad():
            out = self.fuse(torch.from_numpy(np.asarray(image_vectors, np.float32)), torch.from_numpy(text),
                            torch.from_numpy(has))
        return out.numpy().astype(np.float32)

    def version(self) -> str:
        return f"{self.config.variant}:{state_fingerprint(self)}"


def save_recognizer(model: Recognizer, directory: Path, extra: dict | None = None) -> Path:
    directory = Path(directory)
    save_checkpoint(model.embedder, directory, extra=extra)
    if model.fusion is not None:
        with atomic_path(directory / FUSION_FILE) as tmp:
            torch.save(model.fusion.state_dict(), tmp)
    with atomic_path(directory / RECOGNIZER_FILE) as tmp:
        tmp.write_text(json.dumps({**asdict(model.config), "model_version": model.version()}, indent=2))
    return directory


def load_recognizer(directory: Path, map_location="cpu") -> Recognizer:
    directory = Path(directory)
    meta = json.loads((directory / RECOGNIZER_FILE).read_text())
    embedder = load_checkpoint(directory, map_location=map_location)
    model = Recognizer(embedder, RecognizerConfig(meta["variant"], meta.get("text_dim", TEXT_DIM)))
    if model.fusion is not None:
        model.fusion.load_state_dict(torch.load(directory / FUSION_FILE, map_location=map_location, weights_only=True))
    return model.eval()
