"""The pixels a model sees: one preprocessing spec per model (resize policy, size, normalisation).

Why one spec: the embedder, the trainer's batches and the curation backbone (whose features the
card-back model reads) each resized and normalised on their own, and a difference between the
training and the inference pixels is a silent loss. (The trainer's clean view keeps torchvision's
resize: see `training.augment.eval_transform` for the measurement.) The normalisation comes from the model itself through timm's
data config (`timm.data.resolve_model_data_config`: mean = std = 0.5 for the TF EfficientNet-Lite
weights); the size and resize policy are the project's (a postcard is judged whole or centre-cropped
at 320 px on a CPU, 448 on a GPU).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

RESIZE_MODES = ("squash", "center_crop")
DEFAULT_RESIZE = "center_crop"


@dataclass(frozen=True)
class Preprocess:
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str = DEFAULT_RESIZE  # squash: the whole card, aspect ratio not kept; center_crop: short side, cut
    # Pillow's two-step downscale (a cheap reduce(), then bilinear): the embedder's; None = one bilinear
    # step, what the curation backbone's card-back weights were fitted on
    reducing_gap: float | None = 3.0

    def __post_init__(self):
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {self.resize!r}")

    @classmethod
    def of(cls, model: torch.nn.Module, size: int | None = None, resize: str = DEFAULT_RESIZE) -> "Preprocess":
        """The spec of a timm model (its mean and std; `size` defaults to its input size)."""
        from timm.data import resolve_model_data_config

        cfg = resolve_model_data_config(model)
        return cls(int(size or cfg["input_size"][-1]), tuple(cfg["mean"]), tuple(cfg["std"]), resize)

    def resized(self, im: Image.Image) -> Image.Image:
        """The picture at the model's size and resize policy, still a PIL image (what curation's
        threads keep for a whole batch: small, and `pixels` of it resizes nothing again)."""
        return resize_image(im, self.size, self.resize, self.reducing_gap)

    def pixels(self, im: Image.Image) -> np.ndarray:
        """RGB image -> uint8 (size, size, 3), a writable copy (for torch.from_numpy)."""
        return resize_pixels(im, self.size, self.resize, self.reducing_gap)

    def tensor(self, im: Image.Image) -> torch.Tensor:
        """RGB image -> uint8 (3, size, size), as torchvision transforms hand it on."""
        return torch.from_numpy(self.pixels(im)).permute(2, 0, 1).contiguous()

    def normalise(self, x_uint8: torch.Tensor, channels_last_input: bool = False) -> torch.Tensor:
        """uint8 (B, 3, H, W), or (B, H, W, 3) with `channels_last_input`, on any device -> the
        float tensor the model takes."""
        x = x_uint8.permute(0, 3, 1, 2) if channels_last_input else x_uint8
        x = x.float().div_(255.0)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x - mean) / std


def resize_pixels(im: Image.Image, size: int, mode: str = DEFAULT_RESIZE, reducing_gap: float | None = 3.0) -> np.ndarray:
    """RGB image -> uint8 (size, size, 3). `squash` keeps the whole card (aspect ratio not kept);
    `center_crop` keeps the aspect ratio and cuts the long side."""
    return np.array(resize_image(im, size, mode, reducing_gap).convert("RGB"), dtype=np.uint8)


def resize_image(im: Image.Image, size: int, mode: str = DEFAULT_RESIZE, reducing_gap: float | None = 3.0) -> Image.Image:
    """`resize_pixels` as a PIL image (an image already at the size comes back as a copy)."""
    if mode == "squash":
        out = im.resize((size, size), Image.BILINEAR, reducing_gap=reducing_gap)
    elif mode == "center_crop":
        w, h = im.size
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        out = im.resize((nw, nh), Image.BILINEAR, reducing_gap=reducing_gap)
        left, top = (nw - size) // 2, (nh - size) // 2
        out = out.crop((left, top, left + size, top + size))
    else:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    return out
