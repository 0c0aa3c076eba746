"""Synthetic postcards for the demo collection and tests.

The product may not ship photographs it did not make, so the demo draws its own: each place is a
procedural landmark (bridge, cathedral, dome, arch, temple, tower, mountain, pyramids) whose shape
is fixed by the place, seen on each card with a different framing, light, print process (sepia,
hand-coloured, halftone) and border, with a printed caption naming the real place. Non-landmark
cards (greetings, portraits), card backs and poor scans are drawn too, so every stage has work.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

CARD_W, CARD_H = 720, 460


def _seed(*parts) -> int:
    """A stable seed (Python's hash() of strings changes between processes)."""
    return zlib.crc32("|".join(map(str, parts)).encode())
FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts")]
FONT_NAMES = ["DejaVuSerif-Bold.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSans.ttf", "DejaVuSansCondensed-Bold.ttf"]


@dataclass(frozen=True)
class Place:
    key: str
    caption: str  # printed on the card, as a publisher of the time would
    city: str
    country: str  # ISO-2
    landmark: str
    kind: str  # which procedural landmark
    description: str


DEMO_PLACES: list[Place] = [
    Place("tower_bridge", "LONDON - Tower Bridge", "London", "GB", "Tower Bridge", "bridge",
          "Tower Bridge over the Thames, London, England"),
    Place("notre_dame", "PARIS. Notre-Dame", "Paris", "FR", "Notre-Dame", "cathedral",
          "The cathedral of Notre-Dame de Paris from the Seine, France"),
    Place("san_pietro", "ROMA - Basilica di San Pietro", "Rome", "IT", "San Pietro", "dome",
          "St. Peter's Basilica and its square, Rome, Italy"),
    Place("brandenburger_tor", "BERLIN - Brandenburger Tor", "Berlin", "DE", "Brandenburger Tor", "arch",
          "The Brandenburg Gate on Pariser Platz, Berlin, Germany"),
    Place("acropolis", "ATHENES - L'Acropole", "Athens", "GR", "Acropolis", "temple",
          "The Parthenon on the Acropolis, Athens, Greece"),
    Place("pao_de_acucar", "RIO DE JANEIRO - Pão de Açúcar", "Rio de Janeiro", "BR", "Pão de Açúcar", "mountain",
          "Sugarloaf Mountain over Guanabara Bay, Rio de Janeiro, Brazil"),
    Place("pyramids", "CAIRO - The Pyramids of Giza", "Cairo", "EG", "Pyramids of Giza", "pyramids",
          "The pyramids of Giza near Cairo, Egypt"),
    Place("eiffel", "PARIS - La Tour Eiffel", "Paris", "FR", "Tour Eiffel", "tower",
          "The Eiffel Tower from the Champ de Mars, Paris, France"),
]


@lru_cache(maxsize=64)
def font(size: int, index: int = 0) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A TrueType font from the system (DejaVu), else Pillow's bundled scalable default."""
    name = FONT_NAMES[index % len(FONT_NAMES)]
    for d in FONT_DIRS:
        for cand in [d / name, *d.rglob(name)] if d.exists() else []:
            if cand.exists():
                return ImageFont.truetype(str(cand), size)
    return ImageFont.load_default(size=size)


def _palette(rng: random.Random) -> dict:
    sky = (rng.randint(150, 200), rng.randint(180, 215), rng.randint(205, 240))
    return {"sky_top": sky, "sky_bottom": (235, 225, 200), "ground": (rng.randint(90, 130), rng.randint(110, 140), 80)}


def _sky(draw: ImageDraw.ImageDraw, w: int, h: int, top, bottom, horizon: int) -> None:
    for y in range(horizon):
        t = y / max(1, horizon)
        draw.line([(0, y), (w, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))


def _landmark(draw: ImageDraw.ImageDraw, kind: str, cx: float, base: float, s: float, shape: random.Random) -> None:
    """Draw the place's landmark; `shape` is seeded by the place so its form is the same on every card."""
    stone = (shape.randint(120, 175), shape.randint(110, 150), shape.randint(90, 130))
    dark = tuple(max(0, c - 60) for c in stone)
    if kind == "bridge":
        for dx in (-1, 1):
            x = cx + dx * 150 * s
            draw.rectangle([x - 22 * s, base - 230 * s, x + 22 * s, base], fill=stone, outline=dark, width=2)
            draw.polygon([(x - 26 * s, base - 230 * s), (x, base - 275 * s), (x + 26 * s, base - 230 * s)], fill=dark)
            for k in range(4):
                draw.rectangle([x - 8 * s, base - (200 - 45 * k) * s, x + 8 * s, base - (180 - 45 * k) * s], fill=dark)
        draw.rectangle([cx - 330 * s, base - 70 * s, cx + 330 * s, base - 55 * s], fill=dark)
        draw.rectangle([cx - 128 * s, base - 190 * s, cx + 128 * s, base - 178 * s], fill=dark)
        for dx in (-1, 1):
            draw.line([(cx + dx * 172 * s, base - 220 * s), (cx + dx * 330 * s, base - 70 * s)], fill=dark, width=max(1, int(4 * s)))
        draw.rectangle([cx - 400 * s, base - 8 * s, cx + 400 * s, base + 40 * s], fill=(70, 90, 110))
    elif kind == "cathedral":
        draw.rectangle([cx - 120 * s, base - 200 * s, cx + 120 * s, base], fill=stone, outline=dark, width=2)
        for dx in (-1, 1):
            draw.rectangle([cx + dx * 85 * s - 35 * s, base - 300 * s, cx + dx * 85 * s + 35 * s, base], fill=stone, outline=dark, width=2)
            for k in range(3):
                y = base - (270 - 60 * k) * s
                draw.rectangle([cx + dx * 85 * s - 12 * s, y, cx + dx * 85 * s + 12 * s, y + 35 * s], fill=dark)
        draw.ellipse([cx - 30 * s, base - 170 * s, cx + 30 * s, base - 110 * s], outline=dark, width=max(1, int(5 * s)))
        draw.polygon([(cx - 30 * s, base), (cx, base - 70 * s), (cx + 30 * s, base)], fill=dark)
        draw.line([(cx + 170 * s, base - 200 * s), (cx + 170 * s, base - 330 * s)], fill=dark, width=max(1, int(6 * s)))
    elif kind == "dome":
        draw.rectangle([cx - 230 * s, base - 110 * s, cx + 230 * s, base], fill=stone, outline=dark, width=2)
        for k in range(-6, 7):
            draw.line([(cx + k * 33 * s, base - 100 * s), (cx + k * 33 * s, base)], fill=dark, width=max(1, int(3 * s)))
        draw.rectangle([cx - 90 * s, base - 190 * s, cx + 90 * s, base - 110 * s], fill=stone, outline=dark, width=2)
        draw.pieslice([cx - 100 * s, base - 300 * s, cx + 100 * s, base - 100 * s], 180, 360, fill=(110, 130, 140), outline=dark)
        draw.rectangle([cx - 14 * s, base - 330 * s, cx + 14 * s, base - 290 * s], fill=stone, outline=dark)
        draw.line([(cx, base - 330 * s), (cx, base - 360 * s)], fill=dark, width=2)
    elif kind == "arch":
        draw.rectangle([cx - 220 * s, base - 200 * s, cx + 220 * s, base], fill=stone, outline=dark, width=2)
        draw.rectangle([cx - 240 * s, base - 235 * s, cx + 240 * s, base - 200 * s], fill=dark)
        for k in range(-2, 3):
            x = cx + k * 88 * s
            draw.rectangle([x - 26 * s, base - 170 * s, x + 26 * s, base], fill=(60, 55, 50))
        for k in range(-3, 3):
            x = cx + (k + 0.5) * 88 * s
            draw.rectangle([x - 9 * s, base - 200 * s, x + 9 * s, base], fill=dark)
        draw.polygon([(cx - 60 * s, base - 235 * s), (cx + 60 * s, base - 235 * s), (cx + 40 * s, base - 280 * s), (cx - 40 * s, base - 280 * s)], fill=(70, 100, 80))
    elif kind == "temple":
        draw.polygon([(cx - 420 * s, base + 30 * s), (cx - 260 * s, base - 40 * s), (cx + 280 * s, base - 40 * s), (cx + 430 * s, base + 30 * s)], fill=(150, 140, 110))
        top = base - 40 * s
        draw.rectangle([cx - 220 * s, top - 20 * s, cx + 220 * s, top], fill=stone)
        for k in range(9):
            x = cx - 200 * s + k * 50 * s
            draw.rectangle([x - 12 * s, top - 150 * s, x + 12 * s, top - 20 * s], fill=stone, outline=dark)
        draw.rectangle([cx - 230 * s, top - 175 * s, cx + 230 * s, top - 150 * s], fill=stone, outline=dark)
        draw.polygon([(cx - 230 * s, top - 175 * s), (cx, top - 230 * s), (cx + 230 * s, top - 175 * s)], fill=dark)
    elif kind == "mountain":
        draw.polygon([(cx - 60 * s, base), (cx + 10 * s, base - 320 * s), (cx + 70 * s, base - 330 * s), (cx + 150 * s, base)], fill=(80, 95, 70))
        draw.polygon([(cx - 330 * s, base), (cx - 220 * s, base - 150 * s), (cx - 150 * s, base - 170 * s), (cx - 40 * s, base)], fill=(95, 110, 80))
        draw.line([(cx - 170 * s, base - 165 * s), (cx + 30 * s, base - 325 * s)], fill=(40, 40, 40), width=2)
        draw.rectangle([cx - 500 * s, base - 5 * s, cx + 500 * s, base + 60 * s], fill=(60, 100, 130))
    elif kind == "pyramids":
        for off, size in ((-170, 1.0), (90, 0.8), (260, 0.45)):
            x, h = cx + off * s, 240 * s * size
            draw.polygon([(x - h * 1.1, base), (x, base - h), (x + h * 1.1, base)], fill=(200, 170, 110), outline=(150, 120, 70))
            draw.polygon([(x, base - h), (x + h * 1.1, base), (x + h * 0.3, base)], fill=(160, 130, 80))
    elif kind == "tower":
        for k in range(0, 18):
            y0 = base - k * 22 * s
            half = (110 - k * 5.6) * s
            draw.line([(cx - half, y0), (cx - half + 5.6 * s, y0 - 22 * s)], fill=dark, width=max(1, int(4 * s)))
            draw.line([(cx + half, y0), (cx + half - 5.6 * s, y0 - 22 * s)], fill=dark, width=max(1, int(4 * s)))
            draw.line([(cx - half, y0), (cx + half - 5.6 * s, y0 - 22 * s)], fill=dark, width=1)
            draw.line([(cx + half, y0), (cx - half + 5.6 * s, y0 - 22 * s)], fill=dark, width=1)
        draw.rectangle([cx - 90 * s, base - 90 * s, cx + 90 * s, base - 78 * s], fill=dark)
        draw.rectangle([cx - 50 * s, base - 220 * s, cx + 50 * s, base - 210 * s], fill=dark)
        draw.line([(cx, base - 396 * s), (cx, base - 430 * s)], fill=dark, width=max(1, int(3 * s)))
        draw.arc([cx - 80 * s, base - 60 * s, cx + 80 * s, base + 60 * s], 180, 360, fill=dark, width=max(1, int(5 * s)))


def _print_process(img: Image.Image, rng: random.Random) -> Image.Image:
    """Sepia, hand-coloured or halftone print, as the cards of 1900-1960 were."""
    mode = rng.choice(["sepia", "handcolour", "halftone", "mono"])
    if mode == "sepia":
        g = ImageOps.grayscale(img)
        img = ImageOps.colorize(g, black=(50, 30, 15), white=(250, 235, 200))
    elif mode == "mono":
        img = ImageOps.grayscale(img).convert("RGB")
    elif mode == "halftone":
        arr = np.asarray(img).astype(np.float32)
        yy, xx = np.mgrid[0 : arr.shape[0], 0 : arr.shape[1]]
        dots = (np.sin(xx * 1.3) * np.sin(yy * 1.3)) * 18
        img = Image.fromarray(np.clip(arr + dots[..., None], 0, 255).astype(np.uint8))
    else:
        arr = np.asarray(img).astype(np.float32)
        arr = arr * np.array([1.05, 0.97, 0.85]) + 8
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).filter(ImageFilter.SMOOTH)
    return img


def _caption(img: Image.Image, text: str, rng: random.Random, where: str | None = None) -> Image.Image:
    draw = ImageDraw.Draw(img)
    f = font(rng.randint(24, 30), rng.randrange(len(FONT_NAMES)))
    where = where or rng.choice(["bottom", "bottom", "top"])
    bbox = draw.textbbox((0, 0), text, font=f)
    tw, th = bbox[2] - bbox[0], bbox[3] - bbox[1]
    x = rng.randint(20, max(21, img.width - tw - 20)) if tw < img.width - 40 else 10
    y = img.height - th - rng.randint(18, 26) if where == "bottom" else rng.randint(14, 22)
    pad = 6
    band = (245, 238, 220) if rng.random() < 0.6 else None
    if band:
        draw.rectangle([x - pad, y - pad + bbox[1], x + tw + pad, y + th + pad + bbox[1]], fill=band)
    draw.text((x, y), text, font=f, fill=(25, 20, 15) if band else (250, 245, 230),
              stroke_width=0 if band else 2, stroke_fill=(20, 15, 10))
    return img


def _border(img: Image.Image, rng: random.Random) -> Image.Image:
    if rng.random() < 0.5:
        return img
    b = rng.randint(10, 22)
    return ImageOps.expand(img, border=b, fill=(248, 244, 232))


def landmark_card(place: Place, index: int, seed: int = 0) -> Image.Image:
    """One postcard of `place`: same landmark, a different view, print and caption layout each time."""
    shape_seed = sum(ord(c) * (i + 1) for i, c in enumerate(place.key))
    rng = random.Random(_seed(seed, place.key, index))
    w, h = CARD_W, CARD_H
    img = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(img)
    pal = _palette(random.Random(shape_seed))
    horizon = int(h * rng.uniform(0.70, 0.80))
    _sky(draw, w, h, pal["sky_top"], pal["sky_bottom"], horizon)
    draw.rectangle([0, horizon, w, h], fill=pal["ground"])
    for _ in range(rng.randint(0, 3)):  # clouds
        cx, cy = rng.randint(0, w), rng.randint(10, horizon // 3)
        draw.ellipse([cx - 60, cy - 15, cx + 60, cy + 15], fill=(245, 245, 245))
    scale = rng.uniform(0.65, 0.92)  # each card a different photograph: distance, framing, light
    cx = w / 2 + rng.uniform(-0.12, 0.12) * w
    _landmark(draw, place.kind, cx, horizon + 10, scale, random.Random(shape_seed))
    for _ in range(rng.randint(2, 6)):  # passers-by and trees
        x = rng.randint(0, w)
        draw.ellipse([x - 12, horizon - 25, x + 12, horizon + 5], fill=(50, 80, 40))
    img = img.rotate(rng.uniform(-1.5, 1.5), resample=Image.BICUBIC, expand=False, fillcolor=(240, 235, 220))
    zoom = rng.uniform(0.85, 1.0)  # the publisher's crop
    cw, ch = int(w * zoom), int(h * zoom)
    x0, y0 = rng.randint(0, w - cw), rng.randint(0, h - ch)
    img = img.crop((x0, y0, x0 + cw, y0 + ch)).resize((w, h), Image.BICUBIC)
    img = _print_process(img, rng)
    img = _caption(img, place.caption, rng)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 0.6)))
    arr = np.asarray(img).astype(np.int16) + np.random.default_rng(rng.randrange(2**31)).integers(-6, 7, (h, w, 1))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return _border(img, rng)


