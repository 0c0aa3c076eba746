"""Does training pay? Each step of the recipe measured against the pretrained embedder.

    .venv/bin/python bench/bench_training.py --set demo                 # generated demo collection
    .venv/bin/python bench/bench_training.py --set corpus               # data/landmark_corpus (real photos)
    .venv/bin/python bench/bench_training.py --set corpus --recipes pretrained,default --report

Training data and the sets figures are read on:
- demo: trains on the demo collection's landmark cards (`build_demo_collection`, labelled by place,
  as the pipeline's clusters label them); settings are chosen on `val` (a second held-out draw of
  cards, `build_eval_set(first=200)`) and reported on `dev` (the demo's own dev set, first=100).
- corpus: trains on the `train` split of data/landmark_corpus minus one image per landmark (`val`,
  with the train distractors), where settings are chosen; with `--report` the model trains on the
  whole `train` split and is reported on `dev` (never used to choose anything).
- realsample (../shared/data/realsample): landmarks no recipe trains on: a trained model must be no
  worse there than pretrained.
- heldout (`--set heldout`): the real sample as a tiny collection of its own: every landmark's
  photos but one are trained on (1-4 per landmark), the held-out photo of each landmark queries
  the whole sample (8 queries): new photos of *trained* landmarks, real, very few per class.
Every set is evaluated as `vpr evaluate` does (each landmark image queries all the others,
distractors stay in the gallery). One run prints the table for every recipe asked for.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, peak_rss_mb  # noqa: E402

REALSAMPLE = ROOT.parent / "shared" / "data" / "realsample" / "MANIFEST.tsv"
CORPUS = ROOT / "data" / "landmark_corpus" / "MANIFEST.tsv"

# Cumulative steps from the old recipe to the new default (vpr_assets.core.training.trainer.TrainConfig).
OLD = dict(neck_init="random", head_init="random", neck_epochs=0, epochs=4, image_size=224, lr=3e-4,
           freeze_stages=5, views=0)
RECIPES = {
    "old_recipe": OLD,
    "old_recipe_320": {**OLD, "image_size": None},
    "pca_init_w0": dict(neck_epochs=0, whiten=0.0, views=2),
    "pca_init_w05": dict(neck_epochs=0, whiten=0.5, views=2),
    "pca_init_w1": dict(neck_epochs=0, whiten=1.0, views=2),
    "neck5": dict(neck_epochs=5),
    "neck10_w05": dict(neck_epochs=10, whiten=0.5),
    "neck20": dict(neck_epochs=20),
    "neck40_w05": dict(neck_epochs=40, whiten=0.5),
    "neck20_w05": dict(neck_epochs=20, whiten=0.5),
    "neck20_w1": dict(neck_epochs=20, whiten=1.0),
    "neck20_224_w05": dict(neck_epochs=20, image_size=224, whiten=0.5),
    "neck20_random": dict(neck_epochs=20, neck_init="random", head_init="random"),
    "neck20_m03": dict(neck_epochs=20, arc_m=0.3),
    "neck20_views16": dict(neck_epochs=20, views=16),
    "neck20_ft2_f5_w05": dict(neck_epochs=20, epochs=2, freeze_stages=5, whiten=0.5),
    "neck20_ft2_f6": dict(neck_epochs=20, epochs=2, freeze_stages=6),
    "default": {},
}


def read_rows(manifest: Path) -> list[dict]:
    with open(manifest, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def write_manifest(rows: list[dict], root: Path, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("file\tlabel\n")
        for r in rows:
            fh.write(f"{(root / r['file']).resolve()}\t{r['label']}\n")
    return out


def demo_sets(work: Path, report: bool):
    from vpr_assets.core.training.data import TrainItem
    from vpr_assets.demo import build_demo_collection, build_eval_set

    build_demo_collection(work / "collection", n_per_place=10, seed=7)
    rows = [r for r in read_rows(work / "collection" / "manifest.tsv") if r["kind"] == "landmark"]
    items = [TrainItem(str(work / "collection" / r["file"]), r["label"]) for r in rows]
    sets = {"val": build_eval_set(work / "val", seed=7, first=200)}
    if report:
        sets["dev"] = build_eval_set(work / "dev", seed=7, first=100)
    return items, sets


def corpus_sets(work: Path, report: bool):
    from vpr_assets.core.training.data import TrainItem

    root = CORPUS.parent
    rows = read_rows(CORPUS)
    train = [r for r in rows if r["split"] == "train"]
    sets = {}
    if report:
        fit = train
        sets["dev"] = write_manifest([r for r in rows if r["split"] == "dev"], root, work / "dev.tsv")
    else:  # hold one train image per landmark out (plus the train distractors) to choose settings on
        by_label: dict[str, list[dict]] = {}
        for r in train:
            by_label.setdefault(r["label"], []).append(r)
        val = [r for lab, rs in by_label.items() if lab != "none" for r in sorted(rs, key=lambda r: r["sha256"])[:1]]
        val += by_label.get("none", [])
        val_files = {r["file"] for r in val}
        fit = [r for r in train if r["file"] not in val_files]
        sets["val"] = write_manifest(val, root, work / "val.tsv")
    items = [TrainItem(str(root / r["file"]), r["label"]) for r in fit if r["label"] != "none"]
    return items, sets


def heldout_sets(work: Path, report: bool):
    from vpr_assets.core.evaluation import read_manifest
    from vpr_assets.core.training.data import TrainItem

    m = read_manifest(REALSAMPLE)
    by: dict[str, list[str]] = {}
    for f, lab in zip(m.files, m.labels):
        if lab != "none":
            by.setdefault(lab, []).append(f)
    held = {sorted(fs)[-1] for fs in by.values()}
    items = [TrainItem(str(m.root / f), lab) for f, lab in zip(m.files, m.labels) if lab != "none" and f not in held]
    return items, {"heldout": (REALSAMPLE, held)}


def evaluate(model_or_none, manifest) -> dict:
    from vpr_assets.core.active_model import ActiveModel, _pretrained
    from vpr_assets.core.evaluation import embed_fn_for, evaluate_manifest, read_manifest

    if model_or_none is None:
        am = ActiveModel("pretrained:lite0_gem512", _pretrained("lite0_gem512"), None, "pretrained")
    else:
        am = ActiveModel("candidate", model_or_none.embedder, model_or_none, "training")
    if isinstance(manifest, tuple):  # (manifest, query files): only those query the whole manifest
        from vpr_assets.core.evaluation import rank_all
        from vpr_assets.core.metrics import evaluate_rankings

        man, held = read_manifest(manifest[0]), manifest[1]
        vecs, _ = embed_fn_for(am, num_workers=0)(man.paths())
        q = [i for i, f in enumerate(man.files) if f in held]
        order, _ = rank_all(vecs, q)
        m = evaluate_rankings({man.files[i]: [man.files[j] for j in order[r]] for r, i in enumerate(q)},
                              dict(zip(man.files, man.labels)))
    else:
        m = evaluate_manifest(read_manifest(manifest), embed_fn_for(am, num_workers=0)).metrics
    return {"mAP@5": m["mAP@5"], "P@1": m["P@1"], "n": int(m["n_queries"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=("demo", "corpus", "heldout"), default="demo")
    ap.add_argument("--recipes", default="pretrained,old_recipe,pca_init_w0,pca_init_w05,pca_init_w1,neck20,default")
    ap.add_argument("--report", action="store_true", help="train on all training data, report on dev")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the table as JSON here")
    args = ap.parse_args()

    from vpr_assets.core.training.trainer import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        items, sets = {"demo": demo_sets, "corpus": corpus_sets, "heldout": heldout_sets}[args.set](work, args.report)
        if REALSAMPLE.exists() and args.set != "heldout":
            sets["realsample"] = REALSAMPLE
        print(f"training set: {args.set}, {len(items)} images of {len({i.label for i in items})} landmarks; "
              f"sets: {', '.join(sets)}", file=sys.stderr)
        table = []
        for name in args.recipes.split(","):
            t0 = time.perf_counter()
            model = None
            if name != "pretrained":
                cfg = replace(TrainConfig(variant="image_clusters", seed=args.seed,
                                          min_class_size=1 if args.set == "heldout" else 2), **RECIPES[name])
                model = train(cfg, items).model
            row = {"recipe": name, "train_s": round(time.perf_counter() - t0, 1)}
            for set_name, manifest in sets.items():
                f = evaluate(model, manifest)
                row[f"{set_name} mAP@5"], row[f"{set_name} P@1"] = round(f["mAP@5"], 3), round(f["P@1"], 3)
            table.append(row)
            print("  " + "  ".join(f"{k} {v}" for k, v in row.items()), file=sys.stderr, flush=True)
    cols = list(table[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in table:
        print("| " + " | ".join(str(row[c]) for c in cols) + " |")
    print(f"\npeak RSS {peak_rss_mb():.0f} MiB; queries per set: "
          + ", ".join(f"{k}" for k in sets))
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
