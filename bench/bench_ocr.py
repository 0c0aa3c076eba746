"""Caption OCR benchmark: optimised CaptionOCR vs a plain `reader.readtext` loop, same images, same run.

Captions with known words are rendered onto the real sample photos (vpr_assets.core.text.synth),
so we can report the share of caption words each pipeline recovers, plus images/s and RSS growth.
The two pipelines alternate image by image, so load from other processes hits both alike.

    .venv/bin/python bench/bench_ocr.py --n 6
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import unicodedata
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

from vpr_assets.core.text.ocr import CaptionOCR, OcrSettings, get_reader, to_rgb_array  # noqa: E402
from vpr_assets.core.text.synth import synthetic_set  # noqa: E402


def tokens(text: str) -> list[str]:
    t = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.findall(r"[a-z0-9]+", t)


def recovered(truth: str, ocr_text: str) -> tuple[int, int]:
    want, got = tokens(truth), set(tokens(ocr_text))
    return sum(w in got for w in want), len(want)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=6, help="number of synthetic captioned photos")
    ap.add_argument("--det-max-side", type=int, default=OcrSettings.det_max_side)
    ap.add_argument("--strip-max-side", type=int, default=OcrSettings.strip_max_side)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--photos", default=str(ROOT.parent / "shared" / "data" / "realsample"))
    args = ap.parse_args()

    photos = sorted(p for p in Path(args.photos).glob("*.jpg") if "__" in p.name and "verso" not in p.name)
    if not photos:
        sys.exit(f"no photos under {args.photos}")
    cases = synthetic_set(photos, args.n + 1, seed=7)
    warm, cases = cases[0], cases[1:]

    settings = OcrSettings(det_max_side=args.det_max_side, strip_max_side=args.strip_max_side)
    t0 = time.time()
    ocr = CaptionOCR(settings)
    reader = get_reader()
    print(f"reader load {time.time() - t0:.1f}s  device={reader.device}  settings={settings.hash()}")
    ocr.read(warm[0])  # first calls pay one-off allocations; keep them out of the timings
    if not args.no_baseline:
        reader.readtext(to_rgb_array(warm[0]))

    stats = {k: {"wall": 0.0, "cpu": 0.0, "hit": 0, "tot": 0, "rss0": rss_mb(), "rss_growth": 0.0}
             for k in ("optimised", "baseline")}
    parts: dict[str, float] = {}
    for i, (im, cap, _, _) in enumerate(cases):
        rgb = to_rgb_array(im)
        def optimised(rgb=rgb):
            r = ocr.read(rgb)
            for k, v in r.extra.items():
                parts[k] = parts.get(k, 0) + v
            return r.text

        runs = [("optimised", optimised)]
        if not args.no_baseline:
            runs.append(("baseline", lambda: "\n".join(r[1] for r in reader.readtext(rgb))))
        line = [f"{i:3d} {im.size[0]}x{im.size[1]} {cap!r:34}"]
        for name, fn in runs:
            r0, w0, c0 = rss_mb(), time.perf_counter(), time.process_time()
            text = fn()
            s = stats[name]
            s["wall"] += time.perf_counter() - w0
            s["cpu"] += time.process_time() - c0
            s["rss_growth"] += rss_mb() - r0
            h, t = recovered(cap, text)
            s["hit"] += h
            s["tot"] += t
            line.append(f"{name[:3]} {h}/{t} {text.replace(chr(10), ' | ')[:40]!r}")
        print("  ".join(line), flush=True)

    n = len(cases)
    print(f"\n{n} images (photos ~1000 px; real scans are larger, where the baseline slows further)")
    for name, s in stats.items():
        if not s["tot"]:
            continue
        print(f"{name:10} {n / s['wall']:.3f} img/s wall  {n / s['cpu']:.3f} img/s per CPU-s  "
              f"words {s['hit']}/{s['tot']} = {s['hit'] / s['tot']:.1%}  RSS growth {s['rss_growth']:+.0f} MB")
    print("optimised breakdown (sums): " + ", ".join(f"{k}={v:.1f}" for k, v in parts.items()))
    if stats["baseline"]["tot"]:
        o, b = stats["optimised"], stats["baseline"]
        print(f"speed-up x{b['wall'] / o['wall']:.2f} wall, x{b['cpu'] / o['cpu']:.2f} CPU; "
              f"word recovery {o['hit'] / o['tot']:.1%} vs {b['hit'] / b['tot']:.1%}")


if __name__ == "__main__":
    main()
