"""Caption OCR against transcribed print: how many of the printed words on real postcard fronts it reads.

The truth is `data/caption_truth/captions.tsv`: the printed text of the 111 committed geo-test-set
fronts, transcribed by eye from the committed files (caption, other print, words marked unsure).
Curators' titles (`bench_scripts.py --latin`) say what a card shows, not what it prints, so they
cannot tell two OCR settings apart; this can. Per split (dev: the first 40 committed cards, as
`bench_scripts.py --latin 40` takes them; heldout: the other 71) and per pipeline, read in turn on
every card in one process:

- caption recall: share of the caption's words (2+ letters, unsure ones left out) in the OCR text;
- print recall: the same over all printed words (caption and other print);
- precision: share of the OCR's words (2+ letters) found in the card's print, unsure words
  included, on cards without handwriting (handwriting is not transcribed);
- CPU-s per card (this process's threads).

Pipelines: `default` (CaptionOCR as the pipeline runs it), `readtext` (a plain EasyOCR
`readtext` loop at full size: the reference of issue #12), and each `--variant` (OcrSettings
fields as JSON over the default).

    .venv/bin/python bench/bench_caption_truth.py --split dev
    .venv/bin/python bench/bench_caption_truth.py --split dev --variant '{"int8_recognizer": true}'
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

from bench_ocr import cpu_s, tokens  # noqa: E402  (also puts the project on sys.path)
from PIL import Image  # noqa: E402

from vpr_assets.core.text.ocr import CaptionOCR, OcrSettings, get_reader, to_rgb_array  # noqa: E402
from vpr_assets.paths import ocr_tools  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TRUTH = ROOT / "data" / "caption_truth" / "captions.tsv"
GEO = ROOT / "data" / "geo_testset"
UNSURE = re.compile(r"\S*\[\?\]")


def words(text: str) -> list[str]:
    """The words a score counts: 2+ letters or digits, accents folded (bench_ocr.tokens)."""
    return [w for w in tokens(text) if len(w) >= 2]


def truth_words(text: str) -> tuple[list[str], set[str]]:
    """(sure words, every word including the unsure ones) of a transcription field."""
    text = text.replace("[illegible]", " ")
    return words(UNSURE.sub(" ", text)), set(words(text.replace("[?]", "")))


def load_cards(split: str, truth: Path = TRUTH) -> list[dict]:
    manifest = {r["file"]: r for r in csv.DictReader(open(GEO / "MANIFEST.tsv", encoding="utf-8"), delimiter="\t")}
    cards = []
    with open(truth, encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if split != "all" and r["split"] != split:
                continue
            data = (GEO / r["file"]).read_bytes()
            if hashlib.sha256(data).hexdigest() != r["file_sha256"] or manifest[r["file"]]["file_sha256"] != r["file_sha256"]:
                sys.exit(f"{r['file']}: the file is not the one transcribed (sha256 differs)")
            cards.append(r)
    return cards


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["dev", "heldout", "all"], default="dev")
    ap.add_argument("--variant", action="append", default=[], help="OcrSettings fields as JSON over the default")
    ap.add_argument("--no-readtext", action="store_true", help="leave the plain readtext loop out")
    ap.add_argument("--show", action="store_true", help="print every card's texts")
    ap.add_argument("--truth", type=Path, default=TRUTH, help="the transcriptions (TSV)")
    args = ap.parse_args()
    cards = load_cards(args.split, args.truth)
    tools = ocr_tools()
    pipes = {"default": CaptionOCR(OcrSettings(), tools=tools)}
    for v in args.variant:  # JSON lists are the settings' tuples
        changes = {k: tuple(x) if isinstance(x, list) else x for k, x in json.loads(v).items()}
        pipes[f"variant {v}"] = CaptionOCR(replace(OcrSettings(), **changes), tools=tools)
    if not args.no_readtext:
        reader = get_reader()
        pipes["readtext"] = lambda rgb: "\n".join(r[1] for r in reader.readtext(rgb))
    first = to_rgb_array(Image.open(GEO / cards[0]["file"]).convert("RGB"))
    for p in pipes.values():  # one-off allocations out of the timings
        p.read(first) if isinstance(p, CaptionOCR) else p(first)

    keys = ("cap_hit", "cap_tot", "all_hit", "all_tot", "prec_hit", "prec_tot", "cpu")
    stats = {n: dict.fromkeys(keys, 0.0) for n in pipes}
    for i, card in enumerate(cards):
        rgb = to_rgb_array(Image.open(GEO / card["file"]).convert("RGB"))
        cap_sure, cap_any = truth_words(card["caption"])
        other_sure, other_any = truth_words(card["other_print"])
        allowed = cap_any | other_any
        line = [f"{i:3d} {Path(card['file']).stem:28}"]
        for name, p in pipes.items():
            c0 = cpu_s()
            text = p.read(rgb).text if isinstance(p, CaptionOCR) else p(rgb)
            st = stats[name]
            st["cpu"] += cpu_s() - c0
            got = set(words(text))
            st["cap_hit"] += sum(w in got for w in cap_sure)
            st["cap_tot"] += len(cap_sure)
            st["all_hit"] += sum(w in got for w in cap_sure + other_sure)
            st["all_tot"] += len(cap_sure) + len(other_sure)
            if card["handwriting"] != "yes":
                read = words(text)
                st["prec_hit"] += sum(w in allowed for w in read)
                st["prec_tot"] += len(read)
            line.append(f"{name.split()[0]} {sum(w in got for w in cap_sure)}/{len(cap_sure)}")
            if args.show:
                line.append(repr(text.replace("\n", " | ")[:60]))
        print("  ".join(line), flush=True)

    print(f"\n{len(cards)} cards ({args.split}); caption words {int(stats['default']['cap_tot'])}, "
          f"all printed words {int(stats['default']['all_tot'])}")
    print(f"{'pipeline':40} {'caption recall':>15} {'print recall':>13} {'precision':>10} {'CPU-s/card':>11}")
    for name, st in stats.items():
        def share(a: str, b: str) -> str:
            return f"{st[a] / st[b]:.3f}" if st[b] else "-"
        print(f"{name[:40]:40} {share('cap_hit', 'cap_tot'):>15} {share('all_hit', 'all_tot'):>13} "
              f"{share('prec_hit', 'prec_tot'):>10} {st['cpu'] / len(cards):>11.2f}")
    if "readtext" in stats and stats["readtext"]["cap_hit"]:
        d, r = stats["default"], stats["readtext"]
        print(f"default vs readtext: {d['cap_hit'] / r['cap_hit']:.2f} of its caption words, "
              f"{d['all_hit'] / max(1, r['all_hit']):.2f} of its printed words, x{r['cpu'] / d['cpu']:.2f} cheaper per card")


if __name__ == "__main__":
    t0 = time.time()
    main()
    print(f"({time.time() - t0:.0f} s)")
