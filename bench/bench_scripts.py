"""Captions in any script: word recall per script, EasyOCR alone vs EasyOCR + the second engine.

Real cards only, each OCR'd twice in one run (`OcrSettings(other_scripts=())`, then the default
Tesseract languages), alternating card by card:

- cyrillic: data/script_testset (Soviet/Belarusian postcards, envelopes and 1874 menus; not
  redistributable, so rendered locally: `python scripts/build_script_testset.py --all DIR`, then
  `--cyrillic DIR`). Recall against the source's title (often Russian where the print is
  Belarusian) and against the printed text transcribed by eye (`notes`, the quoted strings).
- cyrillic covers (held out): 15 scans of Russian book covers of 1893-2005 from a private library
  catalogue (VShilenkov/hobby_lit), added 2026-12-02 and never used to choose any setting; `--only
  cyrillic` reads them too, reported as their own set.
- japanese: the 28 hand-coloured Yokohama postcards of data/script_testset (Ferris University
  Library, about 1900-1925; rendered like the Cyrillic items), against the library's caption and
  the printed caption read by eye; never looked at while any OCR setting was chosen (held out).
- japanese (realsample): the three Korean-era cards of ../shared/data/realsample with Japanese
  captions, transcribed by eye (data/script_testset/realsample_captions.tsv).
  Character recall for both.
- latin: the committed cards of data/geo_testset against the curators' titles (a check that the
  second engine costs no Latin words), `--latin N` of them.
- korean (rendered): no real Korean set was found in four searches (data/script_testset/SOURCES.md), so
  `--korean N` renders N Hangul place captions of the period with the Nanum fonts (Debian's fonts-nanum,
  installed by scripts/setup_tesseract.sh) onto the real landmark photos of ../shared, as bench_ocr
  renders Latin ones: a check that Korean print is read at all, not a figure for real cards.

Word recall: share of the truth's words (folded, 3+ letters) found among the OCR words; for Han,
kana and Hangul, which are written without spaces, the share of the truth's characters found, and
("pairs") of its adjacent character pairs: the stricter figure where a page's body text holds many
of a title's characters anyway (the Chinese leaflets).

    .venv/bin/python bench/bench_scripts.py --rendered /tmp/script_testset_all --latin 40
    .venv/bin/python bench/bench_scripts.py --rendered /tmp/script_testset_all --only japanese --latin 0
    .venv/bin/python bench/bench_scripts.py --korean 24 --only korean --latin 0
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

from vpr_assets.core.text.normalize import fold  # noqa: E402
from vpr_assets.core.text.ocr import CaptionOCR, OcrSettings  # noqa: E402
from vpr_assets.core.text.scripts import CJK_LETTERS, char_script  # noqa: E402
from vpr_assets.core.text.second_engine import usable_languages  # noqa: E402
from vpr_assets.paths import ocr_tools  # noqa: E402


def words(text: str) -> list[str]:
    return [w for w in fold(text).split() if len(w) >= 3 and not w.isdigit()]


def recall(truth: str, got: str) -> tuple[int, int]:
    """(found, wanted): words for spaced scripts, characters for CJK."""
    cjk = [c for c in truth if char_script(c) in CJK_LETTERS]
    if cjk:
        have = Counter(c for c in got if char_script(c) in CJK_LETTERS)
        want = Counter(cjk)
        return sum(min(n, have[c]) for c, n in want.items()), len(cjk)
    want, have = words(truth), set(words(got))
    return sum(w in have for w in want), len(want)


def pair_recall(truth: str, got: str, either_way: bool = False) -> tuple[int, int]:
    """(found, wanted) of the truth's adjacent CJK character pairs among the OCR text's: on a page
    that also carries body text, a title's single characters are often found in the body by chance,
    its pairs much less often. `either_way`: each CJK run of the OCR text also counts read backwards
    (pre-1945 horizontal captions are printed right to left, and Tesseract reads every line left to
    right; `geo_words` tries both directions too)."""
    def pairs(text: str, backwards: bool = False) -> Counter:
        cjk = "".join(c if char_script(c) in CJK_LETTERS else " " for c in text)
        runs = [w[::-1] if backwards else w for w in cjk.split()]
        return Counter(w[i:i + 2] for w in runs for i in range(len(w) - 1))
    want, have = pairs(truth), pairs(got)
    if either_way:
        have |= pairs(got, backwards=True)
    return sum(min(n, have[p]) for p, n in want.items()), sum(want.values())


def printed_text(notes: str) -> str:
    """The quoted strings of a script_testset `notes` field (what is printed, read by eye)."""
    return " ".join(re.findall(r"'([^']+)'", notes.split(";")[0]))


# a source of the script_testset reported as a set of its own (after the script's name)
SOURCE_SETS = {"VShilenkov/hobby_lit": " covers (held out)"}

NANUM = Path("/usr/share/fonts/truetype/nanum")
NANUM_FONTS = ("NanumMyeongjoBold.ttf", "NanumGothic.ttf", "NanumMyeongjo.ttf", "NanumGothicBold.ttf")
HANGUL_CAPTIONS = ("경성 남대문", "평양 대동문", "부산 해운대 해수욕장", "금강산 구룡폭포", "서울 경복궁 근정전",
                   "경주 불국사", "인천 제물포 항구", "수원 화성 팔달문", "대구 달성공원", "개성 선죽교",
                   "목포 유달산", "전주 풍남문")


def korean_rendered(shared: Path, n: int) -> list:
    """n Hangul captions rendered onto real landmark photos: fonts, sizes, positions (under, over,
    on the picture), sepia and noise cycle as in bench_ocr's Latin set."""
    from PIL import Image

    from vpr_assets.core.text.synth import render_caption

    fonts = [NANUM / f for f in NANUM_FONTS if (NANUM / f).exists()]
    photos = sorted(p for p in shared.glob("*.jpg") if "__pc" not in p.name and not p.name.startswith("none"))
    if not fonts or not photos:
        sys.exit("--korean needs fonts-nanum (scripts/setup_tesseract.sh) and the realsample photos")
    out = []
    for i in range(n):
        cap = HANGUL_CAPTIONS[i % len(HANGUL_CAPTIONS)]
        im = render_caption(Image.open(photos[i % len(photos)]).convert("RGB"), cap, font_path=str(fonts[i % len(fonts)]),
                            size_frac=(0.04, 0.05, 0.06)[i % 3], position=("bottom", "top", "over")[(i // 3) % 3],
                            sepia_strength=(0.0, 0.7)[i % 2], noise=(3.0, 8.0)[(i // 2) % 2], seed=i)
        out.append(("korean (rendered)", im, {"title": cap}))
    return out


def cases(args) -> list[tuple]:
    """(set, image path or rendered image, {truth kind: text}) per card."""
    out = []
    only = set(args.only.split(",")) if args.only else None
    if args.rendered:
        with open(ROOT / "data/script_testset/MANIFEST.tsv", encoding="utf-8") as f:
            for r in csv.DictReader(f, delimiter="\t"):
                p = Path(args.rendered) / f"{r['id']}.jpg"
                if p.exists() and (only is None or r["script"] in only):
                    name = r["script"] + SOURCE_SETS.get(r["source_repo"].split("@")[0], "")
                    out.append((name, p, {"title": r["title"], "printed": printed_text(r["notes"])}))
    shared = Path(args.shared)
    with open(ROOT / "data/script_testset/realsample_captions.tsv", encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if (shared / r["file"]).exists() and (only is None or r["script"] in only):
                out.append((f"{r['script']} (realsample)", shared / r["file"], {"printed": r["printed"]}))
    with open(ROOT / "data/geo_testset/MANIFEST.tsv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["committed"] == "yes"]
    for r in rows[args.latin_from: args.latin_from + args.latin]:
        out.append(("latin", ROOT / "data/geo_testset" / r["file"], {"title": r["title"]}))
    if args.korean and (only is None or "korean" in only):
        out += korean_rendered(shared, args.korean)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rendered", "--cyrillic", dest="rendered",
                    help="folder with the rendered script_testset (build script --all DIR): Cyrillic and Japanese items")
    ap.add_argument("--only", help="comma-separated scripts of the script_testset to read (e.g. japanese)")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data" / "realsample"))
    ap.add_argument("--latin", type=int, default=40, help="number of committed geo_testset cards")
    ap.add_argument("--tesseract-command", action="store_true",
                    help="run Tesseract as a command per language (as before 2026-12-01) instead of in process")
    ap.add_argument("--variant", help="also read every card with these OcrSettings changes (JSON), a third column: "
                    "e.g. '{\"latin_competitor\": []}'")
    ap.add_argument("--latin-from", type=int, default=0, help="skip this many committed geo_testset cards first "
                    "(--latin-from 40 --latin 71: the committed cards the first 40 leave out)")
    ap.add_argument("--korean", type=int, default=0, help="also N Hangul captions rendered onto real photos "
                    "(no real Korean set exists here); `--only korean` for these alone")
    args = ap.parse_args()
    from PIL import Image

    def load(source):
        return source if isinstance(source, Image.Image) else Image.open(source).convert("RGB")

    todo = cases(args)
    if not todo:
        sys.exit("no cards found")
    tools = ocr_tools()  # $VPR_TESSERACT, $VPR_OCR_CACHE as the pipeline reads them
    if args.tesseract_command:
        tools = replace(tools, tesseract_in_process=False)
    langs = usable_languages(OcrSettings().other_scripts, tools.tesseract)
    print(f"second engine languages here: {', '.join(langs) or 'none (Tesseract missing)'}")
    modes = {"easyocr": CaptionOCR(OcrSettings(other_scripts=()), tools=tools), "easyocr+tesseract": CaptionOCR(tools=tools)}
    if args.variant:
        changes = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(args.variant).items()}
        modes["variant"] = CaptionOCR(replace(OcrSettings(), **changes), tools=tools)
    for ocr in modes.values():  # warm both (model loads) on the first card
        ocr.read(load(todo[0][1]))
    found: dict = Counter()
    secs: dict = Counter()
    n_cards: dict = Counter()
    scripts_seen: dict = Counter()
    for script, path, truths in todo:
        im = load(path)
        n_cards[script] += 1
        for mode, ocr in modes.items():
            t0 = time.perf_counter()
            res = ocr.read(im)
            secs[script, mode] += time.perf_counter() - t0
            for kind, truth in truths.items():
                if truth:
                    f, w = recall(truth, res.text)
                    found[script, mode, kind, "found"] += f
                    found[script, mode, kind, "wanted"] += w
                    for label, either in (("pairs", False), ("pairs 2 ways", True)):
                        f, w = pair_recall(truth, res.text, either)
                        found[script, mode, f"{kind} {label}", "found"] += f
                        found[script, mode, f"{kind} {label}", "wanted"] += w
            if mode != "easyocr":
                scripts_seen.update(f"{mode}: {script}->{b.script}" for b in res.boxes if b.engine != "easyocr")
    variant = "variant" in modes
    print(f"\n{'set':20} {'cards':>5} {'truth':20} {'units':>5} {'EasyOCR':>8} {'+Tesseract':>10} {'s/card':>7} {'s/card+T':>8}"
          + (f" {'variant':>8} {'s/card+V':>8}" if variant else ""))
    for script in n_cards:
        for kind in ("title", "printed", "title pairs", "printed pairs", "title pairs 2 ways", "printed pairs 2 ways"):
            w = found[script, "easyocr", kind, "wanted"]
            if not w:
                continue
            a = found[script, "easyocr", kind, "found"] / w
            b = found[script, "easyocr+tesseract", kind, "found"] / w
            n = n_cards[script]
            v = (f" {found[script, 'variant', kind, 'found'] / w:8.2f} {secs[script, 'variant'] / n:8.2f}"
                 if variant else "")
            print(f"{script:20} {n:5d} {kind:20} {w:5d} {a:8.2f} {b:10.2f} {secs[script, 'easyocr'] / n:7.2f} "
                  f"{secs[script, 'easyocr+tesseract'] / n:8.2f}" + v)
    print("\nboxes read by the second engine (set -> script):", dict(scripts_seen))


if __name__ == "__main__":
    main()
