"""Synthetic postcard captions rendered onto real photos, so OCR tests and benchmarks know the truth.

Old postcards print the caption in a band at the top or bottom (or straight on the picture), on
sepia-toned, grainy card; this reproduces that with real fonts so recall can be measured.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
FONT_NAMES = ("DejaVuSerif-Bold.ttf", "DejaVuSans.ttf", "DejaVuSerifCondensed-Italic.ttf", "DejaVuSans-Bold.ttf")


def available_fonts() -> list[str | None]:
    """DejaVu font paths that exist here; [None] (PIL's default font) when none do."""
    found = [str(DEJAVU / n) for n in FONT_NAMES if (DEJAVU / n).exists()]
    return found or [None]


def load_font(path: str | None, size: int):
    if path:
        return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def sepia(im: Image.Image, strength: float = 0.8) -> Image.Image:
    """Brown-toned version of a photo, as on aged albumen / collotype cards."""
    a = np.asarray(im.convert("RGB"), dtype=np.float32)
    grey = a @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    tone = np.stack([grey * 1.07 + 20, grey * 0.95 + 8, grey * 0.78], axis=-1)
    out = a * (1 - strength) + tone * strength
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def add_noise(im: Image.Image, sigma: float, rng: np.random.Generator) -> Image.Image:
    a = np.asarray(im, dtype=np.float32)
    a = a + rng.normal(0, sigma, a.shape[:2])[..., None]
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def render_caption(
    photo: Image.Image,
    text: str,
    *,
    font_path: str | None = None,
    size_frac: float = 0.05,
    position: str = "bottom",  # bottom | top | over (printed on the picture, near the bottom)
    sepia_strength: float = 0.7,
    noise: float = 6.0,
    seed: int = 0,
) -> Image.Image:
    """Photo + caption; size_frac is the font size as a share of the photo height."""
    rng = np.random.default_rng(seed)
    im = sepia(photo.convert("RGB"), sepia_strength) if sepia_strength else photo.convert("RGB")
    w, h = im.size
    size = max(10, int(h * size_frac))
    font = load_font(font_path, size)
    while font.getlength(text) > 0.92 * w and size > 10:
        size = int(size * 0.9)
        font = load_font(font_path, size)
    tw = font.getlength(text)
    band = int(size * 1.8)
    x = int(rng.uniform(0.03 * w, max(0.03 * w, w - tw - 0.03 * w)))
    if position in ("bottom", "top"):
        paper = tuple(int(c) for c in rng.integers([215, 195, 160], [245, 228, 195]))
        canvas = Image.new("RGB", (w, h + band), paper)
        canvas.paste(im, (0, band) if position == "top" else (0, 0))
        y = int(band * 0.2) if position == "top" else h + int(band * 0.2)
        ink = tuple(int(c) for c in rng.integers([20, 15, 10], [70, 55, 45]))
        ImageDraw.Draw(canvas).text((x, y), text, font=font, fill=ink)
        im = canvas
    else:
        y = int(h - band * 1.2)
        d = ImageDraw.Draw(im)
        d.text((x, y), text, font=font, fill=(250, 246, 235), stroke_width=max(1, size // 14), stroke_fill=(25, 20, 15))
    return add_noise(im, noise, rng) if noise else im


CAPTIONS = [
    # (caption, expected city, expected ISO-2 country)
    ("LONDON - Tower Bridge", "London", "GB"),
    ("PARIS. Notre-Dame", "Paris", "FR"),
    ("VENEZIA - Piazza San Marco", "Venice", "IT"),
    ("Roma. Il Colosseo", "Rome", "IT"),
    ("MÉXICO. Catedral", "Mexico City", "MX"),
    ("Gruss aus München - Marienplatz", "Munich", "DE"),
    ("BARCELONA. Sagrada Familia", "Barcelona", "ES"),
    ("New York - Brooklyn Bridge", "New York City", "US"),
    ("Amsterdam. Damrak", "Amsterdam", "NL"),
    ("Wien - Stephansdom", "Vienna", "AT"),
]


def synthetic_set(photos: list[Path], n: int, seed: int = 0) -> list[tuple[Image.Image, str, str, str]]:
    """n (image, caption, city, country) cases cycling captions, fonts, sizes and positions."""
    rnd = random.Random(seed)
    fonts = available_fonts()
    cases = []
    for i in range(n):
        cap, city, cc = CAPTIONS[i % len(CAPTIONS)]
        photo = Image.open(photos[i % len(photos)]).convert("RGB")
        im = render_caption(
            photo, cap, font_path=fonts[i % len(fonts)], size_frac=rnd.choice([0.035, 0.045, 0.06]),
            position=("bottom", "top", "over")[i % 3], sepia_strength=rnd.choice([0.0, 0.6, 0.9]),
            noise=rnd.choice([3.0, 8.0]), seed=seed + i,
        )
        cases.append((im, cap, city, cc))
    return cases
