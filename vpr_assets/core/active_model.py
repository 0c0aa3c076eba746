"""Which model embeds images right now: the registered champion, else the pretrained embedder.

Every embedding row, index and evaluation records `version` so lineage can be followed from a
search result back to the model (and from there, through MLflow tags, to its Dagster run).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

REGISTERED_MODEL = "vpr_landmark_recognizer"
PRETRAINED_MODEL = "lite0_gem512"


@dataclass(frozen=True)
class ModelRef:
    """A model label, parsed once: "pretrained:<config>" (an ImageNet embedder) or
    "<registered model>/<version>" (a trained version in the MLflow registry). The label is what
    embedding rows, index builds and evaluations record."""

    kind: str  # "pretrained" | "registry"
    name: str  # the embedder config (pretrained) or the registered model
    version: str | None = None  # registry version

    @classmethod
    def parse(cls, label: str) -> "ModelRef":
        label = (label or "").strip()
        if label.startswith("pretrained:"):
            return cls("pretrained", label.split(":", 1)[1])
        name, _, version = label.rpartition("/")
        if version.isdigit():
            return cls("registry", name or REGISTERED_MODEL, version)
        raise ValueError(f"not a model label: {label!r} (expected 'pretrained:NAME' or '{REGISTERED_MODEL}/N')")

    @property
    def is_pretrained(self) -> bool:
        return self.kind == "pretrained"

    @property
    def label(self) -> str:
        return f"pretrained:{self.name}" if self.is_pretrained else f"{self.name}/{self.version}"

    def __str__(self) -> str:
        return self.label


@dataclass
class ActiveModel:
    version: str  # "pretrained:lite0_gem512" or "vpr_landmark_recognizer/3"
    embedder: object  # LandmarkEmbedder
    recognizer: object | None  # Recognizer when a trained model is active (text fusion lives there)
    source: str  # "pretrained" or "registry"

    @property
    def uses_text(self) -> bool:
        return bool(self.recognizer is not None and self.recognizer.fusion is not None)

    @property
    def text_sources(self) -> str:
        """The text this model fuses (`training.variants.text_source_key`), "" for image-only models."""
        from vpr_assets.core.training.variants import variant_text_sources

        return variant_text_sources(self.recognizer.config.variant) if self.uses_text else ""


@lru_cache(maxsize=4)
def _pretrained(name: str):
    from vpr_assets.core.vision.models import build_embedder

    return build_embedder(name, pretrained=True)


@lru_cache(maxsize=4)
def _registered(home: str, version: str):
    from vpr_assets.core.tracking import ModelRegistry
    from vpr_assets.core.training.mlflow_model import checkpoint_dir
    from vpr_assets.core.training.recognizer import load_recognizer

    folder = ModelRegistry(Path(home)).download(REGISTERED_MODEL, version, Path(home) / "models" / "registry")
    return load_recognizer(checkpoint_dir(folder))


def champion_version(home: Path) -> str | None:
    """The champion's registry version, or None (no registry or no champion yet)."""
    if not (Path(home) / "mlflow.db").exists():
        return None
    from vpr_assets.core.tracking import CHAMPION, ModelRegistry

    mv = ModelRegistry(Path(home)).version_by_alias(REGISTERED_MODEL, CHAMPION)
    return str(mv.version) if mv is not None else None


def model_version_label(home: Path, pretrained: str = PRETRAINED_MODEL) -> str:
    v = champion_version(home)
    return f"{REGISTERED_MODEL}/{v}" if v else f"pretrained:{pretrained}"


def active_model(home: Path, version: str | None = None, pretrained: str = PRETRAINED_MODEL) -> ActiveModel:
    """The model to embed with: an explicit label ("pretrained:NAME", "<model>/N" or a bare registry
    version "N"), else the champion, else pretrained."""
    if version and not version.isdigit():
        ref = ModelRef.parse(version)
        if ref.is_pretrained:
            return ActiveModel(ref.label, _pretrained(ref.name), None, "pretrained")
        version = ref.version
    v = version or champion_version(home)
    if v:
        rec = _registered(str(Path(home).resolve()), v)
        return ActiveModel(f"{REGISTERED_MODEL}/{v}", rec.embedder, rec, "registry")
    return ActiveModel(f"pretrained:{pretrained}", _pretrained(pretrained), None, "pretrained")
