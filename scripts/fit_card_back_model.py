#!/usr/bin/env python3
"""Fit the shipped card-back model (vpr_assets/core/curation/card_back_model.npz) on real cards.

Trains on the `dev` split of data/backs_testset (the EuroPosts pages: 99 backs, 99 fronts, labelled
by eye) and only on it; the `test` split (two other sites of the same collection) and the backs and
fronts of ../shared/data/realsample are scored once and written into the model's provenance, never
used to choose anything. Features: the ImageNet backbone that `scan_quality` already runs (lite0,
224 px, pooled pre-logits), so the pipeline pays nothing extra for the decision.

    python scripts/build_backs_testset.py --out /tmp/backs_all
    .venv/bin/python scripts/fit_card_back_model.py --images /tmp/backs_all [--out PATH]

The build script checks every page against the page_sha256 of the manifest (the labelled page);
this one stops on a missing page. Re-running on the same pages writes the same weights (lbfgs,
deterministic) up to floating-point noise of the backbone.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vpr_assets.core.curation.card_back_model import MODEL_FILE, fit_card_back_model  # noqa: E402
from vpr_assets.core.curation.linear_probe import probe_features  # noqa: E402

MANIFEST = ROOT / "data/backs_testset/MANIFEST.tsv"


def labelled_pages(images: Path, shared: Path, skip_missing: bool = False) -> list[dict]:
    """Every page labelled back or front (id, split, label, back, notes, path), then the realsample
    postcards (split "realsample"); a page not built stops the fit, or is skipped with `skip_missing`."""
    out = []
    with open(MANIFEST, encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["label"] not in ("back", "front"):
                continue
            p = images / r["collection"] / f"{r['id']}.jpg"
            if not p.exists():
                if skip_missing:
                    continue
                sys.exit(f"missing page {p}: build the set with scripts/build_backs_testset.py --out {images}")
            out.append({"id": r["id"], "split": r["split"], "label": r["label"], "back": r["label"] == "back",
                        "notes": r.get("notes") or "", "path": p})
    for p in sorted(shared.glob("*__pc*.jpg")):  # postcard fronts and the versos
        label = "back" if "verso" in p.name else "front"
        out.append({"id": p.stem, "split": "realsample", "label": label, "back": label == "back", "notes": "", "path": p})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=Path("/tmp/backs_all"))
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data" / "realsample")
    ap.add_argument("--c", type=float, default=1.0, help="inverse L2 strength of the logistic regression")
    ap.add_argument("--out", type=Path, default=MODEL_FILE)
    args = ap.parse_args()
    from vpr_assets.core.curation.landmark_scoring import BACKBONE_NAME, backbone

    pages = labelled_pages(args.images, args.shared)
    size = backbone().image_size
    x = probe_features(p["path"] for p in pages)
    y = np.array([p["back"] for p in pages])
    split = np.array([p["split"] for p in pages])
    dev = split == "dev"
    model = fit_card_back_model(x[dev], y[dev], c=args.c, backbone=BACKBONE_NAME, image_size=size)
    pred = model.is_back(x)
    figures = {}
    for s in ("dev", "test", "realsample"):
        m = split == s
        figures[s] = {"backs_found": int((pred & y & m).sum()), "backs": int((y & m).sum()),
                      "fronts_called_backs": int((pred & ~y & m).sum()), "fronts": int((~y & m).sum())}
        f = figures[s]
        print(f"{s:10} backs found {f['backs_found']}/{f['backs']}   fronts called backs {f['fronts_called_backs']}/{f['fronts']}")
    provenance = {
        "fitted_on": "data/backs_testset split=dev (europosts)",
        "manifest_sha256": hashlib.sha256(MANIFEST.read_bytes()).hexdigest(),
        "c": args.c, "figures": figures, "script": "scripts/fit_card_back_model.py",
    }
    model = fit_card_back_model(x[dev], y[dev], c=args.c, backbone=BACKBONE_NAME, image_size=size, provenance=provenance)
    print(f"wrote {model.save(args.out)} (version {model.version})")


if __name__ == "__main__":
    main()
