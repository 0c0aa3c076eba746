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
    assert OcrSettings(int8_recognizer=False).hash() != OcrSettings().hash()
    assert OcrSettings(int8_detector=False).hash() != OcrSettings().hash()
    with pytest.raises(ValueError):
        CaptionOCR(OcrSettings(runtime="tensorflow"))


def test_onnx_reads_the_same_words_as_torch_on_real_cards():
    """The float ONNX path (batched and box by box) gives the torch reference's words and boxes; the
    default (int8 CRAFT and int8 recogniser convolutions) gives its words."""
    plain = dict(other_scripts=())  # Tesseract's part is the same in both; keep the test to EasyOCR
    torch_ocr = CaptionOCR(OcrSettings(runtime="torch", batch_recognition=False, **plain), gpu=False)
    floats = dict(int8_detector=False, int8_recognizer=False, **plain)
    same_boxes = [CaptionOCR(OcrSettings(**floats), gpu=False),
                  CaptionOCR(OcrSettings(batch_recognition=False, **floats), gpu=False)]
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


def test_int8_recogniser_is_static_int8_and_reads_the_float_words(tmp_path):
    """`int8_recognizer`: the recogniser's convolutions in static int8 (calibrated on the committed
    calibration cards' crops, exported once into the cache); on real captions it reads what the float
    recogniser reads, give or take a letter."""
    import easyocr
    import onnx

    from vpr_assets.core.text.ocr import OcrTools

    # the export itself, on a fresh Reader (CaptionOCR's readers are shared per process, so another
    # test may already hold one): an int8 file beside the float one, no half-written leftovers
    fresh = easyocr.Reader(["en"], gpu=False, quantize=False, model_storage_directory=models_dir(),
                           download_enabled=False, verbose=False)
    ocr_runtime.use_onnx(fresh, Path(models_dir()), quantize_recognizer=True, directory=tmp_path, threads=1)
    key = ocr_runtime.export_key("recognizer", Path(models_dir()) / "english_g2.pth", True)
    nodes = [n.op_type for n in onnx.load(str(tmp_path / f"recognizer-{key}.onnx")).graph.node]
    assert "DequantizeLinear" in nodes and "Conv" in nodes and "LSTM" in nodes  # convolutions int8, LSTM float
    assert not list(tmp_path.glob("*.pre.onnx")) and not list(tmp_path.glob(".*.tmp"))

    plain = dict(other_scripts=())
    tools = OcrTools(export_cache=tmp_path)
    float_ocr = CaptionOCR(OcrSettings(int8_recognizer=False, **plain), gpu=False, tools=tools)
    int8_ocr = CaptionOCR(OcrSettings(int8_recognizer=True, **plain), gpu=False, tools=tools)
    assert int8_ocr.reader.recognizer.session is not float_ocr.reader.recognizer.session
    same = total = 0
    for name in CAPTIONED:
        im = Image.open(CARDS / name).convert("RGB")
        ref, got = _tokens(float_ocr.read(im).text), set(_tokens(int8_ocr.read(im).text))
        same += sum(w in got for w in ref)
        total += len(ref)
    assert total >= 6 and same >= 0.9 * total
    assert OcrSettings().as_dict()["int8_recognizer_usable"] is True  # the default
    assert OcrSettings(int8_recognizer=False).as_dict()["int8_recognizer_usable"] is False
    with pytest.raises(ValueError, match="calibrated"):
        ocr_runtime.onnx_model("recognizer", Path(models_dir()), quantize=True, directory=tmp_path)
