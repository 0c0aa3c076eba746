"""Caption OCR benchmark: CaptionOCR variants vs a plain `reader.readtext` loop, same images, same run.

Two sets of real images:
- real 1900-1930s postcards (`*__pc*.jpg` in the realsample folder, backs included); where the
  collection's description names the card (its first sentence, e.g. "Tipo Mexicano en las Ruinas
  de Mitla."), that title is the truth, else the card is timed and compared only;
- real photos with captions of known words rendered onto them (vpr_assets.core.text.synth).

Candidates (`--candidates`): `baseline` (plain readtext, EasyOCR defaults), `torch` (CaptionOCR as it
was: EasyOCR's torch modules, int8 recogniser on CPU, box by box), `torch-batch`, `onnx-f32` (ONNX
Runtime, float weights, box by box), `onnx-f32-batch`, `onnx-cli` (int8 CRAFT, float recogniser,
batched, Tesseract run as a command per language: the default until 2026-12-01), `onnx-f32rec` (the
same with Tesseract in this process: the default until 2026-12-02), `onnx` (the default: plus the
static int8 recogniser). All run image by image in turn, so load from other processes hits them alike.
`--streams` then reads every image again with the default, one image at a time and one per core at
once (as a batch reads on a CPU), and prints both throughputs and whether the texts are equal. Per pipeline: images/s wall and per
CPU-second (all threads, Tesseract's child processes included), share of the truth's words, and
`same` = share of the `torch` reference's words it also reads (how far the runtime changes the output).

    .venv/bin/python bench/bench_ocr.py --n 8
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import time
import unicodedata
import warnings
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

from PIL import Image  # noqa: E402

from vpr_assets.core.onnx_sessions import available_cpus  # noqa: E402
from vpr_assets.core.text.ocr import CaptionOCR, OcrSettings, get_reader, to_rgb_array  # noqa: E402
from vpr_assets.core.text.synth import synthetic_set  # noqa: E402
from vpr_assets.paths import ocr_tools  # noqa: E402

CANDIDATES = {
    "torch": dict(runtime="torch", batch_recognition=False, int8_detector=False, int8_recognizer=False),
    "torch-batch": dict(runtime="torch", batch_recognition=True, int8_detector=False, int8_recognizer=False),
    "onnx-f32": dict(runtime="onnx", batch_recognition=False, int8_detector=False, int8_recognizer=False),
    "onnx-f32-batch": dict(runtime="onnx", batch_recognition=True, int8_detector=False, int8_recognizer=False),
    # before 2026-12-01
    "onnx-cli": dict(runtime="onnx", batch_recognition=True, int8_detector=True, int8_recognizer=False, in_process=False),
    "onnx-f32rec": dict(runtime="onnx", batch_recognition=True, int8_detector=True, int8_recognizer=False),  # until 2026-12-02
    "onnx": dict(runtime="onnx", batch_recognition=True, int8_detector=True, int8_recognizer=True),  # the default
}


def tokens(text: str) -> list[str]:
    t = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.findall(r"[a-z0-9]+", t)


def recovered(truth: str, ocr_text: str) -> tuple[int, int]:
    want, got = tokens(truth), set(tokens(ocr_text))
    return sum(w in got for w in want), len(want)


def cpu_s() -> float:
    """CPU seconds of this process and its finished children (Tesseract runs as a child)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def postcard_titles(folder: Path) -> dict[str, str]:
    """file -> the card's title: the description's text before the medium ("Color lithograph ...")."""
    path = folder / "descriptions.csv"
    if not path.exists():
        return {}
    out = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            title = re.split(r"\s(?:Color|Black|Hand)[ -]\w+", row["description"])[0]
            out[row["file"]] = title.strip()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8, help="number of captioned real photos")
    ap.add_argument("--postcards", type=int, default=99, help="at most this many real postcards (0: none)")
    ap.add_argument("--candidates", default="baseline,torch,torch-batch,onnx-f32,onnx-f32-batch,onnx-f32rec,onnx")
    ap.add_argument("--det-max-side", type=int, default=OcrSettings.det_max_side)
    ap.add_argument("--strip-max-side", type=int, default=OcrSettings.strip_max_side)
    ap.add_argument("--photos", default=str(ROOT.parent / "shared" / "data" / "realsample"))
    ap.add_argument("--streams", action="store_true", help="also time the default one image at a time against "
                    "one per core at once")
    args = ap.parse_args()
    names = args.candidates.split(",")
    if bad := [n for n in names if n != "baseline" and n not in CANDIDATES]:
        sys.exit(f"unknown candidates {bad}; known: baseline, {', '.join(CANDIDATES)}")

    folder = Path(args.photos)
    photos = sorted(p for p in folder.glob("*.jpg") if "__" in p.name and "verso" not in p.name)
    if not photos:
        sys.exit(f"no photos under {args.photos}")
    cases = synthetic_set(photos, args.n + 1, seed=7)
    warm, cases = cases[0], [("photo", im, cap) for im, cap, _, _ in cases[1:]]
    titles = postcard_titles(folder)
    cards = sorted(folder.glob("*__pc*.jpg"))[: args.postcards]
    cases = [("postcard", Image.open(p).convert("RGB"), titles.get(p.name)) for p in cards] + cases

    base = OcrSettings(det_max_side=args.det_max_side, strip_max_side=args.strip_max_side)
    t0 = time.time()
    pipes = {}
    for name in names:
        if name == "baseline":
            reader = get_reader()
            pipes[name] = lambda rgb, reader=reader: "\n".join(r[1] for r in reader.readtext(rgb))
        else:
            spec = dict(CANDIDATES[name])
            tools = replace(ocr_tools(), tesseract_in_process=spec.pop("in_process", True))
            pipes[name] = CaptionOCR(replace(base, **spec), tools=tools)
    print(f"readers ready in {time.time() - t0:.1f}s  cores={available_cpus()}  load={os.getloadavg()[0]:.1f}  "
          f"images: {sum(k == 'postcard' for k, _, _ in cases)} postcards, {sum(k == 'photo' for k, _, _ in cases)} photos")
    warm_rgb = to_rgb_array(warm[0])
    for p in pipes.values():  # first calls pay one-off allocations; keep them out of the timings
        p.read(warm_rgb) if isinstance(p, CaptionOCR) else p(warm_rgb)

    sets = ("postcard", "photo", "all")
    stats = {(s, n): {"wall": 0.0, "cpu": 0.0, "hit": 0, "tot": 0, "same": 0, "ref": 0, "n": 0, "rss": 0.0}
             for s in sets for n in names}
    parts: dict[str, dict[str, float]] = {n: {} for n in names}
    for i, (kind, im, truth) in enumerate(cases):
        rgb = to_rgb_array(im)
        line = [f"{i:3d} {kind[:5]} {im.size[0]}x{im.size[1]} {(truth or '-')[:30]!r:32}"]
        texts = {}
        for name, p in pipes.items():
            r0, w0, c0 = rss_mb(), time.perf_counter(), cpu_s()
            if isinstance(p, CaptionOCR):
                res = p.read(rgb)
                text = res.text
                for k, v in res.extra.items():
                    if isinstance(v, (int, float)):
                        parts[name][k] = parts[name].get(k, 0) + v
            else:
                text = p(rgb)
            wall, cpu = time.perf_counter() - w0, cpu_s() - c0
            texts[name] = text
            h, t = recovered(truth, text) if truth else (0, 0)
            for s in (kind, "all"):
                st = stats[(s, name)]
                st["wall"] += wall
                st["cpu"] += cpu
                st["rss"] += rss_mb() - r0
                st["n"] += 1
                st["hit"] += h
                st["tot"] += t
            line.append(f"{name} {h}/{t} {wall:.1f}s")
        if "torch" in texts:
            ref = tokens(texts["torch"])
            for name, text in texts.items():
                got = set(tokens(text))
                for s in (kind, "all"):
                    stats[(s, name)]["same"] += sum(w in got for w in ref)
                    stats[(s, name)]["ref"] += len(ref)
        line.append(repr(texts[names[-1]].replace("\n", " | ")[:50]))
        print("  ".join(line), flush=True)

    print(f"\nload average at the end {os.getloadavg()[0]:.1f} on {available_cpus()} cores")
    for s in sets:
        print(f"\n[{s}]")
        for name in names:
            st = stats[(s, name)]
            if not st["n"]:
                continue
            words = f"{st['hit']}/{st['tot']} = {st['hit'] / st['tot']:.1%}" if st["tot"] else "-"
            same = f"{st['same'] / st['ref']:.1%}" if st["ref"] else "-"
            print(f"{name:12} {st['n'] / st['wall']:.3f} img/s wall  {st['n'] / st['cpu']:.3f} img/s per CPU-s  "
                  f"{st['cpu'] / st['n']:.2f} CPU-s/img  words {words}  same as torch {same}  RSS {st['rss']:+.0f} MB")
        for ref in ("baseline", "torch"):
            if ref not in names:
                continue
            b = stats[(s, ref)]
            print("  vs " + ref + ": " + ", ".join(
                f"{n} x{b['wall'] / stats[(s, n)]['wall']:.2f} wall x{b['cpu'] / stats[(s, n)]['cpu']:.2f} CPU"
                for n in names if n != ref))
    for name in names:
        if parts[name]:
            print(f"{name} breakdown (sums): " + ", ".join(f"{k}={v:.1f}" for k, v in parts[name].items()))
    if args.streams:
        compare_streams([to_rgb_array(im) for _, im, _ in cases], base)


def compare_streams(images: list, settings: OcrSettings) -> None:
    """The default pipeline over every image: one at a time, then one per core at once (threads)."""
    from concurrent.futures import ThreadPoolExecutor

    texts = {}
    print()
    for streams in (1, available_cpus()):
        ocr = CaptionOCR(settings, tools=ocr_tools(), streams=streams)
        ocr.read(images[0])
        w0, c0 = time.perf_counter(), cpu_s()
        with ThreadPoolExecutor(streams) as pool:
            texts[streams] = [r.text for r in pool.map(ocr.read, images)]
        wall, cpu = time.perf_counter() - w0, cpu_s() - c0
        print(f"streams {streams}: {len(images) / wall:.3f} img/s wall, {cpu / len(images):.2f} CPU-s/img, "
              f"{wall / len(images):.3f} s/img")
    print(f"same texts with {available_cpus()} streams as with 1: {sum(a == b for a, b in zip(texts[1], texts[available_cpus()]))}"
          f"/{len(images)}")


if __name__ == "__main__":
    main()
