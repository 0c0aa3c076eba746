"""Image quality of a scan: measured features, then a `good`/`bad` label with every reason.

Old postcards are sepia, monochrome, printed in halftone dots and framed by a white margin: none of
these is a defect, so the rules only look at what makes a scan useless for recognition (blur,
exposure, no content, too few pixels, absurd shape, a frame eating most of the picture).
Everything is measured on a copy downscaled to `ANALYSIS_MAX_SIDE` so a 20 Mpx scan costs the same
as a thumbnail; resolution comes from the original size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

ANALYSIS_MAX_SIDE = 512

REASONS = (
    "blurry",
    "too_dark",
    "too_bright",
    "low_contrast",
    "blank",
    "too_small",
    "extreme_aspect",
    "large_border",
)


@dataclass(frozen=True)
class QualityThresholds:
    """Limits of the `bad` rules; defaults tuned on real photos and postcards (see tests)."""

    min_sharpness: float = 150.0  # variance of Laplacian at 512 px long side (photos: 3000+, r=6 blur: ~40)
    max_dark_mean: float = 35.0  # mean luminance (0-255) below which a scan is too dark
    max_dark_clipped: float = 0.60  # ... or this share of pixels <= 10
    min_bright_mean: float = 240.0
    max_bright_clipped: float = 0.70  # share of pixels >= 250
    min_contrast_std: float = 10.0  # std of luminance inside the content area
    min_contrast_range: float = 40.0  # p99 - p1 of luminance inside the content area
    blank_std: float = 6.0  # content area with a std below this ...
    blank_edge_density: float = 0.004  # ... or (almost) no edges is blank
    min_side_px: int = 200
    min_megapixels: float = 0.04
    max_aspect: float = 3.2  # long side / short side (folding panoramas stay under this)
    max_border_share: float = 0.55  # share of the area that is a uniform frame


@dataclass
class QualityResult:
    label: str  # "good" | "bad"
    reasons: list[str]
    features: dict[str, float] = field(default_factory=dict)


def downscale(image: Image.Image, max_side: int = ANALYSIS_MAX_SIDE) -> np.ndarray:
    """RGB uint8 array with the long side at most `max_side` (area interpolation: no aliasing)."""
    arr = np.asarray(image.convert("RGB"))
    h, w = arr.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1.0:
        arr = cv2.resize(arr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(arr)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _uniform_run(lines_mean: np.ndarray, lines_std: np.ndarray, tol: float, max_std: float) -> int:
    """How many leading lines (rows or columns) belong to a uniform frame of one tone.

    The tone is taken from lines 2-5: lines 0-1 may be a blurred transition from an outer frame.
    """
    if len(lines_mean) < 6:
        return 0
    ref = float(np.median(lines_mean[2:6]))
    ok = (np.abs(lines_mean - ref) <= tol) & (lines_std <= max_std)
    ok[:2] |= lines_std[:2] <= 2 * max_std
    if not ok[:6].all():
        return 0
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if bad.size else len(ok)


def border_box(gray: np.ndarray, tol: float = 14.0, max_std: float = 9.0, passes: int = 2) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the content inside uniform frames (scanner bed, card margin).

    A frame is a run of rows/columns of one tone with little variation; two passes peel a scanner
    bed and then the card's own white margin.
    """
    top, bottom, left, right = 0, gray.shape[0], 0, gray.shape[1]
    g = cv2.GaussianBlur(gray, (3, 3), 0).astype(np.float32)
    for _ in range(passes):
        sub = g[top:bottom, left:right]
        if sub.size == 0 or min(sub.shape) < 4:
            break
        # stats skip the 2 outer lines across: blurred transitions from the previous frame
        rm, rs = sub[:, 2:-2].mean(1), sub[:, 2:-2].std(1)
        cm, cs = sub[2:-2].mean(0), sub[2:-2].std(0)
        t = _uniform_run(rm, rs, tol, max_std)
        b = _uniform_run(rm[::-1], rs[::-1], tol, max_std)
        l_ = _uniform_run(cm, cs, tol, max_std)
        r = _uniform_run(cm[::-1], cs[::-1], tol, max_std)
        if t + b >= sub.shape[0] or l_ + r >= sub.shape[1]:
            return (top, top, left, left)  # all frame: nothing inside
        if t == b == l_ == r == 0:
            break
        top, bottom, left, right = top + t, bottom - b, left + l_, right - r
    return top, bottom, left, right


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness: ~0 for grey/sepia-free, >60 for vivid photos."""
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    rg = r - g
    yb = 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def measure_features(image: Image.Image, width: int | None = None, height: int | None = None) -> dict[str, float]:
    """Measured features of one scan. `width`/`height`: original size when `image` is a thumbnail."""
    width = int(width or image.width)
    height = int(height or image.height)
    rgb = downscale(image)
    gray = luminance(rgb)
    h, w = gray.shape
    top, bottom, left, right = border_box(gray)
    inner = gray[top:bottom, left:right]
    inner_rgb = rgb[top:bottom, left:right]
    border_share = 1.0 - (inner.size / gray.size)
    content = inner if inner.size >= 0.02 * gray.size and min(inner.shape) >= 8 else gray
    content_rgb = inner_rgb if content is inner else rgb
    # Laplacian on a normalised size: the same blur scores the same on a 600 px and a 6000 px scan
    lap = cv2.Laplacian(content, cv2.CV_64F, ksize=3)
    p1, p99 = np.percentile(content, [1, 99])
    edges = cv2.Canny(content, 50, 150)
    return {
        "width": float(width),
        "height": float(height),
        "megapixels": width * height / 1e6,
        "min_side": float(min(width, height)),
        "aspect_ratio": max(width, height) / max(1, min(width, height)),
        "sharpness": float(lap.var()),
        "mean_luminance": float(gray.mean()),
        "dark_clipped": float((gray <= 10).mean()),
        "bright_clipped": float((gray >= 250).mean()),
        "contrast_std": float(content.std()),
        "contrast_range": float(p99 - p1),
        "colourfulness": colourfulness(content_rgb),
        "edge_density": float((edges > 0).mean()),
        "border_share": float(border_share),
        "content_share": float(inner.size / gray.size),
        "analysis_width": float(w),
        "analysis_height": float(h),
    }


def classify(features: dict[str, float], thresholds: QualityThresholds | None = None) -> list[str]:
    """Every defect reason that applies (empty list = good)."""
    t = thresholds or QualityThresholds()
    f = features
    reasons: list[str] = []
    blank = f["content_share"] < 0.02 or f["contrast_std"] < t.blank_std or f["edge_density"] < t.blank_edge_density
    # a uniform card has no detail to be sharp or contrasted: `blank` says it all
    if f["sharpness"] < t.min_sharpness and not blank:
        reasons.append("blurry")
    if f["mean_luminance"] < t.max_dark_mean or f["dark_clipped"] > t.max_dark_clipped:
        reasons.append("too_dark")
    if f["mean_luminance"] > t.min_bright_mean or f["bright_clipped"] > t.max_bright_clipped:
        reasons.append("too_bright")
    if (f["contrast_std"] < t.min_contrast_std or f["contrast_range"] < t.min_contrast_range) and not blank:
        reasons.append("low_contrast")
    if blank:
        reasons.append("blank")
    if f["min_side"] < t.min_side_px or f["megapixels"] < t.min_megapixels:
        reasons.append("too_small")
    if f["aspect_ratio"] > t.max_aspect:
        reasons.append("extreme_aspect")
    if f["border_share"] > t.max_border_share and not blank:
        reasons.append("large_border")
    return reasons


def assess(
    image: Image.Image,
    width: int | None = None,
    height: int | None = None,
    thresholds: QualityThresholds | None = None,
) -> QualityResult:
    """Features + label of one scan."""
    features = measure_features(image, width, height)
    reasons = classify(features, thresholds)
    features["quality_score"] = quality_score(features, reasons)
    return QualityResult("bad" if reasons else "good", reasons, features)


def quality_score(features: dict[str, float], reasons: list[str] | str | None = None) -> float:
    """One number to pick the best copy among duplicates: more pixels, sharper, fewer defects.

    log10(pixels) + 0.5 * log10(1 + sharpness) - 2 per defect; the defect penalty dominates so a
    good scan always beats a bad one, then resolution beats sharpness (sharpness is measured at a
    normalised size, so a downscaled copy is not rewarded for being small).
    """
    if isinstance(reasons, str):
        reasons = [r for r in reasons.split(",") if r]
    pixels = max(1.0, features.get("megapixels", 0.0) * 1e6)
    sharp = max(0.0, features.get("sharpness", 0.0))
    return float(math.log10(pixels) + 0.5 * math.log10(1.0 + sharp) - 2.0 * len(reasons or []))


def thresholds_with(overrides: dict[str, float] | None) -> QualityThresholds:
    """The default thresholds with some fields overridden (values cast to each field's type);
    an unknown field name is a ValueError, never silently ignored."""
    base = QualityThresholds()
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(base.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown quality thresholds {sorted(unknown)}")
    return QualityThresholds(**{k: type(getattr(base, k))(v) for k, v in overrides.items()})
