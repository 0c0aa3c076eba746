"""Training items, a dataset over image files, and class-balanced sampling."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from vpr_assets.core.images.decode import load_rgb


@dataclass
class TrainItem:
    path: str
    label: str
    text_vector: np.ndarray | None = None  # MiniLM embedding of the card's text, when it has any


def class_map_of(items: Sequence[TrainItem], min_class_size: int = 2) -> dict[str, int]:
    """Labels with at least `min_class_size` items, mapped to contiguous class indices."""
    counts: dict[str, int] = {}
    for it in items:
        counts[it.label] = counts.get(it.label, 0) + 1
    return {lab: i for i, lab in enumerate(sorted(l for l, c in counts.items() if c >= min_class_size))}


class CardDataset(Dataset):
    """(image uint8 CHW, class index, text vector, has-text flag) per item."""

    def __init__(self, items: Sequence[TrainItem], class_map: dict[str, int], transform, text_dim: int = 384):
        self.items = [it for it in items if it.label in class_map]
        self.class_map, self.transform, self.text_dim = class_map, transform, text_dim
        self._cache: dict[str, object] = {}

    def __len__(self) -> int:
        return len(self.items)

    def labels(self) -> list[int]:
        return [self.class_map[it.label] for it in self.items]

    def __getitem__(self, i: int):
        it = self.items[i]
        img = self._cache.get(it.path)
        if img is None:
            img = load_rgb(it.path)
            img.thumbnail((768, 768))  # decode once, augment many times
            self._cache[it.path] = img
        x = self.transform(img)
        if it.text_vector is not None:
            t, has = torch.as_tensor(it.text_vector, dtype=torch.float32), torch.tensor(1.0)
        else:
            t, has = torch.zeros(self.text_dim), torch.tensor(0.0)
        return x, self.class_map[it.label], t, has


class ClassBalancedSampler(Sampler[int]):
    """Each epoch draws the same number of items from every class (with replacement if small)."""

    def __init__(self, labels: Sequence[int], per_class: int | None = None, seed: int = 0):
        self.by_class: dict[int, list[int]] = {}
        for i, lab in enumerate(labels):
            self.by_class.setdefault(int(lab), []).append(i)
        sizes = [len(v) for v in self.by_class.values()]
        self.per_class = per_class or max(1, int(np.median(sizes))) if sizes else 0
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_class * len(self.by_class)

    def __iter__(self):
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        order: list[int] = []
        for cls in sorted(self.by_class):
            idx = self.by_class[cls]
            order += rng.sample(idx, self.per_class) if len(idx) >= self.per_class else rng.choices(idx, k=self.per_class)
        rng.shuffle(order)
        return iter(order)
