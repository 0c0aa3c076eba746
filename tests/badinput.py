"""Builders for the awkward files real batches contain (shared by core and Dagster tests)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def photo(seed: int = 0, size=(320, 240)) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    return Image.fromarray(base).resize(size, Image.BICUBIC)


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, **kw)
    return buf.getvalue()


def make_bad_batch(folder: Path) -> dict[str, str]:
    """Write one file of every awkward kind; returns {file name: expected outcome}.

    Outcome is `ok`, or the reject reason expected for it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}

    (folder / "good.jpg").write_bytes(jpeg_bytes(photo(1)))
    expected["good.jpg"] = "ok"
    (folder / "zero.jpg").write_bytes(b"")
    expected["zero.jpg"] = "empty_file"
    full = jpeg_bytes(photo(2, (640, 480)))
    (folder / "truncated.jpg").write_bytes(full[: len(full) // 2])
    expected["truncated.jpg"] = "truncated"
    (folder / "notes.jpg").write_text("this is a text file, not a picture\n")
    expected["notes.jpg"] = "not_an_image"
    bomb = Image.new("1", (10_000, 10_000), 0)  # 100 Mpx of nothing: compresses to a few KB
    bomb.save(folder / "bomb.png", optimize=True)
    expected["bomb.png"] = "too_many_pixels"
    photo(3).convert("CMYK").save(folder / "cmyk.jpg", format="JPEG")
    expected["cmyk.jpg"] = "ok"
    arr16 = (np.linspace(0, 65535, 200 * 150).reshape(150, 200)).astype(np.uint16)
    Image.fromarray(arr16).save(folder / "sixteen_bit.png")  # uint16 -> mode I;16
    expected["sixteen_bit.png"] = "ok"
    photo(4).convert("P", palette=Image.ADAPTIVE, colors=32).save(folder / "palette.png")
    expected["palette.png"] = "ok"
    rgba = photo(5).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "alpha.png")
    expected["alpha.png"] = "ok"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display: stored 320x240, shown 240x320
    photo(6).save(folder / "rotated.jpg", format="JPEG", exif=exif.tobytes())
    expected["rotated.jpg"] = "ok"
    (folder / "Zürich_Großmünster_東京.jpg").write_bytes(jpeg_bytes(photo(7)))
    expected["Zürich_Großmünster_東京.jpg"] = "ok"
    twin = jpeg_bytes(photo(8))
    (folder / "twin_a.jpg").write_bytes(twin)
    (folder / "twin_b.jpg").write_bytes(twin)
    expected["twin_a.jpg"] = "ok"
    expected["twin_b.jpg"] = "duplicate_file"
    corrupt = corrupt_avif_bytes()
    if corrupt is not None:  # Pillow raises RuntimeError on it: must be a reject, not a failed batch
        (folder / "corrupt.avif").write_bytes(corrupt)
        expected["corrupt.avif"] = "unreadable"
    (folder / "descriptions.csv").write_text(
        "file,description\n"
        "good.jpg,\"A good card, with a comma\"\n"
        "Zürich_Großmünster_東京.jpg,Zürich. Großmünster\n"
        "broken row with,three,fields\n"
        "ghost.jpg,a description for a file that is not in the batch\n",
        encoding="utf-8",
    )
    return expected


def uncaught_by_pillow(data: bytes) -> BaseException | None:
    """The exception plain Pillow raises opening and loading `data`, if it is not one of the
    types a careful caller expects (OSError, SyntaxError, ValueError); None otherwise."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except (OSError, SyntaxError, ValueError):
        return None
    except Exception as exc:  # noqa: BLE001 - what we are looking for
        return exc
    return None


def corrupt_avif_bytes(seed: int = 1) -> bytes | None:
    """A valid AVIF with one byte changed so that Pillow raises RuntimeError (libavif's "Missing or
    empty image item"), the file that failed whole batches (issue #15, finding 1). Found by zeroing
    header bytes one at a time; None when this Pillow has no AVIF or no byte does it."""
    from PIL import features

    if not features.check("avif"):
        return None
    buf = io.BytesIO()
    photo(seed).save(buf, format="AVIF")
    data = buf.getvalue()
    for offset in range(min(len(data), 400)):
        mutated = bytearray(data)
        mutated[offset] = 0
        exc = uncaught_by_pillow(bytes(mutated))
        if isinstance(exc, RuntimeError):
            return bytes(mutated)
    return None
