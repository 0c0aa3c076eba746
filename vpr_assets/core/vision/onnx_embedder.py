"""The image networks' forward pass through ONNX Runtime on a CPU: the same outputs, 3x cheaper.

Why: timm's EfficientNet-Lite runs in torch at about 53 ms per 320 px image on the 2-core CPU here
(channels last and TorchScript freezing change nothing); ONNX Runtime runs the same float weights at
about 17 ms, and the vectors agree to 1e-6. `image_embeddings`, search queries and the curation
backbone of `scan_quality` use it on a CPU; training and the torch path stay as they were (a model
whose weights change every step would be exported every step).

A module is exported once per weights into a cache folder (`$VPR_HOME/cache/embedder` through the
pipeline's edges, else this user's cache), the file named by a hash of the weights, what the caller
says the module is (config, outputs), the export recipe and the versions: new weights write a new
file, a missing or unreadable file is exported again, and files are written atomically (two
processes exporting at once both end up with a whole file).
"""

from __future__ import annotations

import hashlib
import threading
import warnings
import weakref
from pathlib import Path

import numpy as np

from vpr_assets.core import user_cache_dir
from vpr_assets.core.onnx_sessions import available_cpus, cached_session

EXPORT_VERSION = "embedder-onnx-1"  # bump when the export below changes what the file holds
OPSET = 17

_SESSIONS: dict[tuple[str, int], object] = {}
_LOCK = threading.Lock()


# module -> (fingerprint, key); weak, so a key dies with its module and never passes to a later
# module that reuses its address (and could reuse its tensors' addresses and version counters too)
_KEYS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _fingerprint(module, what: str) -> tuple:
    """Cheap identity of a module's current weights: each tensor's storage and in-place version
    counter (bumped by every in-place change), so a key is hashed once per weights, not per query."""
    return (what,) + tuple((name, t.data_ptr(), t._version, tuple(t.shape)) for name, t in module.state_dict().items())


def weights_key(module, what: str) -> str:
    """What the exported file depends on: every tensor of the state dict (name, dtype, shape,
    bytes), `what` the module is (its config and outputs), the recipe, torch and onnxruntime versions.
    Hashing 20 MB of weights takes ~50 ms, so the key is kept per module while its weights are unchanged."""
    fp = _fingerprint(module, what)
    hit = _KEYS.get(module)
    if hit is not None and hit[0] == fp:
        return hit[1]
    key = _weights_key(module, what)
    _KEYS[module] = (fp, key)
    return key


def _weights_key(module, what: str) -> str:
    import onnxruntime
    import torch

    h = hashlib.sha256(f"{EXPORT_VERSION}|opset={OPSET}|torch={torch.__version__}|ort={onnxruntime.__version__}|"
                       f"{what}".encode())
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"\0{name}|{t.dtype}|{tuple(t.shape)}\0".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()[:16]


def _export(module, target: Path, size: int, outputs: tuple[str, ...]) -> None:
    import copy

    import torch

    from vpr_assets.storage.atomic import atomic_path

    m = copy.deepcopy(module).cpu().float().eval()  # the caller's module keeps its device and layout
    axes = {"x": {0: "b", 2: "h", 3: "w"}, **{name: {0: "b"} for name in outputs}}
    with atomic_path(target) as tmp:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(m, (torch.zeros(1, 3, size, size),), str(tmp), input_names=["x"], output_names=list(outputs),
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)


class OnnxModule:
    """`module(x)` for a normalised float image batch (B x 3 x H x W, numpy): its outputs, in order."""

    def __init__(self, session, path: Path):
        self.session = session
        self.path = path

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})


class OnnxEmbedder(OnnxModule):
    """A `LandmarkEmbedder`'s twin: `embedder(x)` -> L2-normalised (B x D)."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.run(x)[0]


def onnx_embedder(model, directory: Path | None = None, threads: int | None = None) -> OnnxEmbedder:
    """The ONNX Runtime twin of `model` (a `LandmarkEmbedder`), exported into `directory` on first
    use; sessions are kept per process and file."""
    path, session = exported(model, f"{model.config!r}|output={model.output}", int(model.config.image_size), ("y",),
                             "embedder", directory, threads)
    return OnnxEmbedder(session, path)


def exported(module, what: str, size: int, outputs: tuple[str, ...], prefix: str, directory: Path | None = None,
             threads: int | None = None):
    """(file, session) of `module` exported with input "x" (B x 3 x size x size at export; batch and
    sides dynamic) and `outputs`, into `directory` as `<prefix>-<weights_key>.onnx`."""
    threads = threads or available_cpus()
    target = Path(directory or user_cache_dir() / "embedder") / f"{prefix}-{weights_key(module, what)}.onnx"
    with _LOCK:
        key = (str(target), threads)
        if key not in _SESSIONS or not target.exists():
            _SESSIONS[key] = cached_session(target, threads, lambda path: _export(module, path, size, outputs))
        return target, _SESSIONS[key]