def greeting_card(index: int, seed: int = 0) -> Image.Image:
    """A non-landmark card: flowers and a greeting."""
    rng = random.Random(_seed(seed, "greeting", index))
    img = Image.new("RGB", (CARD_W, CARD_H), (rng.randint(200, 250), rng.randint(190, 230), rng.randint(200, 240)))
    draw = ImageDraw.Draw(img)
    for _ in range(25):
        x, y, r = rng.randint(0, CARD_W), rng.randint(0, CARD_H), rng.randint(12, 40)
        col = (rng.randint(150, 255), rng.randint(40, 120), rng.randint(60, 160))
        for a in range(6):
            dx, dy = math.cos(a * math.pi / 3) * r * 0.6, math.sin(a * math.pi / 3) * r * 0.6
            draw.ellipse([x + dx - r / 2, y + dy - r / 2, x + dx + r / 2, y + dy + r / 2], fill=col)
        draw.ellipse([x - r / 4, y - r / 4, x + r / 4, y + r / 4], fill=(250, 220, 60))
    text = rng.choice(["Happy New Year", "Joyeuses Pâques", "Herzlichen Glückwunsch", "Best Wishes", "Bonne Année"])
    f = font(40, 2)
    draw.text((60, CARD_H // 2 - 20), text, font=f, fill=(120, 20, 40), stroke_width=2, stroke_fill=(255, 255, 255))
    return img


def portrait_card(index: int, seed: int = 0) -> Image.Image:
    """A non-landmark card: a studio portrait."""
    rng = random.Random(_seed(seed, "portrait", index))
    img = Image.new("RGB", (CARD_H, CARD_W), (rng.randint(60, 90), rng.randint(50, 70), 45))
    draw = ImageDraw.Draw(img)
    cx = CARD_H // 2 + rng.randint(-30, 30)
    draw.ellipse([cx - 150, 420, cx + 150, 800], fill=(30, 30, 35))
    draw.ellipse([cx - 80, 200, cx + 80, 420], fill=(215, 180, 150))
    draw.ellipse([cx - 90, 170, cx + 90, 280], fill=(60, 40, 25))
    return ImageOps.colorize(ImageOps.grayscale(img), black=(40, 25, 10), white=(245, 230, 200))


def card_back(index: int, seed: int = 0) -> Image.Image:
    """The address side: dividing line, stamp box, printed heading and handwriting."""
    rng = random.Random(_seed(seed, "back", index))
    img = Image.new("RGB", (CARD_W, CARD_H), (242, 236, 222))
    draw = ImageDraw.Draw(img)
    draw.text((CARD_W // 2 - 120, 18), "POST CARD", font=font(30, 2), fill=(60, 50, 40))
    draw.line([(CARD_W // 2, 80), (CARD_W // 2, CARD_H - 30)], fill=(80, 70, 60), width=2)
    draw.rectangle([CARD_W - 110, 20, CARD_W - 30, 110], outline=(80, 70, 60), width=2)
    for k in range(4):
        draw.line([(CARD_W // 2 + 30, 200 + 55 * k), (CARD_W - 40, 200 + 55 * k)], fill=(120, 110, 100), width=1)
    for line in range(7):  # handwriting
        y = 110 + line * 40
        x = 30
        pts = []
        while x < CARD_W // 2 - 30:
            pts.append((x, y + rng.uniform(-8, 8)))
            x += rng.uniform(4, 9)
        draw.line(pts, fill=(30, 40, 110), width=2)
    return img


def poor_scan(kind: str, base: Image.Image) -> Image.Image:
    """Scanner failures for the quality stage: blurred, black, blank or tiny."""
    if kind == "blurred":
        return base.filter(ImageFilter.GaussianBlur(6))
    if kind == "black":
        return Image.new("RGB", base.size, (6, 5, 4))
    if kind == "blank":
        return Image.new("RGB", base.size, (236, 232, 220))
    if kind == "tiny":
        return base.resize((60, 40))
    raise ValueError(f"unknown poor scan kind {kind!r}")
