"""Batched embedding inference: files -> DataLoader (decode + resize in workers) -> model -> vectors.

Why it is shaped like this:
- Decoding and resizing run in DataLoader worker processes, so the model never waits on PIL when
  there are cores to spare. Workers hand over uint8 HWC arrays (4x less inter-process traffic than
  float) and normalisation happens on the device.
- JPEG scans are decoded with PIL's `draft` (DCT-domain downscaling) to just above the target size:
  a 20 Mpx scan decodes several times faster and the model only sees `image_size` anyway.
- A bad file never stops a batch: its row is left at zero, `ok[i]` is False and `failures[i]`
  says why. Sixteen million scans will contain broken ones.
- CUDA + autocast (fp16) + channels_last when available; CPU otherwise with torch threads set to the
  CPUs this process may actually use (cgroup quota aware), not the host's core count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset

from vpr_assets.core.images.decode import DEFAULT_MAX_PIXELS, ImageRejected, _to_8bit_rgb, decode_image
from vpr_assets.core.onnx_sessions import RUNTIMES, available_cpus

from .models import LandmarkEmbedder
from .preprocess import DEFAULT_RESIZE, RESIZE_MODES, resize_pixels

# Measured on the 2-core CPU box (bench/bench_embeddings.py, tests/core/test_realsample_retrieval.py):
# 320 px costs about half of 448 px and retrieved as well on the 21-query dev set (448 was not
# better for lite0 or lite2), so CPU defaults to it; CUDA uses the model's 448.
CPU_IMAGE_SIZE = 320
# center_crop beat squash on the dev set on average (lite0 +0.04..+0.13 mAP@5, lite2 -0.03..+0.03).
MULTI_SCALES = (0.707, 1.0, 1.414)


@dataclass
class EmbeddingResult:
    """Vectors for every input, in input order; failed rows are all-zero and listed in `failures`."""

    vectors: np.ndarray  # (n, d) float32, L2-normalised rows (zero rows where failed)
    ok: np.ndarray  # (n,) bool
    failures: dict[int, str] = field(default_factory=dict)  # index -> reason

    def __len__(self) -> int:
        return len(self.vectors)


# --- machine settings --------------------------------------------------------------------------


def configure_torch_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op threads to the usable CPUs (or `num_threads`); returns the value set."""
    n = num_threads or available_cpus()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def default_num_workers(device: torch.device | str | None = None) -> int:
    """Decode workers for a DataLoader. On a CPU the workers compete with the model for the same
    cores, so at most 2, and none on 2 cores or fewer (150 real pictures through the ONNX Runtime
    forward: 3.6 s decoding in the main process, 4.3-5.1 s with 2 workers); on CUDA the feed is the
    limit (bench_gpu on an H200: 259 img/s with 2 workers, 868 with 14, against 5,900 for the bare
    model), so all cores but two."""
    cpus = available_cpus()
    if device is not None and torch.device(device).type == "cuda":
        return max(2, min(16, cpus - 2))
    return 0 if cpus <= 2 else 2


def default_image_size(model: LandmarkEmbedder, device: torch.device) -> int:
    return model.config.image_size if device.type == "cuda" else min(CPU_IMAGE_SIZE, model.config.image_size)


# --- decoding and resizing (run in workers) ----------------------------------------------------


def load_for_embedding(path: str | Path, min_side: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Upright RGB image through the project's one safe decoder, JPEGs decoded at reduced scale
    (never below `min_side` on either side). Raises `ImageRejected` (a missing file too: one bad item
    of a batch, never a dead batch)."""
    try:
        return decode_image(path, max_pixels, draft_side=min_side).image
    except FileNotFoundError:
        raise ImageRejected("missing_file", str(path)) from None


def resize_for_model(im: Image.Image, size: int, mode: str = DEFAULT_RESIZE) -> np.ndarray:
    """RGB image -> uint8 (size, size, 3) as the embedder sees it (`preprocess.resize_pixels`)."""
    return resize_pixels(im, size, mode)


class ImageFileDataset(Dataset):
    """Paths -> (uint8 HWC tensor, index, failure reason or "")."""

    def __init__(self, paths: Sequence[str | Path], size: int, resize: str = DEFAULT_RESIZE,
                 max_pixels: int = DEFAULT_MAX_PIXELS):
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {resize!r}")
        self.paths = [str(p) for p in paths]
        self.size, self.resize, self.max_pixels = size, resize, max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            im = load_for_embedding(self.paths[i], self.size, self.max_pixels)
            return torch.from_numpy(resize_for_model(im, self.size, self.resize)), i, ""
        except ImageRejected as exc:
            reason = str(exc)
        except Exception as exc:  # anything else is still one bad item, not a dead batch
            reason = f"error: {type(exc).__name__}: {exc}"
        return torch.zeros((self.size, self.size, 3), dtype=torch.uint8), i, reason or "failed"


def _worker_init(_worker_id: int) -> None:
    # Workers only decode and resize: one thread each, so they do not fight the model for cores.
    torch.set_num_threads(1)


# --- model side --------------------------------------------------------------------------------


def _normalise_batch(batch_uint8_hwc: torch.Tensor, model: LandmarkEmbedder, device: torch.device) -> torch.Tensor:
    x = model.preprocess().normalise(batch_uint8_hwc.to(device, non_blocking=True), channels_last_input=True)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _scale_sizes(size: int, scales: Sequence[float]) -> list[int]:
    return [max(32, int(round(size * s))) for s in scales]


@torch.inference_mode()
def _forward(model: LandmarkEmbedder, x: torch.Tensor, base_size: int, scales: Sequence[float], amp: bool) -> torch.Tensor:
    """One batch at one or several scales; multi-scale embeddings are summed then re-normalised."""
    device_type = x.device.type
    total = None
    for s in _scale_sizes(base_size, scales):
        xs = x if s == x.shape[-1] else F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        with torch.autocast(device_type=device_type, dtype=torch.float16, enabled=amp):
            e = model(xs).float()
        total = e if total is None else total + e
    return F.normalize(total, dim=-1)


def _onnx_forward(model: LandmarkEmbedder, device: torch.device, scales: Sequence[float], amp: bool, runtime: str,
                  onnx_cache: Path | None):
    """The ONNX Runtime forward (`onnx_embedder`) where it applies: runtime "onnx" on a CPU, one
    scale, no AMP; None: the torch forward."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown embedding runtime {runtime!r}; one of {RUNTIMES}")
    if runtime != "onnx" or device.type != "cpu" or amp or tuple(scales) != (1.0,):
        return None
    from vpr_assets.core.vision.onnx_embedder import onnx_embedder

    return onnx_embedder(model, onnx_cache)


