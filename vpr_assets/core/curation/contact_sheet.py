"""A small contact sheet (thumbnail grid, one caption per cell) for Dagster metadata.

Dagster metadata has no image type, so the sheet travels as a markdown data-URI image. It must stay
small (the run storage keeps every materialisation's metadata): cells are tiny, the PNG is
palette-quantised and the grid shrinks until it fits `max_bytes`.
"""

from __future__ import annotations

import base64
import io
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

MAX_BYTES = 200_000


def _sheet(images: Sequence[Image.Image], captions: Sequence[str], cell: int, columns: int) -> Image.Image:
    font = ImageFont.load_default()
    caption_h = 14
    rows = max(1, -(-len(images) // columns))
    sheet = Image.new("RGB", (columns * cell, rows * (cell + caption_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, (im, cap) in enumerate(zip(images, captions)):
        thumb = im.convert("RGB")
        thumb.thumbnail((cell - 4, cell - 4))
        x0 = (k % columns) * cell
        y0 = (k // columns) * (cell + caption_h)
        sheet.paste(thumb, (x0 + (cell - thumb.width) // 2, y0 + (cell - thumb.height) // 2))
        text = str(cap)
        while text and draw.textlength(text, font=font) > cell - 4:
            text = text[:-1]
        draw.text((x0 + 2, y0 + cell), text, fill=(160, 0, 0), font=font)
    return sheet


def contact_sheet_png(
    images: Sequence[Image.Image],
    captions: Sequence[str],
    cell: int = 128,
    columns: int = 6,
    max_items: int = 36,
    max_bytes: int = MAX_BYTES,
) -> bytes:
    """PNG bytes of a grid of thumbnails with a caption under each (e.g. the reject reason)."""
    images, captions = list(images)[:max_items], list(captions)[:max_items]
    if not images:
        images, captions = [Image.new("RGB", (cell, cell), (240, 240, 240))], ["(none)"]
    while True:
        sheet = _sheet(images, captions, cell, min(columns, len(images)))
        buf = io.BytesIO()
        sheet.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
        data = buf.getvalue()
        if len(data) <= max_bytes or cell <= 48:
            return data
        cell = int(cell * 0.8)


def contact_sheet_markdown(
    images: Sequence[Image.Image], captions: Sequence[str], title: str = "rejects", **kwargs
) -> str:
    """`![title](data:image/png;base64,...)` for `MetadataValue.md`."""
    data = contact_sheet_png(images, captions, **kwargs)
    return f"![{title}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})"
