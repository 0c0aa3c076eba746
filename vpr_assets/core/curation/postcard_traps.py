"""Postcard-specific traps: the address side of a card, and several cards on one scan.

(a) A card back (address lines, stamp box, dividing line, handwriting) is not a view of any place:
it must be labelled `postcard_back` so it never enters the landmark index. The detector is a
transparent heuristic on OpenCV features (paper background, sparse ink, straight printed rules,
stamp corner) because no labelled backs exist yet to train on; every feature is returned so a
curator can see why.

(b) Volunteers often scan 2-4 cards at once on a flatbed: the cards are bright/dark rectangles
on a uniform bed. `split_multiple_cards` finds them and returns one crop per card; the caller
stores each crop as a new scan linked to the source (originals are never modified).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from vpr_assets.core.curation.quality import border_box, colourfulness, downscale, luminance

ANALYSIS_MAX_SIDE = 640


# --------------------------------------------------------------------------------------------
# (a) card backs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackThresholds:
    min_paper_share: float = 0.55  # share of the card that is plain light paper
    max_ink_share: float = 0.22  # ink strokes are sparse on a back
    min_paper_lightness: float = 150.0  # median luminance of the paper
    max_texture_share: float = 0.15  # share of textured, non-ink, non-paper pixels (photos are textured)
    min_score: float = 0.5


@dataclass
class BackResult:
    is_back: bool
    score: float
    features: dict[str, float] = field(default_factory=dict)
    cues: list[str] = field(default_factory=list)


def _card_region(gray: np.ndarray) -> tuple[int, int, int, int]:
    """Peel a uniform scanner bed (one pass: the card's own margin is part of the card)."""
    top, bottom, left, right = border_box(gray, passes=1)
    if bottom - top < gray.shape[0] * 0.3 or right - left < gray.shape[1] * 0.3:
        return 0, gray.shape[0], 0, gray.shape[1]
    return top, bottom, left, right


def _line_cues(ink: np.ndarray) -> dict[str, float]:
    """Long straight printed rules: a vertical divider near the middle, horizontal address lines."""
    h, w = ink.shape
    mask = ink.astype(np.uint8) * 255
    out = {"divider_len": 0.0, "address_lines": 0.0}
    # Vertical: close small gaps (dotted / wavy dividers), then find long runs via a tall kernel
    vk = max(9, h // 6)
    vert = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 7)))
    vert = cv2.morphologyEx(vert, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, vk)))
    n, _, stats, _ = cv2.connectedComponentsWithStats(vert, connectivity=8)
    for i in range(1, n):
        x, y, bw, bh, _ = stats[i]
        cx = (x + bw / 2) / w
        if 0.3 <= cx <= 0.75 and bw <= max(4, w * 0.03):
            out["divider_len"] = max(out["divider_len"], bh / h)
    hk = max(9, w // 6)
    hor = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (7, 1)))
    hor = cv2.morphologyEx(hor, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (hk, 1)))
    n, _, stats, _ = cv2.connectedComponentsWithStats(hor, connectivity=8)
    count = 0
    for i in range(1, n):
        x, y, bw, bh, _ = stats[i]
        if bw >= 0.2 * w and bh <= max(4, h * 0.03):
            count += 1
    out["address_lines"] = float(count)
    return out


