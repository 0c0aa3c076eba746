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
    (folder / "descriptions.csv").write_text(
        "file,description\n"
        "good.jpg,\"A good card, with a comma\"\n"
        "Zürich_Großmünster_東京.jpg,Zürich. Großmünster\n"
        "broken row with,three,fields\n"
        "ghost.jpg,a description for a file that is not in the batch\n",
        encoding="utf-8",
    )
    return expected
