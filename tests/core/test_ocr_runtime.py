"""The ONNX Runtime path reads the same words as EasyOCR's torch modules, and its export cache is
reused, and made again when the file goes missing or is corrupt (real weights, real cards; untimed)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from PIL import Image

from vpr_assets.core.text import ocr_runtime
from vpr_assets.core.text.ocr import CaptionOCR, OcrSettings, models_dir

CARDS = Path(__file__).resolve().parents[2] / "data" / "geo_testset" / "images"
# committed real cards (640 px) whose printed captions EasyOCR reads
CAPTIONED = ["europosts/europosts-63.jpg", "memorias_postaleras/memorias_postaleras-037.jpg", "europosts/europosts-84.jpg"]


def _tokens(text: str) -> list[str]:
    t = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.findall(r"[a-z0-9]+", t)


def test_runtime_is_in_the_settings_hash():
    assert OcrSettings().runtime == "onnx"
    assert OcrSettings(runtime="torch").hash() != OcrSettings().hash()
    assert OcrSettings(int8_recognizer=True).hash() != OcrSettings().hash()
    assert OcrSettings(int8_detector=False).hash() != OcrSettings().hash()
    with pytest.raises(ValueError):
        CaptionOCR(OcrSettings(runtime="tensorflow"))


def test_onnx_reads_the_same_words_as_torch_on_real_cards():
    """The float ONNX path (batched and box by box) gives the torch reference's words and boxes; the
    default (int8 CRAFT) gives its words."""
    plain = dict(other_scripts=())  # Tesseract's part is the same in both; keep the test to EasyOCR
    torch_ocr = CaptionOCR(OcrSettings(runtime="torch", batch_recognition=False, **plain), gpu=False)
    same_boxes = [CaptionOCR(OcrSettings(int8_detector=False, **plain), gpu=False),
                  CaptionOCR(OcrSettings(int8_detector=False, batch_recognition=False, **plain), gpu=False)]
    default = CaptionOCR(OcrSettings(**plain), gpu=False)
    words = 0
    for name in CAPTIONED:
        im = Image.open(CARDS / name).convert("RGB")
        ref = torch_ocr.read(im)
        for other in same_boxes:
            res = other.read(im)
            assert _tokens(res.text) == _tokens(ref.text), (name, ref.text, res.text)
            assert [b.bbox for b in res.boxes] == [b.bbox for b in ref.boxes], name
        res = default.read(im)
        assert _tokens(res.text) == _tokens(ref.text), (name, ref.text, res.text)
        words += len(_tokens(ref.text))
    assert words >= 6  # the cards do carry captions


def test_export_cache_is_reused_and_made_again(tmp_path, monkeypatch):
    src = Path(models_dir())
    session, path = ocr_runtime.onnx_model("recognizer", src, directory=tmp_path)
    assert path.exists() and path.parent == tmp_path and not list(tmp_path.glob(".*.tmp"))
    made = path.stat().st_mtime_ns

    _, again = ocr_runtime.onnx_model("recognizer", src, directory=tmp_path)  # reused, not exported
    assert again == path and path.stat().st_mtime_ns == made

    path.unlink()  # missing: exported again
    _, again = ocr_runtime.onnx_model("recognizer", src, directory=tmp_path)
    assert again == path and path.exists()

    path.write_bytes(b"not an onnx model")  # corrupt: exported again, no crash
    session, again = ocr_runtime.onnx_model("recognizer", src, directory=tmp_path)
    assert again == path and path.stat().st_size > 1_000_000
    assert session.get_inputs()[0].name == "image"

    # other export settings or other weights: another file
    assert ocr_runtime.export_key("recognizer", src / "english_g2.pth", quantize=True) != path.stem.split("-")[1]
    monkeypatch.setattr(ocr_runtime, "EXPORT_VERSION", "onnx-export-test")
    assert ocr_runtime.export_key("recognizer", src / "english_g2.pth") != path.stem.split("-")[1]


def test_without_calibration_cards_the_hash_says_float_detector(monkeypatch):
    from vpr_assets.core.text import ocr as ocr_module

    assert OcrSettings().as_dict()["int8_detector_usable"] is True  # the repo's cards are here
    with_cards = OcrSettings().hash()
    monkeypatch.setattr(ocr_module, "calibration_images", lambda: [])
    assert OcrSettings().as_dict()["int8_detector_usable"] is False
    assert OcrSettings().hash() != with_cards


# committed real cards: no printed text anywhere / a caption printed in the middle, none in the bands
TEXT_FREE = "europosts/europosts-72.jpg"
MIDDLE_CAPTION = "europosts/europosts-60.jpg"
BANDS_WITHOUT_CAPTION = "memorias_postaleras/memorias_postaleras-059.jpg"


def test_the_middle_of_a_card_is_read_only_when_the_probe_finds_text_there():
    """The cheap low-resolution probe skips the middle of a card with no text at all, and still
    reads a caption printed in the middle exactly as reading it unconditionally does."""
    plain = dict(other_scripts=())
    probed, always = CaptionOCR(OcrSettings(**plain), gpu=False), CaptionOCR(OcrSettings(middle_probe_side=0, **plain), gpu=False)
    assert probed.settings_hash != always.settings_hash
    blank = Image.open(CARDS / TEXT_FREE).convert("RGB")
    r, ref = probed.read(blank), always.read(blank)
    assert r.extra.get("middle_probed") and not r.extra.get("middle")  # probed, not read at full size
    assert ref.extra.get("middle") and not ref.extra.get("middle_probed")
    assert r.text == ref.text == ""
    card = Image.open(CARDS / MIDDLE_CAPTION).convert("RGB")
    r, ref = probed.read(card), always.read(card)
    assert r.extra.get("middle_probed") and r.extra.get("middle")
    assert r.text == ref.text
    assert {"kaiser", "franz", "maria"} <= set(_tokens(r.text))
    # bands with boxes but no caption (here only digits): the card has text, its middle is read unprobed
    digits = Image.open(CARDS / BANDS_WITHOUT_CAPTION).convert("RGB")
    r, ref = probed.read(digits), always.read(digits)
    assert r.extra.get("middle") and not r.extra.get("middle_probed")
    assert r.text == ref.text


def test_craft_boxes_are_easyocrs_at_32_and_pad_to_16_rows_by_default():
    """`craft_boxes` with a 32 canvas returns exactly `Reader.detect`'s boxes on real cards (it replaces
    that call only to choose the padding); the default canvas multiple, 16, feeds CRAFT fewer padded rows
    and still finds the caption."""
    import numpy as np

    from vpr_assets.core.text.ocr import craft_boxes

    ocr = CaptionOCR(OcrSettings(other_scripts=()), gpu=False)
    s = ocr.settings
    assert s.detector_canvas_multiple == 16
    assert OcrSettings(detector_canvas_multiple=32).hash() != OcrSettings().hash()
    shapes = []
    net = ocr.reader.detector

    class Recording:
        def __call__(self, x):
            shapes.append(tuple(x.shape[2:]))
            return net(x)

    boxes = 0
    try:
        ocr.reader.detector = Recording()
        for name in CAPTIONED:
            a = np.asarray(Image.open(CARDS / name).convert("RGB"))
            for part in (a, a[-int(0.22 * len(a)) - 17:]):  # the whole card; a bottom band of 16n+1..31 rows
                ref = ocr.reader.detect(part, min_size=s.min_size, text_threshold=s.text_threshold, low_text=s.low_text,
                                        link_threshold=s.link_threshold, canvas_size=max(part.shape[:2]), mag_ratio=1.0,
                                        reformat=False)
                hor, free = craft_boxes(ocr.reader, part, 32, s.text_threshold, s.low_text, s.link_threshold, s.min_size)
                assert [list(b) for b in hor] == [list(b) for b in ref[0][0]], name
                assert str(free) == str(ref[1][0]), name
                boxes += len(hor) + len(free)
                shapes.clear()
                hor16, _ = craft_boxes(ocr.reader, part, 16, s.text_threshold, s.low_text, s.link_threshold, s.min_size)
                (h16, w16), = shapes
                assert h16 % 16 == 0 and h16 - part.shape[0] < 16 and w16 - part.shape[1] < 16
                if part.shape[0] % 32 and part.shape[0] % 32 <= 16:
                    assert h16 < -(-part.shape[0] // 32) * 32  # fewer rows than EasyOCR's canvas
                assert bool(hor16) == bool(ref[0][0]), name  # where EasyOCR's canvas finds the caption, so does this
    finally:
        ocr.reader.detector = net
    assert boxes >= 6
