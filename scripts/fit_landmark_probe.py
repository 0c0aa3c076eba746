#!/usr/bin/env python3
"""Fit the shipped landmark probe (vpr_assets/core/curation/landmark_probe.npz) on real pictures.

Positives: the landmark photos of data/landmark_corpus and the committed postcard fronts of
data/geo_testset (every one a located place: buildings, streets, views, interiors of named
buildings). Negatives: the corpus's distractors (rooms, objects, animals, people, text, art).
Nothing from ../shared/data/realsample is read: it is the set the rejection figures are reported on
(bench/bench_rejection.py).

The inverse regularisation C is the one with the lowest out-of-fold log-loss over a fixed grid, the
folds grouped by source (a corpus repository or a geo collection), so a source never scores itself.
Those out-of-fold figures go into the probe's provenance.

    .venv/bin/python scripts/fit_landmark_probe.py [--out PATH] [--exclude-licence REGEX]

Pictures whose recorded licence matches `--exclude-licence` are left out; by default those under a
non-commercial licence of their own (`^CC-BY-NC`: the corpus's vggsfm photos), so the shipped
weights never derive from them (`--exclude-licence ''` keeps every picture). The pattern goes into
the provenance.

Deterministic (lbfgs, fixed folds) up to floating-point noise of the backbone.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vpr_assets.core.curation.landmark_probe import MODEL_FILE, fit_landmark_probe  # noqa: E402
from vpr_assets.core.curation.linear_probe import probe_features  # noqa: E402

CORPUS = ROOT / "data/landmark_corpus/MANIFEST.tsv"
GEO = ROOT / "data/geo_testset/MANIFEST.tsv"
C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
DEFAULT_EXCLUDED_LICENCES = r"^CC-BY-NC"
FOLDS = 5


def training_pictures(exclude_licence: str | None = None) -> list[dict]:
    """Every training picture: path, is_place, group (its source), origin, licence; those whose
    licence matches the `exclude_licence` regular expression are left out."""
    out = []
    with open(CORPUS, encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            out.append({"path": CORPUS.parent / r["file"], "is_place": r["kind"] == "landmark",
                        "group": r["source_repo"].split("@")[0], "origin": "landmark_corpus", "licence": r["license"]})
    with open(GEO, encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["committed"] == "yes":
                out.append({"path": GEO.parent / r["file"], "is_place": True, "group": f"geo:{r['collection']}",
                            "origin": "geo_testset", "licence": r["licence"]})
    if exclude_licence:
        out = [p for p in out if not re.search(exclude_licence, p["licence"])]
    missing = [str(p["path"]) for p in out if not p["path"].is_file()]
    if missing:
        sys.exit(f"missing training pictures (first: {missing[0]}); both sets are committed in the repository")
    return out


def out_of_group_scores(x: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float, folds: int = FOLDS) -> np.ndarray:
    """P(place) of every picture from a probe fitted without its source's pictures."""
    from sklearn.model_selection import GroupKFold

    p = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=folds).split(x, y, groups):
        p[test] = fit_landmark_probe(x[train], y[train], c=c).probability(x[test])
    return p


def choose_c(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[float, dict]:
    from sklearn.metrics import log_loss, roc_auc_score

    grid = {}
    for c in C_GRID:
        p = out_of_group_scores(x, y, groups, c)
        grid[str(c)] = {"log_loss": round(float(log_loss(y, p)), 4), "auc": round(float(roc_auc_score(y, p)), 4)}
        print(f"C={c:<6} out-of-group log-loss {grid[str(c)]['log_loss']:.4f}  AUC {grid[str(c)]['auc']:.4f}")
    best = min(C_GRID, key=lambda c: grid[str(c)]["log_loss"])
    return best, grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=MODEL_FILE)
    ap.add_argument("--exclude-licence", default=DEFAULT_EXCLUDED_LICENCES,
                    help="regular expression: leave out pictures whose licence matches ('' keeps all)")
    args = ap.parse_args()
    from vpr_assets.core.curation.landmark_scoring import BACKBONE_NAME, backbone

    pics = training_pictures(args.exclude_licence)
    x = probe_features(p["path"] for p in pics)
    y = np.array([p["is_place"] for p in pics])
    groups = np.array([p["group"] for p in pics])
    c, grid = choose_c(x, y, groups)
    print(f"chosen C={c} ({int(y.sum())} places, {int((~y).sum())} other pictures, {len(set(groups))} sources)")
    provenance = {
        "fitted_on": "data/landmark_corpus (landmarks vs distractors) + data/geo_testset committed fronts (places)",
        "corpus_manifest_sha256": hashlib.sha256(CORPUS.read_bytes()).hexdigest(),
        "geo_manifest_sha256": hashlib.sha256(GEO.read_bytes()).hexdigest(),
        "n_places": int(y.sum()), "n_other": int((~y).sum()), "n_sources": len(set(groups)),
        "c": c, "c_grid_out_of_group": grid, "script": "scripts/fit_landmark_probe.py",
        "excluded_licences": args.exclude_licence or "",
    }
    model = fit_landmark_probe(x, y, c=c, provenance=provenance, backbone=BACKBONE_NAME, image_size=backbone().image_size)
    print(f"wrote {model.save(args.out)} (version {model.version})")


if __name__ == "__main__":
    main()
