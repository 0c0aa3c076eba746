"""Tesseract in this process (core/text/tesseract_api.py) reads exactly what the `tesseract` command
reads, on regions of real committed cards and a rendered Cyrillic line; OpenMP is serial only while
it reads; a language it cannot load is an engine error, not a crash (real library, untimed)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from vpr_assets.core.text import second_engine, tesseract_api
from vpr_assets.core.text.ocr import CaptionOCR, OcrSettings

CARDS = Path(__file__).resolve().parents[2] / "data" / "geo_testset" / "images"
REAL = ["europosts/europosts-63.jpg", "memorias_postaleras/memorias_postaleras-037.jpg", "europosts/europosts-84.jpg",
        "harmsway/harmsway-a38.jpg", "harmsway/harmsway-a40.jpg", "coleccion_mc"]  # a folder: its first two cards
LANGS = ("jpn", "chi_tra", "kor", "rus")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")

pytestmark = pytest.mark.skipif(
    second_engine.in_process_tessdata() is None or len(second_engine.usable_languages(LANGS)) < len(LANGS),
    reason="Tesseract with jpn, chi_tra, kor, rus and its library not installed (scripts/setup_tesseract.sh)")


def _real_regions() -> list[np.ndarray]:
    """Grey crops of every region EasyOCR finds on the committed cards, as the second engine gets them."""
    ocr = CaptionOCR(OcrSettings(other_scripts=(), min_confidence=0.0, caption_first=False), gpu=False)
    crops = []
    paths = [p for name in REAL for p in ([CARDS / name] if name.endswith(".jpg") else sorted((CARDS / name).glob("*.jpg"))[:2])]
    for path in paths:
        if not path.exists():
            continue
        grey = np.asarray(Image.open(path).convert("L"))
        for b in ocr.read(Image.open(path).convert("RGB")).boxes:
            x0, y0, x1, y1 = b.bbox
            m = int(0.15 * (y1 - y0))
            crops.append(grey[max(0, y0 - m):y1 + m + 1, max(0, x0 - m):x1 + m + 1])
    return crops


def _line(text: str) -> np.ndarray:
    font = ImageFont.truetype(str(DEJAVU), 34)
    im = Image.new("L", (int(font.getlength(text)) + 20, 50), 235)
    ImageDraw.Draw(im).text((10, 6), text, fill=20, font=font)
    return np.asarray(im)


def test_in_process_reads_exactly_what_the_command_reads(monkeypatch):
    crops = _real_regions()
    if DEJAVU.exists():
        crops.append(_line("Москва Кремль"))
    assert len(crops) >= 10
    command = second_engine.read_regions(crops, LANGS, in_process=False)

    def no_command(*args, **kwargs):
        raise AssertionError("the in-process path ran the command")

    monkeypatch.setattr(second_engine, "_read_with_command", no_command)  # the library must do the reading
    library = second_engine.read_regions(crops, LANGS, in_process=True)
    assert library == command  # text, language, script and confidence, region by region
    assert sum(r is not None for r in library) >= 3  # the comparison is not of empty readings
    if DEJAVU.exists():
        assert library[-1].lang == "rus" and "Москва" in library[-1].text


def test_readers_are_kept_and_lent_to_one_thread_at_a_time():
    tessdata = second_engine.in_process_tessdata()
    with tesseract_api.line_reader(tessdata, "rus") as first:
        with tesseract_api.line_reader(tessdata, "rus") as second:
            assert first is not second  # held: another thread (or call) gets its own
    with tesseract_api.line_reader(tessdata, "rus") as again:
        assert again in (first, second)  # given back: loaded once, not per card


def test_openmp_is_serial_only_while_tesseract_reads():
    omp = tesseract_api._openmp()
    if omp is None:
        pytest.skip("this libtesseract runs without OpenMP")
    before = omp.omp_get_max_active_levels()
    inside, release = [], threading.Event()

    def hold():
        with tesseract_api.serial_openmp():
            inside.append(omp.omp_get_max_active_levels())
            release.wait(10)
        inside.append(omp.omp_get_max_active_levels())

    t = threading.Thread(target=hold)
    t.start()
    while not inside:
        pass
    with tesseract_api.serial_openmp():  # a second reader at the same time, in this thread
        assert omp.omp_get_max_active_levels() == 0
    release.set()
    t.join()
    assert inside[0] == 0 and inside[1] == before  # serial while reading, restored in the reading thread
    assert omp.omp_get_max_active_levels() == before  # and here, after both are done
    fresh = []
    t = threading.Thread(target=lambda: fresh.append(omp.omp_get_max_active_levels()))
    t.start()
    t.join()
    assert fresh == [before]  # and for threads started afterwards


def test_a_language_the_library_cannot_load_is_an_engine_error():
    with pytest.raises(tesseract_api.TesseractLibraryError, match="nosuchlang"):
        tesseract_api.LineReader(second_engine.in_process_tessdata(), "nosuchlang")
    with pytest.raises(second_engine.SecondEngineError):
        second_engine._read_in_process(second_engine.in_process_tessdata(), [np.zeros((20, 60), np.uint8)],
                                       "nosuchlang")
    with pytest.raises(ValueError):
        tesseract_api.LineReader(second_engine.in_process_tessdata(), "rus").words(np.zeros((4, 4, 3), np.uint8))
