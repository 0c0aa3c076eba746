"""Quality features and labels on real photos and on degraded copies of them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageOps

from vpr_assets.core.curation.quality import QualityThresholds, assess, border_box, classify, quality_score

PHOTO = "st_pauls_cathedral__1.jpg"


@pytest.fixture(scope="module")
def photo(realsample_dir) -> Image.Image:
    return Image.open(realsample_dir / PHOTO).convert("RGB")


def test_real_landmark_photos_and_postcards_are_good(realsample_dir, realsample_manifest):
    rows = realsample_manifest[realsample_manifest.kind.isin(["landmark", "postcard"])]
    for f in rows.file:
        res = assess(Image.open(realsample_dir / f))
        assert res.label == "good", (f, res.reasons, res.features)
        assert not res.reasons


def _sepia(im: Image.Image) -> Image.Image:
    return ImageOps.colorize(ImageOps.grayscale(im), (45, 25, 5), (250, 235, 200))


def _white_border(im: Image.Image, share: float = 0.06) -> Image.Image:
    return ImageOps.expand(im, int(share * max(im.size)), fill=(250, 248, 240))


def _halftone(im: Image.Image, period: int = 6, strength: float = 30.0) -> Image.Image:
    a = np.asarray(im).astype(np.float32)
    yy, xx = np.mgrid[: a.shape[0], : a.shape[1]]
    dots = np.sin(xx * 2 * np.pi / period) * np.sin(yy * 2 * np.pi / period) * strength
    return Image.fromarray(np.clip(a + dots[..., None], 0, 255).astype(np.uint8))


@pytest.mark.parametrize(
    "variant",
    ["sepia", "grayscale", "sepia_border", "grayscale_border_halftone", "sepia_border_halftone"],
)
def test_postcard_traits_are_not_defects(photo, variant):
    im = {
        "sepia": lambda: _sepia(photo),
        "grayscale": lambda: ImageOps.grayscale(photo).convert("RGB"),
        "sepia_border": lambda: _white_border(_sepia(photo)),
        "grayscale_border_halftone": lambda: _halftone(_white_border(ImageOps.grayscale(photo).convert("RGB"))),
        "sepia_border_halftone": lambda: _halftone(_white_border(_sepia(photo))),
    }[variant]()
    res = assess(im)
    assert res.label == "good", (variant, res.reasons, res.features)
    if "border" in variant:
        assert 0.15 < res.features["border_share"] < 0.35  # the frame is measured, not a defect


def test_degraded_copies_are_bad_with_the_right_reason(photo):
    cases = {
        "blurry": photo.filter(ImageFilter.GaussianBlur(6)),
        "too_dark": Image.new("RGB", photo.size, (0, 0, 0)),
        "blank": Image.new("RGB", photo.size, (236, 230, 214)),
        "too_small": photo.resize((60, 40), Image.LANCZOS),
    }
    for reason, im in cases.items():
        res = assess(im)
        assert res.label == "bad" and reason in res.reasons, (reason, res.reasons, res.features)
    assert "blank" in assess(cases["too_dark"]).reasons  # every reason that applies
    assert "blank" not in assess(cases["blurry"]).reasons  # a blurred view still has content
    # a noisy blank card (paper grain) is still blank
    grain = np.clip(np.random.default_rng(0).normal(228, 2.0, (600, 900, 3)), 0, 255).astype(np.uint8)
    assert "blank" in assess(Image.fromarray(grain)).reasons


def test_extreme_aspect_and_large_border(photo):
    strip = photo.resize((1500, 300))
    assert "extreme_aspect" in assess(strip).reasons
    small_in_frame = ImageOps.expand(photo.resize((300, 220)), 300, fill=(255, 255, 255))
    res = assess(small_in_frame)
    assert "large_border" in res.reasons and res.features["border_share"] > 0.7


def test_border_box_peels_scanner_bed_and_card_margin():
    g = np.full((400, 600), 90, np.uint8)  # grey scanner bed
    g[40:360, 60:540] = 245  # white card margin
    rng = np.random.default_rng(1)
    g[70:330, 90:510] = rng.integers(0, 255, (260, 420))  # the picture
    t, b, l_, r = border_box(g)
    assert abs(t - 70) <= 3 and abs(b - 330) <= 3 and abs(l_ - 90) <= 3 and abs(r - 510) <= 3


def test_thresholds_are_configurable_and_score_prefers_good_sharp_large(photo):
    res = assess(photo)
    strict = QualityThresholds(min_sharpness=res.features["sharpness"] * 2)
    assert "blurry" in classify(res.features, strict)
    big = dict(res.features)
    small = dict(res.features, megapixels=res.features["megapixels"] * 0.36)
    assert quality_score(big, []) > quality_score(small, [])
    assert quality_score(small, []) > quality_score(big, ["blurry"])


def test_contact_sheet_is_small_png_and_markdown(realsample_dir, realsample_manifest):
    import base64

    from vpr_assets.core.curation.contact_sheet import contact_sheet_markdown, contact_sheet_png

    files = realsample_manifest.file.tolist()
    ims = [Image.open(realsample_dir / f) for f in files]
    png = contact_sheet_png(ims, ["blurry,too_dark"] * len(ims))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 200_000
    assert Image.open(__import__("io").BytesIO(png)).width >= 6 * 48
    md = contact_sheet_markdown(ims[:4], ["blurry", "blank", "too_small", "large_border"], title="rejects")
    assert md.startswith("![rejects](data:image/png;base64,") and md.endswith(")")
    assert base64.b64decode(md[len("![rejects](data:image/png;base64,"):-1])[:4] == b"\x89PNG"
