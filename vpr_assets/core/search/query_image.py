"""A query picture, decoded safely: bytes, a path or a PIL image -> an 8-bit RGB image, with the
format sniffed from the content, the pixel count and the decode cost checked from the header
before any decoding, and at most `decode_slots` decodes at once (each may cost up to
`max_decode_bytes`). Every refusal is a `BadImageError` with its reason."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Callable

from vpr_assets.core.files import FileRefused, read_regular_file
from vpr_assets.core.images.decode import ImageRejected, _to_8bit_rgb, decode_image, probe_image
from vpr_assets.core.search.config import SearchConfig
from vpr_assets.core.search.errors import BadImageError, ImageTooLargeError


class QueryImageReader:
    """Decode query pictures within the limits of a `SearchConfig` (thread-safe)."""

    def __init__(self, config: SearchConfig):
        self.config = config
        self._decode_slots = threading.BoundedSemaphore(max(1, config.decode_slots))

    def read(self, image, draft_side: int | None = None):
        """Bytes, a path or a PIL image -> upright 8-bit RGB, within the limits. `draft_side`: decode
        a JPEG at reduced scale, never below that side (as the collection's files are embedded)."""
        from PIL import Image

        if isinstance(image, (bytes, bytearray, memoryview)):
            data = bytes(image)
            try:
                head = probe_image(data)  # header only: format sniffed, cost known before decoding
                if head.format not in self.config.query_formats:
                    raise BadImageError(f"{head.format} images are not accepted as queries; send "
                                        f"{', '.join(self.config.query_formats)}", "unsupported_format")
                if head.width * head.height > self.config.max_pixels:
                    raise ImageRejected("too_many_pixels", f"{head.width}x{head.height} = {head.width * head.height:,} "
                                                           f"px > limit {self.config.max_pixels:,} px")
                if head.decode_bytes > self.config.max_decode_bytes:
                    raise ImageTooLargeError(
                        f"decoding this {head.width}x{head.height} {head.mode} image takes ~{head.decode_bytes >> 20} MiB "
                        f"> limit {self.config.max_decode_bytes >> 20} MiB", "too_costly")
                with self._decode_slots:
                    return decode_image(data, self.config.max_pixels, draft_side=draft_side).image
            except ImageRejected as exc:
                cls = ImageTooLargeError if exc.reason == "too_many_pixels" else BadImageError
                raise cls(f"not a usable image ({exc.reason}): {exc.detail}" if exc.detail else
                          f"not a usable image ({exc.reason})", exc.reason) from None
        if isinstance(image, (str, Path)):
            return self.read(self._file_bytes(Path(image)), draft_side)
        if isinstance(image, Image.Image):
            w, h = image.size
            if w * h > self.config.max_pixels:
                raise ImageTooLargeError(f"{w}x{h} = {w * h:,} px > limit {self.config.max_pixels:,} px", "too_many_pixels")
            if w < 1 or h < 1:
                raise BadImageError(f"empty image {w}x{h}", "unreadable")
            return _to_8bit_rgb(image)
        raise BadImageError(f"expected image bytes, a path or a PIL image, got {type(image).__name__}", "bad_type")

    def read_for_search(self, image, draft_side: Callable[[], int]):
        """A query read once, decoded twice: (the full decode, which the caption OCR and the landmark
        score read; the decode the embedder sees, a JPEG at reduced scale as `embed_paths` decodes the
        collection's files). A PIL image is already decoded: it serves as both. `draft_side` is asked
        only once the picture has passed every check (a bad picture is refused before anything loads)."""
        if isinstance(image, (str, Path)):
            image = self._file_bytes(Path(image))
        full = self.read(image)
        return full, (self.read(image, draft_side()) if isinstance(image, (bytes, bytearray, memoryview)) else full)

    def _file_bytes(self, p: Path) -> bytes:
        if not p.exists():
            raise BadImageError(f"image file not found: {p}", "missing_file")
        try:
            return read_regular_file(p, max_bytes=self.config.max_file_bytes)
        except FileRefused as exc:
            cls = ImageTooLargeError if exc.reason == "too_large" else BadImageError
            raise cls(f"{p}: {exc.detail}", exc.reason) from None
        except OSError as exc:
            raise BadImageError(f"{p}: {type(exc).__name__}: {exc}", "unreadable") from None


def image_bytes_of(image) -> bytes:
    """PIL image -> JPEG bytes (handy for tests and for re-posting a query)."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()
