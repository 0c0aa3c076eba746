"""Small JPEG thumbnails for contact sheets, search results and the web page."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from vpr_assets.storage.atomic import atomic_write

THUMB_SIZE = 256


def thumbnail_relpath(scan_id: str) -> str:
    return f"thumbnails/{scan_id[:2]}/{scan_id}.jpg"


def write_thumbnail(image: Image.Image, home: Path, scan_id: str, size: int = THUMB_SIZE) -> str:
    """Write (once) the thumbnail of a scan; returns its path relative to the data root."""
    rel = thumbnail_relpath(scan_id)
    target = home / rel
    if not target.exists():
        thumb = image.copy()
        thumb.thumbnail((size, size))
        atomic_write(target, lambda p: thumb.save(p, format="JPEG", quality=85))
    return rel
