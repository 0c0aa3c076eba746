"""Script detection and the second OCR engine (Tesseract) for captions EasyOCR's Latin weights cannot read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from vpr_assets.core.text import second_engine
from vpr_assets.core.text.ocr import CaptionOCR, OcrSettings, OcrTools
from vpr_assets.core.text.scripts import char_script, join_tokens, text_script

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
NANUM = Path("/usr/share/fonts/truetype/nanum/NanumMyeongjoBold.ttf")


def needs(*langs: str):
    have = second_engine.usable_languages(langs)
    return pytest.mark.skipif(len(have) < len(langs), reason=f"Tesseract with {langs} not installed "
                              "(scripts/setup_tesseract.sh, run by .ci/run)")


@pytest.mark.parametrize("text, script", [
    ("Москва. Кремль", "cyrillic"), ("金剛山萬物相の展望", "japanese"), ("朝鮮風俗", "han"),
    ("서울 남대문", "hangul"), ("京城 남대문", "hangul"), ("The Salt Seller", "latin"), ("Αθήναι", "greek"),
    ("Wien, Stephansdom 1905", "latin"), ("(12) 3", None), ("", None),
])
def test_text_script(text, script):
    assert text_script(text) == script


def test_char_script_and_joining():
    assert char_script("ж") == "cyrillic" and char_script("の") == "kana" and char_script("7") is None
    # engines give one "word" per CJK character: they join without spaces, other words with one
    assert join_tokens(["(", "俗", "風", "鮮", "朝", ")", "The", "Salt"]) == "( 俗風鮮朝 ) The Salt"
    assert join_tokens(["Москва.", "", "Кремль"]) == "Москва. Кремль"


def _cyrillic_line(text: str, size: int = 34, font_path: Path = DEJAVU) -> np.ndarray:
    font = ImageFont.truetype(str(font_path), size)
    w = int(font.getlength(text)) + 20
    im = Image.new("L", (w, size + 16), 235)
    ImageDraw.Draw(im).text((10, 6), text, fill=20, font=font)
    return np.asarray(im)


@needs("rus", "jpn")
@pytest.mark.skipif(not DEJAVU.exists(), reason="fonts-dejavu-core not installed")
def test_second_engine_reads_cyrillic_and_picks_the_script_per_region():
    crops = [_cyrillic_line("Москва Кремль"), _cyrillic_line("Харьков Вокзал"), np.full((30, 60), 230, np.uint8)]
    got = second_engine.read_regions(crops, ["jpn", "rus"])
    assert got[0] is not None and got[0].lang == "rus" and got[0].script == "cyrillic"
    assert "Москва" in got[0].text and "Кремль" in got[0].text
    assert "Харьков" in got[1].text
    assert got[2] is None  # a blank region: no language reads anything there


@needs("jpn", "chi_tra")
def test_caption_ocr_reads_a_real_japanese_caption(realsample_dir):
    """The Korean-era card 'The Salt Seller' (1910s): an English title between Japanese ones.
    EasyOCR alone turns the Japanese into noise; with the second engine those regions are Han."""
    path = realsample_dir / "none__pc_kp16_salt_seller.jpg"
    if not path.exists():
        pytest.skip("realsample card not available")
    band = Image.open(path).convert("RGB")  # the whole card, as the pipeline reads it
    plain = CaptionOCR(OcrSettings(other_scripts=())).read(band)
    both = CaptionOCR().read(band)
    assert not any(b.script in ("han", "japanese") for b in plain.boxes)
    cjk = [b for b in both.boxes if b.script in ("han", "japanese")]
    assert cjk and all(b.engine.startswith("tesseract:") for b in cjk)
    assert "鮮" in both.text and "朝" in both.text  # 朝鮮 (Korea), printed right to left
    assert "Salt" in both.text and any(b.engine == "easyocr" for b in both.boxes)  # Latin stays EasyOCR's


def test_settings_hash_records_which_languages_this_machine_reads():
    with_engine = OcrSettings().as_dict()["other_scripts_usable"]
    h = OcrSettings().hash()
    missing = OcrTools(tesseract="/nonexistent/tesseract")
    assert OcrSettings().as_dict(missing)["other_scripts_usable"] == []
    assert second_engine.read_regions([np.zeros((20, 20), np.uint8)], ["rus"], command=missing.tesseract) == [None]
    if with_engine:  # a machine without Tesseract writes another hash: cards are re-read once it is there
        assert OcrSettings().hash(missing) != h


def test_the_pipeline_takes_its_ocr_tools_from_the_environment_core_never_reads_it(monkeypatch, tmp_path):
    """VPR_TESSERACT / VPR_OCR_CACHE reach the OCR through vpr_assets.paths (the edge); core's
    defaults ignore them."""
    from vpr_assets.defs.resources import CaptionOcrResource
    from vpr_assets.paths import ocr_tools

    monkeypatch.setenv("VPR_TESSERACT", "/opt/elsewhere/tesseract")
    monkeypatch.setenv("VPR_OCR_CACHE", str(tmp_path / "exports"))
    assert ocr_tools() == OcrTools("/opt/elsewhere/tesseract", tmp_path / "exports")
    assert CaptionOcrResource().tools == ocr_tools()
    assert CaptionOcrResource(tesseract="tess2").tools.tesseract == "tess2"
    assert OcrTools() == OcrTools("tesseract", None)
    monkeypatch.delenv("VPR_OCR_CACHE")
    monkeypatch.setenv("VPR_HOME", str(tmp_path / "home"))
    assert ocr_tools().export_cache == tmp_path / "home" / "cache" / "ocr"


@needs("rus")
def test_a_failing_second_engine_keeps_the_easyocr_reading(tmp_path, realsample_dir):
    path = realsample_dir / "none__pc_kp16_salt_seller.jpg"
    if not path.exists():
        pytest.skip("realsample card not available")
    band = Image.open(path).convert("RGB")
    fake = tmp_path / "tesseract"  # lists the languages, then crashes on every page
    fake.write_text("#!/bin/sh\nif [ \"$1\" = --list-langs ]; then printf 'List\\nrus\\njpn\\nchi_tra\\nkor\\n'; "
                    "exit 0; fi\necho 'segfault' >&2\nexit 139\n")
    fake.chmod(0o755)
    res = CaptionOCR(tools=OcrTools(tesseract=str(fake))).read(band)
    assert "segfault" in res.extra["second_engine_error"]
    assert "Salt" in res.text and all(b.engine == "easyocr" for b in res.boxes)


def test_distinctive_letters_ignore_latin_lookalikes():
    """A Cyrillic reading of Latin print ("ХОР" for "XOP") shows no letter Latin print cannot explain."""
    from vpr_assets.core.text.scripts import distinctive_letters

    assert distinctive_letters("хор ХОР", "cyrillic") == 0
    assert distinctive_letters("Москва", "cyrillic") == 2  # к, в; М, о, с, а have Latin look-alikes
    assert distinctive_letters("金剛山の展望", "japanese") == 6 and distinctive_letters("abc", "han") == 0


@needs("rus", "eng")
def test_latin_print_that_easyocr_reads_poorly_stays_latin():
    """A real card printed "Hôtel de Ville / Rathaus / The Townhall": EasyOCR is unsure of the French
    line, and the Cyrillic model reads it as "Нб+е! ае Уше". A Latin model reading the same region
    (`latin_competitor`) is surer, so the region stays Latin."""
    card = Path(__file__).resolve().parents[2] / "data" / "geo_testset" / "images" / "europosts" / "europosts-63.jpg"
    im = Image.open(card).convert("RGB")
    without = CaptionOCR(OcrSettings(latin_competitor=())).read(im)
    with_it = CaptionOCR().read(im)
    assert any(b.script == "cyrillic" for b in without.boxes)  # the failure the competitor prevents
    assert not any(b.script not in (None, "latin") for b in with_it.boxes)
    assert "Rathaus" in with_it.text and "Townhall" in with_it.text
    assert OcrSettings(latin_competitor=()).hash() != OcrSettings().hash()


@needs("rus", "eng")
def test_a_sure_latin_reading_replaces_easyocrs_poor_one():
    """Old French print that EasyOCR's English weights read as "Chatcau dc Ia MALMAISON Tronc dc
    Napolion": where the Latin model reads a region surely, and surer than EasyOCR, its reading
    replaces EasyOCR's. Scored against the card's transcription in data/caption_truth."""
    import csv
    import re
    import unicodedata

    root = Path(__file__).resolve().parents[2]
    name = "images/europosts/europosts-38.jpg"
    with open(root / "data" / "caption_truth" / "captions.tsv", encoding="utf-8") as f:
        caption = next(r["caption"] for r in csv.DictReader(f, delimiter="\t") if r["file"] == name)

    def words(text: str) -> set[str]:
        folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
        return {w for w in re.findall(r"[a-z0-9]+", folded) if len(w) >= 2}

    im = Image.open(root / "data" / "geo_testset" / name).convert("RGB")
    kept = CaptionOCR(OcrSettings(latin_reading_min_confidence=0.0)).read(im)  # EasyOCR's reading stays
    replaced = CaptionOCR().read(im)
    assert not any(b.engine.startswith("tesseract") for b in kept.boxes)
    latin = [b for b in replaced.boxes if b.engine == "tesseract:eng"]
    assert latin and all(b.script == "latin" and b.confidence >= 0.5 for b in latin)
    assert len(words(caption) & words(replaced.text)) >= len(words(caption) & words(kept.text)) + 2
    assert "napoleon" in words(replaced.text) and "napoleon" not in words(kept.text)
    assert OcrSettings(latin_reading_min_confidence=0.0).hash() != OcrSettings().hash()


def _latin_line(text: str, size: int = 34) -> np.ndarray:
    return _cyrillic_line(text, size)  # DejaVu draws both scripts


@pytest.fixture
def tesseract_calls(monkeypatch) -> list[tuple[str, int]]:
    """(language, lines) of every in-process Tesseract read, in order (the reads themselves are real)."""
    if not second_engine.in_process_tessdata("tesseract"):
        pytest.skip("the installed libtesseract is not the command's own")
    calls: list[tuple[str, int]] = []
    real = second_engine._read_in_process

    def counting(tessdata, lines, lang):
        calls.append((lang, len(lines)))
        return real(tessdata, lines, lang)

    monkeypatch.setattr(second_engine, "_read_in_process", counting)
    return calls


@needs("rus", "jpn", "eng")
@pytest.mark.skipif(not DEJAVU.exists(), reason="fonts-dejavu-core not installed")
def test_a_region_the_latin_model_reads_surely_skips_the_other_scripts(tesseract_calls):
    """`first` languages read first; a crop one of them reads at `settle_at` or surer is not given
    to the others, while a Cyrillic line (which the English model reads poorly) still is."""
    crops = [_latin_line("Hotel de Ville"), _cyrillic_line("Москва Кремль")]
    calls = tesseract_calls
    got = second_engine.read_regions(crops, ["jpn", "rus", "eng"], first=("eng",), settle_at=0.85)
    assert calls[0] == ("eng", 2)  # the Latin model reads first, every crop
    assert calls[1:] == [("jpn", 1), ("rus", 1)]  # then only the unsettled Cyrillic line
    assert got[0].lang == "eng" and got[0].confidence >= 0.85
    assert got[1].lang == "rus" and "Москва" in got[1].text
    calls.clear()
    again = second_engine.read_regions(crops, ["jpn", "rus", "eng"])  # no `first`: every language reads every crop
    assert sorted(calls) == [("eng", 2), ("jpn", 2), ("rus", 2)]
    assert again[1].text == got[1].text


@needs("jpn", "chi_tra", "kor")
def test_small_japanese_print_is_kept_at_the_lower_cjk_bar(realsample_dir):
    """A real Korean-era card (Mount Kumgang) with a block of small Japanese print at the top right:
    Tesseract reads its lines with a mean confidence near 0.4, under the 0.6 bar of other scripts.
    Han and kana readings count from `cjk_min_confidence` (0.4), so they are kept."""
    path = realsample_dir / "mount_kumgang__pc2.jpg"
    if not path.exists():
        pytest.skip("realsample card not available")
    im = Image.open(path).convert("RGB")
    printed = set("淡の潭八上るむ極を奇怪態変町五十蜒蜿し立聳に右左帶峯ばれる入を足に谷")  # the first two lines, by eye
    strict = CaptionOCR(OcrSettings(cjk_min_confidence=0.6)).read(im)
    kept = CaptionOCR().read(im)
    assert OcrSettings().cjk_min_confidence < OcrSettings().other_scripts_min_confidence
    assert not any(b.script in ("han", "japanese") for b in strict.boxes)  # the loss the lower bar mends
    cjk = "".join(b.text for b in kept.boxes if b.script in ("han", "japanese"))
    assert len(printed & set(cjk)) >= 8  # of the 34 distinct characters printed
    assert "SAIKA" in kept.text  # the English caption stays EasyOCR's


@needs("kor", "eng")
def test_a_hangul_reading_with_lone_jamo_is_not_kept(monkeypatch):
    """A real card titled "Innsbruck gegen Süden", whose caption EasyOCR reads as "Jnnsbauch oLGEN SUDEN"
    (0.16): Tesseract's Korean model spells the region as "바 115680 대ㅁㄷㅁ타 10103 내" at 0.42. Printed
    Korean sets composed syllables, so a reading with stand-alone jamo is not a reading."""
    card = Path(__file__).resolve().parents[2] / "data" / "geo_testset" / "images" / "europosts" / "europosts-21.jpg"
    im = Image.open(card).convert("RGB")
    guarded = CaptionOCR().read(im)
    assert not any(b.script == "hangul" for b in guarded.boxes)
    monkeypatch.setattr(second_engine, "LONE_JAMO", frozenset())
    unguarded = CaptionOCR(OcrSettings(cjk_gate="")).read(im)  # Korean reads every region, as before the gate
    hangul = [b.text for b in unguarded.boxes if b.script == "hangul"]
    assert hangul and any(c in "ㅁㄷㅠ" for t in hangul for c in t)  # the failure the guard prevents


@needs("jpn", "chi_tra", "kor", "rus", "eng")
@pytest.mark.skipif(not (DEJAVU.exists() and NANUM.exists()), reason="fonts-dejavu-core or fonts-nanum not installed")
def test_chinese_and_korean_read_only_where_japanese_sees_cjk_letters(tesseract_calls):
    """Chinese and Korean models (22 ms a region each) read only the regions where Japanese, read
    before them, finds a Han, kana or Hangul letter: it reads Hangul print as Han-like strokes, so a
    Hangul line still reaches Korean, while Latin and Cyrillic print do not reach either."""
    crops = [_latin_line("Hotel de Vilie 1905"), _cyrillic_line("Москва Кремль"),
             _cyrillic_line("경성 남대문", font_path=NANUM)]
    calls = tesseract_calls
    langs = ["jpn", "chi_tra", "kor", "rus"]
    gated = second_engine.read_regions(crops, langs, cjk_gate="jpn", gated=("chi_tra", "kor"))
    assert calls[0] == ("jpn", 3)
    assert dict(calls)["kor"] == 1 and dict(calls)["chi_tra"] == 1  # the Hangul line only
    assert dict(calls)["rus"] == 3  # ungated languages read every region
    assert gated[2] is not None and gated[2].lang == "kor" and "남대문" in gated[2].text
    assert gated[1].lang == "rus" and "Москва" in gated[1].text
    calls.clear()
    every = second_engine.read_regions(crops, langs)  # no gate: every language reads every region
    assert sorted(calls) == [("chi_tra", 3), ("jpn", 3), ("kor", 3), ("rus", 3)]
    assert [r.text if r else None for r in every] == [r.text if r else None for r in gated]
    calls.clear()
    second_engine.read_regions(crops, ["chi_tra", "kor", "rus"], cjk_gate="jpn", gated=("chi_tra", "kor"))
    assert sorted(calls) == [("chi_tra", 3), ("kor", 3), ("rus", 3)]  # no Japanese model here: no gate


@needs("jpn", "chi_tra", "kor", "eng")
def test_caption_ocr_gates_only_its_first_tesseract_pass(monkeypatch):
    """CaptionOCR passes its `cjk_gate` to the first pass over a card's unsure regions (every script
    competes there), and `cjk_gate=""` turns it off. A real card whose caption EasyOCR reads poorly
    ("Innsbruck gegen Süden") sends its regions to that pass."""
    from vpr_assets.core.text import ocr as ocr_module

    card = Path(__file__).resolve().parents[2] / "data" / "geo_testset" / "images" / "europosts" / "europosts-21.jpg"
    im = Image.open(card).convert("RGB")
    seen: list[tuple[tuple[str, ...], str | None]] = []
    real = ocr_module.read_regions

    def spy(crops, langs, **kw):
        seen.append((tuple(kw.get("first", ())), kw.get("cjk_gate")))
        assert not kw.get("cjk_gate") or set(kw["gated"]) == {"chi_tra", "kor"}
        return real(crops, langs, **kw)

    monkeypatch.setattr(ocr_module, "read_regions", spy)
    CaptionOCR().read(im)
    assert seen and seen[0] == (("eng",), "jpn")
    assert all(gate is None for first, gate in seen[1:])  # a card's second pass reads its sure script ungated
    seen.clear()
    CaptionOCR(OcrSettings(cjk_gate="")).read(im)
    assert seen and seen[0] == (("eng",), None)
