"""One preprocessing spec per model (core/vision/preprocess.py)."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from vpr_assets.core.vision.models import MODEL_CONFIGS, build_embedder
from vpr_assets.core.vision.preprocess import Preprocess

CARD = sorted((Path(__file__).resolve().parents[2] / "data" / "geo_testset" / "images" / "europosts").glob("*.jpg"))[0]


def test_every_registered_model_normalises_as_timm_says_its_weights_expect():
    for name in MODEL_CONFIGS:
        model = build_embedder(name, pretrained=False)
        spec = model.preprocess()
        timm_spec = Preprocess.of(model.backbone)
        assert (spec.mean, spec.std) == (timm_spec.mean, timm_spec.std), name


def test_normalise_takes_either_layout_and_maps_0_255_to_the_model_range():
    spec = build_embedder("lite0_gem512", pretrained=False).preprocess(64)
    hwc = torch.from_numpy(spec.pixels(Image.open(CARD).convert("RGB")))[None]
    a = spec.normalise(hwc, channels_last_input=True)
    b = spec.normalise(hwc.permute(0, 3, 1, 2))
    assert a.shape == (1, 3, 64, 64) and torch.equal(a, b)
    ends = spec.normalise(torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 2).expand(1, 3, 1, 2))
    assert torch.allclose(ends[0, :, 0, 0], torch.tensor(-1.0)) and torch.allclose(ends[0, :, 0, 1], torch.tensor(1.0))
