"""Safe decoding of untrusted scans into RGB, with a clear reason for every refusal.

Scans come from flatbed scanners, phones and old archives: CMYK, 16-bit, palette and alpha images,
EXIF rotation, truncated files and the odd decompression bomb. Everything is normalised to an
upright 8-bit RGB image; anything that cannot be is refused with an `ImageRejected` reason.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 80_000_000  # ~ a 600 dpi A4 colour scan; a postcard at 1200 dpi is ~ 20 Mpx
EXIF_ORIENTATION_TAG = 0x0112


class ImageRejected(Exception):
    """A scan that cannot be used, with a short machine-readable reason and a human detail."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class DecodedImage:
    image: Image.Image  # upright, 8-bit RGB
    format: str
    width: int  # as displayed (after EXIF rotation)
    height: int
    mode: str  # colour mode of the original file (CMYK, I;16, P, RGBA, ...)
    exif_orientation: int  # 1 = upright / none


BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "LA": 2, "PA": 2, "La": 2, "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3,
                   "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4, "I": 4, "F": 4, "I;16": 2, "I;16L": 2, "I;16B": 2,
                   "I;16N": 2}


@dataclass
class ImageHeader:
    format: str
    width: int
    height: int
    mode: str

    @property
    def decode_bytes(self) -> int:
        """Memory a decode to 8-bit RGB costs, from the header: the decoded pixels, the RGB copy,
        and for 16-bit / integer / float modes the float32 array they are rescaled through."""
        px = self.width * self.height
        own = BYTES_PER_PIXEL.get(self.mode, 4)
        extra = 4 if self.mode.startswith("I") or self.mode == "F" else 0
        return px * (own + 3 + extra)


def probe_image(data: bytes) -> ImageHeader:
    """Format, size and mode from the header only (no pixel data decoded), or `ImageRejected`."""
    if not data:
        raise ImageRejected("empty_file", "zero bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return ImageHeader(im.format or "UNKNOWN", int(im.size[0]), int(im.size[1]), im.mode)
    except UnidentifiedImageError:
        raise ImageRejected("not_an_image", "content is not a recognised image format") from None
    except Image.DecompressionBombError as exc:
        raise ImageRejected("too_many_pixels", str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - as decode_image: any error is a refusal
        raise ImageRejected("unreadable", f"{type(exc).__name__}: {exc}"[:500]) from None


def _to_8bit_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float32)  # float32: a 16-bit scan near the pixel limit costs half
        hi = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr8 = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr8 = ((arr - lo) / (hi - lo or 1.0) * 255.0).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))  # card stock, not black
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def decode_image(source: str | Path | bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
                 draft_side: int | None = None) -> DecodedImage:
    """Decode a file (path or bytes) into an upright RGB image, or raise `ImageRejected`.

    The pixel limit is enforced from the header, before any pixel data is decoded. `draft_side`:
    a JPEG is decoded at the largest DCT reduction (1/2, 1/4, 1/8) that keeps both sides at least
    that many pixels, several times cheaper when the caller will resize it anyway (embedding).
    """
    if isinstance(source, (str, Path)):
        from vpr_assets.core.files import FileRefused, read_regular_file

        try:
            data = read_regular_file(source)  # a FIFO or device never blocks
        except FileRefused as exc:
            raise ImageRejected(exc.reason, exc.detail) from None
    else:
        data = bytes(source)
    if len(data) == 0:
        raise ImageRejected("empty_file", "zero bytes")
    try:
        return _decode(data, max_pixels, draft_side)
    except ImageRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder error of any format is a refusal, never a crash
        # Pillow's plugins raise what their C libraries hand back (RuntimeError from libavif,
        # struct.error, IndexError, ZeroDivisionError, MemoryError, ...): one bad file is one reject.
        raise ImageRejected("unreadable", f"{type(exc).__name__}: {exc}"[:500]) from None


def _decode(data: bytes, max_pixels: int, draft_side: int | None = None) -> DecodedImage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # our own limit below, checked on the header
        try:
            try:
                im = Image.open(io.BytesIO(data))
            except UnidentifiedImageError:
                raise ImageRejected("not_an_image", "content is not a recognised image format") from None
            except Image.DecompressionBombError as exc:
                raise ImageRejected("too_many_pixels", str(exc)) from None
            except (OSError, SyntaxError, ValueError) as exc:
                raise ImageRejected("unreadable", f"{type(exc).__name__}: {exc}") from None
            w, h = im.size
            if w <= 0 or h <= 0:
                raise ImageRejected("unreadable", f"invalid size {w}x{h}")
            if w * h > max_pixels:
                raise ImageRejected("too_many_pixels", f"{w}x{h} = {w * h:,} px > limit {max_pixels:,} px")
            fmt = im.format or "UNKNOWN"
            mode = im.mode
            try:
                orientation = int(im.getexif().get(EXIF_ORIENTATION_TAG, 1) or 1)
            except Exception:  # a broken EXIF block does not make a broken image
                orientation = 1
            if draft_side and fmt == "JPEG":  # EXIF rotation swaps the sides later; a square target is symmetric
                im.draft("RGB", (draft_side, draft_side))
            try:
                im.load()
            except OSError as exc:
                msg = str(exc)
                reason = "truncated" if "truncated" in msg.lower() or "broken data" in msg.lower() else "unreadable"
                raise ImageRejected(reason, f"{type(exc).__name__}: {msg}") from None
            except (SyntaxError, ValueError, Image.DecompressionBombError) as exc:
                raise ImageRejected("unreadable", f"{type(exc).__name__}: {exc}") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved_limit
    try:
        upright = ImageOps.exif_transpose(im) if orientation != 1 else im
    except Exception:
        upright = im
    rgb = _to_8bit_rgb(upright)
    return DecodedImage(rgb, fmt, rgb.width, rgb.height, mode, orientation if 1 <= orientation <= 8 else 1)


def load_rgb(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Just the upright RGB image (for downstream stages reading already-accepted scans)."""
    return decode_image(path, max_pixels).image
