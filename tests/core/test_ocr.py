"""Real EasyOCR (offline weights) on captions rendered onto the real sample photos."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vpr_assets.core.text.geowords import GeoWordExtractor
from vpr_assets.core.text.ocr import CaptionOCR, OcrBox, OcrSettings, models_dir, reading_order, to_rgb_array
from vpr_assets.core.text.synth import available_fonts, render_caption, synthetic_set


def _tokens(text: str) -> list[str]:
    t = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.findall(r"[a-z0-9]+", t)


def _photos(realsample_dir: Path) -> list[Path]:
    return sorted(p for p in realsample_dir.glob("*__[0-9].jpg"))


@pytest.fixture(scope="module")
def ocr():
    return CaptionOCR()


def test_offline_weights_present():
    names = set(os.listdir(models_dir()))
    assert {"craft_mlt_25k.pth", "english_g2.pth"} <= names


def test_settings_hash_tracks_settings():
    a, b = OcrSettings(), OcrSettings(det_max_side=800)
    assert a.hash() == OcrSettings().hash() and a.hash() != b.hash()
    assert a.as_dict()["det_max_side"] == 640 and a.as_dict()["langs"] == ["en"]


def test_reading_order_lines_then_left_to_right():
    boxes = [OcrBox("Bridge", 0.9, (300, 102, 400, 130)), OcrBox("LONDON", 0.9, (10, 100, 120, 128)),
             OcrBox("Tower", 0.9, (150, 98, 260, 131)), OcrBox("No. 12", 0.9, (10, 10, 60, 30))]
    ordered = reading_order(boxes)
    assert [b.text for b in ordered] == ["No. 12", "LONDON", "Tower", "Bridge"]
    assert [b.line for b in ordered] == [0, 1, 1, 1]


def test_input_conversion():
    grey = np.full((20, 30), 200, np.uint8)
    assert to_rgb_array(grey).shape == (20, 30, 3)
    assert to_rgb_array(np.zeros((20, 30, 4), np.uint8)).shape == (20, 30, 3)
    assert to_rgb_array(Image.new("L", (30, 20))).shape == (20, 30, 3)
    with pytest.raises(ValueError):
        to_rgb_array(np.zeros((2, 3, 5), np.uint8))


def test_reads_a_caption_on_a_real_photo(ocr, realsample_dir):
    """Fast real-OCR check: one small captioned photo, PIL and numpy input, boxes and place."""
    photo = Image.open(realsample_dir / "london_bridge__3.jpg").convert("RGB")
    photo.thumbnail((640, 640))
    im = render_caption(photo, "LONDON - Tower Bridge", font_path=available_fonts()[0], size_frac=0.07, seed=1)
    res = ocr.read(im)
    assert {"london", "tower", "bridge"} <= set(_tokens(res.text)), res.text
    assert res.settings_hash == OcrSettings().hash() and res.width == im.width
    for b in res.boxes:
        x0, y0, x1, y1 = b.bbox
        assert 0 <= x0 < x1 <= im.width and 0 <= y0 < y1 <= im.height and 0 < b.confidence <= 1
    cap = [b for b in res.boxes if "london" in b.text.lower()][0]
    assert cap.bbox[1] > photo.height * 0.8  # the caption band sits under the photo
    places = GeoWordExtractor().extract(res.text)["places"]
    assert ("London", "GB") in [(p["name"], p["country"]) for p in places]
    assert ocr.read(np.asarray(im)).text == res.text


@pytest.mark.slow
def test_caption_word_and_place_accuracy(ocr, realsample_dir):
    """10 captions x fonts, sizes, top/bottom/on-photo, sepia and noise; prints the accuracies."""
    cases = synthetic_set(_photos(realsample_dir), 10, seed=3)
    ex = GeoWordExtractor()
    hit = tot = place_ok = 0
    misses = []
    for im, cap, city, cc in cases:
        text = ocr.read(im).text
        want, got = _tokens(cap), set(_tokens(text))
        hit += sum(w in got for w in want)
        tot += len(want)
        found = [(p["name"], p["country"]) for p in ex.extract(text)["places"] if p["kind"] == "city"]
        if (city, cc) in found:
            place_ok += 1
        else:
            misses.append((cap, text, found))
    word_acc, place_acc = hit / tot, place_ok / len(cases)
    print(f"\nOCR word accuracy {word_acc:.1%} ({hit}/{tot}), place accuracy {place_acc:.0%} "
          f"({place_ok}/{len(cases)}); misses: {misses}")
    assert word_acc >= 0.85
    assert place_acc >= 0.8


@pytest.mark.slow
def test_photo_without_text_reads_little(ocr, realsample_dir):
    res = ocr.read(Image.open(realsample_dir / "none__cat_chelsea.png"))
    assert len(_tokens(res.text)) <= 2, res.text