def _embed_batch(model: LandmarkEmbedder, x: torch.Tensor, size: int, scales: Sequence[float], amp: bool,
                 onnx) -> np.ndarray:
    if onnx is not None:
        return F.normalize(torch.from_numpy(onnx(x.numpy())), dim=-1).numpy()
    return _forward(model, x, size, scales, amp).cpu().numpy()


def _prepare(model: LandmarkEmbedder, device: torch.device | str | None, amp: bool | None):
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cpu":
        configure_torch_threads()
    model = model.to(device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model, device, (device.type == "cuda") if amp is None else bool(amp and device.type == "cuda")


def embedding_load_size(model: LandmarkEmbedder, image_size: int | None = None, scales: Sequence[float] = (1.0,),
                        device: torch.device | str | None = None) -> int:
    """The side an image is decoded at (JPEG draft) and resized to before the forward pass: what
    `embed_paths` does to the collection's files, and search queries repeat so that a query file
    gets the same vector as the same file in the index."""
    device = torch.device(device) if device is not None else default_device()
    return max(_scale_sizes(image_size or default_image_size(model, device), scales))


def embed_paths(
    model: LandmarkEmbedder,
    paths: Sequence[str | Path],
    image_size: int | None = None,
    batch_size: int = 16,
    num_workers: int | None = None,
    scales: Sequence[float] = (1.0,),
    resize: str = DEFAULT_RESIZE,
    device: torch.device | str | None = None,
    amp: bool | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = False,
    runtime: str = "torch",
    onnx_cache: Path | None = None,
) -> EmbeddingResult:
    """Embed image files; one bad file marks one failed row and the rest goes on.

    `image_size` defaults to the model's size on CUDA (448) and `CPU_IMAGE_SIZE` on CPU. With
    several `scales`, images are loaded once at the largest scale and resized down on the device.
    `runtime="onnx"`: on a CPU, the forward pass through ONNX Runtime (`onnx_embedder`, exported
    into `onnx_cache` once per weights): the same vectors to 1e-6, about 3x cheaper here.
    """
    model, device, amp = _prepare(model, device, amp)
    onnx = _onnx_forward(model, device, scales, amp, runtime, onnx_cache)
    size = image_size or default_image_size(model, device)
    load_size = embedding_load_size(model, size, scales, device)
    workers = default_num_workers(device) if num_workers is None else num_workers
    dataset = ImageFileDataset(paths, load_size, resize, max_pixels)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=_worker_init if workers > 0 else None,
        prefetch_factor=2 if workers > 0 else None,
    )
    n = len(dataset)
    vectors = np.zeros((n, model.embedding_dim), dtype=np.float32)
    ok = np.zeros(n, dtype=bool)
    failures: dict[int, str] = {}
    iterator: Iterable = loader
    if progress:
        from tqdm import tqdm

        iterator = tqdm(loader, total=len(loader), desc="embed", unit="batch")
    for batch, idx, reasons in iterator:
        idx = idx.numpy()
        good = np.array([r == "" for r in reasons], dtype=bool)
        for i, r in zip(idx[~good], np.array(reasons, dtype=object)[~good]):
            failures[int(i)] = str(r)
        if not good.any():
            continue
        x = _normalise_batch(batch[torch.from_numpy(good)], model, device)
        emb = _embed_batch(model, x, size, scales, amp, onnx)
        vectors[idx[good]] = emb
        ok[idx[good]] = True
    return EmbeddingResult(vectors, ok, failures)


def embed_images(
    model: LandmarkEmbedder,
    images: Sequence[Image.Image],
    image_size: int | None = None,
    batch_size: int = 16,
    scales: Sequence[float] = (1.0,),
    resize: str = DEFAULT_RESIZE,
    device: torch.device | str | None = None,
    amp: bool | None = None,
    runtime: str = "torch",
    onnx_cache: Path | None = None,
) -> np.ndarray:
    """Embed in-memory PIL images (search queries); returns (n, d) float32, L2-normalised.
    `runtime`, `onnx_cache`: as `embed_paths` (a query should take the runtime its index took)."""
    model, device, amp = _prepare(model, device, amp)
    onnx = _onnx_forward(model, device, scales, amp, runtime, onnx_cache)
    size = image_size or default_image_size(model, device)
    load_size = max(_scale_sizes(size, scales))
    out = np.zeros((len(images), model.embedding_dim), dtype=np.float32)
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        arrs = [resize_for_model(_to_8bit_rgb(ImageOps.exif_transpose(im)), load_size, resize) for im in chunk]
        x = _normalise_batch(torch.from_numpy(np.stack(arrs)), model, device)
        out[start : start + len(chunk)] = _embed_batch(model, x, size, scales, amp, onnx)
    return out