def back_features(image: Image.Image) -> dict[str, float]:
    """Measured features of the address-side hypothesis (all in 0-1 unless stated)."""
    rgb = downscale(image, ANALYSIS_MAX_SIDE)
    gray = luminance(rgb)
    t, b, l_, r = _card_region(gray)
    g = gray[t:b, l_:r]
    c = rgb[t:b, l_:r]
    h, w = g.shape
    # Paper estimate: a large median removes strokes and keeps the (uneven, yellowed) paper tone
    k = max(15, (min(h, w) // 12) | 1)
    bg = cv2.medianBlur(g, k).astype(np.int16)
    lab = cv2.cvtColor(c, cv2.COLOR_RGB2LAB).astype(np.int16)
    # ... and of the paper's colour (a*, b*; its lightness is `bg`)
    bg_a, bg_b = (cv2.medianBlur(np.ascontiguousarray(lab[..., i]).astype(np.uint8), k).astype(np.int16) for i in (1, 2))
    dark = (bg - g.astype(np.int16)) > 30
    colour_dev = np.abs(lab[..., 1] - bg_a) + np.abs(lab[..., 2] - bg_b)
    ink = dark | (colour_dev > 30)
    # local texture: gradient magnitude where the pixel is neither paper nor a clean stroke
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    grad = np.hypot(gx, gy)
    light_bg = bg >= 140
    smooth = grad < 40
    ink_near = cv2.dilate(ink.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    paper = light_bg & smooth & ~ink_near
    texture = ~paper & ~ink_near
    # paper tone uniformity: the background varies little on a card, a lot in a room or a view
    bg_light = bg[light_bg]
    feats = {
        "card_share": float(h * w / gray.size),
        "card_aspect": max(h, w) / max(1, min(h, w)),
        "paper_share": float(paper.mean()),
        "ink_share": float(ink.mean()),
        "texture_share": float(texture.mean()),
        "paper_lightness": float(np.median(bg_light)) if bg_light.size else 0.0,
        "background_std": float(bg.std()),
        "colourfulness": colourfulness(c),
    }
    feats.update(_line_cues(ink))
    # stamp corner: ink/colour density in the top-right corner vs the card as a whole
    corner = ink[: h // 4, int(w * 0.75):]
    feats["stamp_corner_ink"] = float(corner.mean()) if corner.size else 0.0
    # a printed/handwritten box outline in the corner (rectangular stamp placeholder or stamp)
    feats["stamp_corner_ratio"] = feats["stamp_corner_ink"] / max(1e-3, feats["ink_share"])
    return feats


def detect_postcard_back(image: Image.Image, thresholds: BackThresholds | None = None) -> BackResult:
    """Is this the address side of a card? Score in 0-1 with the cues that fired.

    Necessary: mostly plain light paper with sparse ink and little photographic texture (a view,
    a room, a face are textured everywhere). Then structural cues of a postcard back add up:
    a long vertical dividing line in the middle, ruled address lines, an inked stamp corner, a
    postcard-shaped card. Plain text pages (no rules, no stamp corner, not card-shaped) fail.
    """
    t = thresholds or BackThresholds()
    f = back_features(image)
    cues: list[str] = []
    paper_ok = (
        f["paper_share"] >= t.min_paper_share
        and f["ink_share"] <= t.max_ink_share
        and f["paper_lightness"] >= t.min_paper_lightness
        and f["texture_share"] <= t.max_texture_share
    )
    structure = 0.0
    if f["divider_len"] >= 0.35:
        cues.append("dividing_line")
        structure += 0.5
    if f["address_lines"] >= 2:
        cues.append("address_lines")
        structure += 0.4
    if f["stamp_corner_ratio"] >= 1.5 and f["stamp_corner_ink"] >= 0.03:
        cues.append("stamp_corner")
        structure += 0.3
    if 1.3 <= f["card_aspect"] <= 1.75:
        cues.append("card_shape")
        structure += 0.2
    paper_score = min(1.0, f["paper_share"] / 0.8) * (1.0 - min(1.0, f["texture_share"] / 0.4))
    score = float(np.clip(0.5 * paper_score + 0.5 * min(1.0, structure), 0.0, 1.0))
    if paper_ok:
        cues.insert(0, "plain_paper")
    is_back = bool(paper_ok and structure >= 0.45 and score >= t.min_score)
    f["back_score"] = score
    return BackResult(is_back, score, f, cues)


# --------------------------------------------------------------------------------------------
# (b) several cards on one scan
# --------------------------------------------------------------------------------------------


@dataclass
class CardSplit:
    is_multiple: bool
    boxes: list[tuple[int, int, int, int]]  # (left, top, right, bottom) in original pixels
    crops: list[Image.Image] = field(default_factory=list)
    background: str = ""  # "light" | "dark" | "" (no uniform bed found)


def _bed_tone(gray: np.ndarray) -> tuple[float, float]:
    """Tone of the scanner bed from the outer frame of the image (median, spread)."""
    edge = np.concatenate([gray[:3].ravel(), gray[-3:].ravel(), gray[:, :3].ravel(), gray[:, -3:].ravel()])
    return float(np.median(edge)), float(np.percentile(np.abs(edge - np.median(edge)), 90))


def detect_cards(
    image: Image.Image,
    min_area_share: float = 0.02,
    max_area_share: float = 0.9,
    tol: float = 18.0,
) -> tuple[list[tuple[int, int, int, int]], str]:
    """Card boxes (original pixels) on a uniform scanner bed; [] when there is no uniform bed.

    The bed is whatever tone the image's outer frame has, if that frame is uniform; cards are the
    large connected regions that differ from it, filtered by area and rectangularity.
    """
    rgb = downscale(image, 800)
    scale = image.width / rgb.shape[1]
    gray = luminance(rgb)
    bed, spread = _bed_tone(gray)
    if spread > tol:  # the frame is not one tone: a photo reaching the edges, no bed
        return [], ""
    blur = cv2.GaussianBlur(gray, (5, 5), 0)
    diff = np.abs(blur.astype(np.int16) - int(bed)) > max(tol, 2.5 * spread)
    # also colour differences from the bed (a pale card on a white bed)
    lab = cv2.cvtColor(cv2.GaussianBlur(rgb, (5, 5), 0), cv2.COLOR_RGB2LAB).astype(np.int16)
    edge_lab = np.concatenate([lab[:3].reshape(-1, 3), lab[-3:].reshape(-1, 3)])
    bed_lab = np.median(edge_lab, axis=0)
    diff |= (np.abs(lab - bed_lab).sum(-1)) > 3 * tol
    # a card's outline against the bed also shows as an edge, even where a white margin meets a
    # white lid: edges close the outline, then each outer contour is filled
    edges = cv2.Canny(blur, 20, 60) > 0
    mask = (diff | edges).astype(np.uint8) * 255
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (7, 7)))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    mask = np.zeros_like(mask)
    cv2.drawContours(mask, contours, -1, 255, thickness=cv2.FILLED)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (9, 9)))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    area_total = gray.size
    boxes = []
    for cnt in contours:
        # the convex hull bridges bites where the picture matches the bed (white sky on a white lid)
        hull = cv2.convexHull(cnt)
        area = cv2.contourArea(hull)
        if not (min_area_share * area_total <= area <= max_area_share * area_total):
            continue
        rect = cv2.minAreaRect(hull)
        rw, rh = rect[1]
        if rw * rh <= 0 or area / (rw * rh) < 0.85:  # a card is a (rotated) rectangle
            continue
        if max(rw, rh) / max(1.0, min(rw, rh)) > 4.0:
            continue
        x, y, bw, bh = cv2.boundingRect(hull)
        boxes.append(
            (
                int(round(x * scale)),
                int(round(y * scale)),
                int(round(min(rgb.shape[1], x + bw) * scale)),
                int(round(min(rgb.shape[0], y + bh) * scale)),
            )
        )
    boxes.sort(key=lambda b: (b[1] // max(1, image.height // 4), b[0]))
    return boxes, ("light" if bed >= 128 else "dark")


def split_multiple_cards(image: Image.Image, **kwargs) -> CardSplit:
    """`multiple_cards` when two or more card rectangles sit on a uniform bed; crops + boxes."""
    boxes, bed = detect_cards(image, **kwargs)
    if len(boxes) < 2:
        return CardSplit(False, boxes, [], bed)
    crops = [image.crop(b) for b in boxes]
    return CardSplit(True, boxes, crops, bed)


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
