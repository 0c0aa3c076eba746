#!/usr/bin/env python3
"""Non-landmark rejection, side by side: similarity alone, + the ImageNet prior, + the shipped score.

The shipped score (`landmark_probe.place_scores`) is sqrt(ImageNet prior x landmark probe) x
P(front); "probe x front" (the probe alone) is printed beside it, because that is the alternative
the dev sets decided against.

Every figure is cross-fitted (`rejection.cross_fitted_predictions`: each query answered by a rule
fitted without its landmark, 5 folds) and printed for several fold seeds. Retrieval: the pretrained
lite0 GeM embedder at 320 px, every image querying all others (as `vpr evaluate`).

Sets: ../shared/data/realsample (never read by the probe's fit: the set the figures are reported
on), the demo's dev set (generated cards, never read by the fit either), and data/landmark_corpus,
which the probe was fitted on: its probe scores here come from probes fitted without the picture's
source repository (`scripts/fit_landmark_probe.py` out_of_group_scores, the chosen C), and pictures
the fit left out by licence are scored by the shipped probe, so the corpus row is out of sample too.

    .venv/bin/python bench/bench_rejection.py [--seeds 5] [--shared PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
from fit_landmark_probe import out_of_group_scores, training_pictures  # noqa: E402

from vpr_assets.core.active_model import active_model  # noqa: E402
from vpr_assets.core.curation.card_back_model import shipped_card_back_model  # noqa: E402
from vpr_assets.core.curation.landmark_classifier import prior_landmark_score  # noqa: E402
from vpr_assets.core.curation.landmark_probe import combine, place_scores_from_features, shipped_landmark_probe  # noqa: E402
from vpr_assets.core.curation.linear_probe import backbone_outputs  # noqa: E402
from vpr_assets.core.evaluation import embed_fn_for, rank_all, read_manifest  # noqa: E402
from vpr_assets.core.metrics import NONE_LABEL, non_landmark_figures  # noqa: E402
from vpr_assets.core.rejection import cross_fitted_predictions  # noqa: E402


def figures(name: str, top1: np.ndarray, labels: list[str], scores: dict[str, np.ndarray | None], seeds: int) -> None:
    is_lm = np.array([lab != NONE_LABEL for lab in labels])
    print(f"\n{name}: {int(is_lm.sum())} landmark images, {int((~is_lm).sum())} other")
    for rule, score in scores.items():
        res = [non_landmark_figures(cross_fitted_predictions(top1, labels, score, seed=s), is_lm) for s in range(seeds)]
        p, r = np.array(res).T
        print(f"  {rule:38s} precision {p.min():.2f}-{p.max():.2f}  recall {r.min():.2f}-{r.max():.2f}   "
              + " ".join(f"{a:.2f}/{b:.2f}" for a, b in res))


def top1_of(paths, model) -> np.ndarray:
    vecs, ok = embed_fn_for(model)(paths)
    if not np.asarray(ok).all():
        raise SystemExit("an image of the set could not be embedded")
    _, scores = rank_all(np.asarray(vecs))
    return scores[:, 0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data" / "realsample")
    args = ap.parse_args()
    probe = shipped_landmark_probe()
    print(f"landmark probe {probe.version} (C={probe.provenance.get('c')}, fitted on {probe.provenance.get('n_places')} "
          f"places / {probe.provenance.get('n_other')} other pictures), card-back model {shipped_card_back_model().version}")
    with tempfile.TemporaryDirectory() as tmp:
        model = active_model(Path(tmp) / "home")  # no champion: the pretrained embedder

        sets = []
        if (args.shared / "MANIFEST.tsv").is_file():
            sets.append(("realsample (reported on; never fitted on)", read_manifest(args.shared / "MANIFEST.tsv"), None))
        else:
            print(f"no real sample at {args.shared}: skipped")
        from vpr_assets.demo import build_eval_set

        sets.append(("demo dev (generated cards; never fitted on)", read_manifest(build_eval_set(Path(tmp) / "demo")), None))
        corpus = read_manifest(ROOT / "data/landmark_corpus/MANIFEST.tsv")
        pics = training_pictures(probe.provenance.get("excluded_licences") or None)
        x, _ = backbone_outputs(p["path"] for p in pics)
        oog = out_of_group_scores(x, np.array([p["is_place"] for p in pics]), np.array([p["group"] for p in pics]),
                                  c=float(probe.provenance["c"]))
        by_path = {str(p["path"].resolve()): s for p, s in zip(pics, oog)}
        left_out = [p for p in corpus.paths() if str(p.resolve()) not in by_path]  # never in the fit: the shipped probe
        if left_out:
            by_path.update(zip((str(p.resolve()) for p in left_out), probe.probability(backbone_outputs(left_out)[0])))
        corpus_oog = np.array([by_path[str(p.resolve())] for p in corpus.paths()])
        sets.append(("landmark corpus (probe out of source)", corpus, corpus_oog))

        for name, man, probe_p in sets:
            paths = man.paths()
            top1 = top1_of(paths, model)
            feats, probs = backbone_outputs(paths)
            if probe_p is None:
                probe_p = probe.probability(feats)
            p_back = shipped_card_back_model().probability(feats)
            prior = prior_landmark_score(probs)
            shipped = combine(prior, probe_p, p_back)  # the corpus row: out-of-source probes in the same formula
            if name.startswith(("realsample", "demo")):  # the shipped probe: the score the product computes
                assert np.allclose(shipped, place_scores_from_features(feats, probs))
            figures(name, top1, man.labels, {"similarity only": None, "similarity + ImageNet prior (before)": prior,
                                             "similarity + probe x front": probe_p * (1.0 - p_back),
                                             "similarity + shipped score": shipped}, args.seeds)


if __name__ == "__main__":
    main()
