"""Card backs on real cards: how many address sides are found, how many picture sides are called backs.

The set is data/backs_testset (every page of the Manuel Campero card PDFs, fronts and backs
labelled by eye; not redistributable, so rendered locally:
`python scripts/build_backs_testset.py --out DIR`). Split fixed by collection: `dev` (europosts)
chooses anything that is chosen, `test` (coleccion_mc, memorias_postaleras) reports. The three
backs and six postcard fronts of ../shared/data/realsample are reported as a third, unseen set.

Rows: the OpenCV heuristic (`detect_postcard_back`), a logistic regression on its 11 features
fitted on dev with its threshold set on dev for at most 2% of dev fronts called backs, and the
shipped learned model (`card_back_model.npz`: backbone features, fitted on dev by
scripts/fit_card_back_model.py), which is what `scan_quality` decides with.

    .venv/bin/python bench/bench_card_backs.py --images /tmp/backs_all
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
warnings.filterwarnings("ignore")

from fit_card_back_model import labelled_pages  # noqa: E402

from vpr_assets.core.curation.card_back_model import shipped_card_back_model  # noqa: E402
from vpr_assets.core.curation.linear_probe import probe_features  # noqa: E402
from vpr_assets.core.curation.postcard_traps import back_features, detect_postcard_back  # noqa: E402

FEATURES = ("paper_share", "ink_share", "texture_share", "paper_lightness", "background_std", "colourfulness",
            "divider_len", "address_lines", "stamp_corner_ink", "stamp_corner_ratio", "card_aspect")


def report(name: str, items: list[dict], pred: list[bool]) -> None:
    for split in ("dev", "test", "realsample"):
        idx = [i for i, r in enumerate(items) if r["split"] == split]
        if not idx:
            continue
        backs = [i for i in idx if items[i]["label"] == "back"]
        fronts = [i for i in idx if items[i]["label"] == "front"]
        caption_only = [i for i in fronts if "caption-only" in items[i].get("notes", "")]
        found = sum(pred[i] for i in backs)
        fp = sum(pred[i] for i in fronts)
        co = sum(pred[i] for i in caption_only)
        print(f"{name:28} {split:10} backs found {found:3d}/{len(backs):3d} ({found / max(1, len(backs)):5.1%})   "
              f"fronts called backs {fp:3d}/{len(fronts):3d} ({fp / max(1, len(fronts)):5.1%})   "
              f"caption-only fronts called backs {co}/{len(caption_only)}")


def other_pictures(args, model) -> None:
    """Pictures that are not card backs (or are generated ones), none of them fitted on."""
    from PIL import Image

    from vpr_assets.core.images import synth

    sets = {
        "geo test set fronts (committed)": [Image.open(p) for p in sorted((ROOT / "data/geo_testset/images").glob("*/*.jpg"))],
        "landmark corpus photos + distractors": [Image.open(p) for p in sorted((ROOT / "data/landmark_corpus/images").rglob("*.jpg"))],
        "script test set (cards, envelopes, menus)": [Image.open(p) for p in sorted(Path(args.scripts).glob("*.jpg"))],
        "demo generated backs": [synth.card_back(i) for i in range(20)],
        "demo generated greetings": [synth.greeting_card(i) for i in range(20)],
        "demo generated portraits": [synth.portrait_card(i) for i in range(20)],
    }
    print("\nother pictures: called backs by the learned model / by the heuristic")
    for name, ims in sets.items():
        if not ims:
            continue
        ims = [im.convert("RGB") for im in ims]
        learned = sum(model.is_back(probe_features(ims)))
        heuristic = sum(detect_postcard_back(im).is_back for im in ims)
        print(f"  {name:42} {len(ims):4d} pictures   learned {learned:3d}   heuristic {heuristic:3d}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="/tmp/backs_all")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data" / "realsample"))
    ap.add_argument("--scripts", default="/tmp/script_testset_all", help="data/script_testset images, if built")
    ap.add_argument("--max-dev-fpr", type=float, default=0.02)
    args = ap.parse_args()
    from PIL import Image
    from sklearn.linear_model import LogisticRegression

    items = labelled_pages(Path(args.images), Path(args.shared), skip_missing=True)
    if not items:
        sys.exit("no pages found: build them with scripts/build_backs_testset.py --out DIR")
    t0 = time.perf_counter()
    shipped, feats = [], []
    for r in items:
        im = Image.open(r["path"]).convert("RGB")
        shipped.append(detect_postcard_back(im).is_back)
        f = back_features(im)
        feats.append([f[k] for k in FEATURES])
    secs = (time.perf_counter() - t0) / len(items)
    counts = {s: sum(r["split"] == s for r in items) for s in ("dev", "test", "realsample")}
    print(f"{len(items)} pages {counts}; detector + features {secs * 1000:.0f} ms/page\n")
    report("OpenCV heuristic", items, shipped)

    t0 = time.perf_counter()
    model = shipped_card_back_model()
    learned = list(model.is_back(probe_features(r["path"] for r in items)))
    secs = (time.perf_counter() - t0) / len(items)
    print(f"\nshipped learned model {model.version} (backbone pass + decision {secs * 1000:.0f} ms/page)")
    report("learned model (shipped)", items, learned)
    other_pictures(args, model)

    x = np.asarray(feats, dtype=np.float64)
    y = np.asarray([r["label"] == "back" for r in items])
    dev = np.asarray([r["split"] == "dev" for r in items])
    mean, std = x[dev].mean(0), np.maximum(x[dev].std(0), 1e-6)
    lr = LogisticRegression(class_weight="balanced", C=1.0, max_iter=1000).fit((x[dev] - mean) / std, y[dev])
    p = lr.predict_proba((x - mean) / std)[:, 1]
    fronts_dev = np.sort(p[dev & ~y])
    k = int(np.floor(args.max_dev_fpr * len(fronts_dev)))  # fronts allowed above the threshold
    thr = float(fronts_dev[-k - 1]) + 1e-9 if len(fronts_dev) > k else 0.5
    print(f"\nlogistic rule fitted on dev, threshold {thr:.3f} (<= {args.max_dev_fpr:.0%} of dev fronts above it)")
    report("logistic rule (dev-fitted)", items, list(p >= thr))
    print("weights:", {k: round(float(w), 3) for k, w in zip(FEATURES, lr.coef_[0] / std)})


if __name__ == "__main__":
    main()
