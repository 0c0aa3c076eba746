"""Retrieval evaluation on a labelled manifest: every landmark image queries all the others.

The manifest is a TSV with a header and columns `file` and `label` (`none` for distractors; other
columns ignored), like ../shared/data/realsample/MANIFEST.tsv. Distractors stay in the gallery.
A query is answered `non-landmark` when its best neighbour scores below a threshold; the threshold
is chosen on the data (best balanced accuracy of the landmark / non-landmark split) and reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from pydantic import Field

from vpr_assets.core.csv_rows import CsvRow, read_rows
from vpr_assets.core.files import is_regular_file
from vpr_assets.core.metrics import NONE_LABEL, evaluate_rankings

KS = (1, 3, 5, 10)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif"}


@dataclass
class Manifest:
    files: list[str]
    labels: list[str]
    root: Path
    problems: list[str] = field(default_factory=list)

    def paths(self) -> list[Path]:
        return [self.root / f for f in self.files]

    def frame(self):
        """file/label as a DataFrame (what MLflow logs as the dev set of a run)."""
        import pandas as pd

        return pd.DataFrame({"file": self.files, "label": self.labels})


class ManifestRow(CsvRow):
    """One row of a retrieval manifest (TSV): an image `file`, its `label` (`none` for a distractor),
    and optionally the `split` it belongs to."""

    file: str = Field(min_length=1)
    label: str = Field(min_length=1)
    split: str = ""


class DescriptionRow(CsvRow):
    """One row of the `descriptions.csv` beside a manifest."""

    file: str = Field(min_length=1)
    description: str = ""


def read_manifest(path: str | Path, images_dir: str | Path | None = None, split: str | None = None) -> Manifest:
    """Read `file`/`label` columns; rows for missing or non-image files are skipped and reported.

    `split` keeps the rows whose `split` column says so (e.g. "train" or "dev" of
    data/landmark_corpus); a manifest without that column is one split and keeps every row."""
    path = Path(path)
    root = Path(images_dir) if images_dir else path.parent
    if not path.is_file():
        raise FileNotFoundError(f"no manifest at {path}")
    read = read_rows(path, ManifestRow, required=("file", "label"), delimiter="\t")
    if not read.header_ok:
        raise ValueError(f"{path}: manifest needs a header with columns 'file' and 'label' ({'; '.join(read.problems)})")
    by_split = split is not None and "split" in read.header
    files, labels, problems = [], [], list(read.problems)
    first_line: dict[str, int] = {}
    for i, row in read:
        if by_split and row.split != split:
            continue
        f = row.file
        if Path(f).suffix.lower() not in IMAGE_SUFFIXES:
            problems.append(f"line {i}: {f} is not an image file")
            continue
        if not (root / f).exists():
            problems.append(f"line {i}: {f} not found under {root}")
            continue
        if not is_regular_file(root / f):  # a FIFO would hang the embedding, a device never end
            problems.append(f"line {i}: {f} is not a regular file")
            continue
        key = os.path.normpath(f)
        if key in first_line:  # a repeated image would be its own relevant neighbour (Recall@k 1.5)
            problems.append(f"line {i}: {f} repeats line {first_line[key]}; skipped")
            continue
        first_line[key] = i
        files.append(f)
        labels.append(row.label)
    if not files:
        raise ValueError(f"{path}: no usable rows{f' in split {split!r}' if split else ''} "
                         f"({len(problems)} problems: {problems[:3]})")
    return Manifest(files, labels, root, problems)


def manifest_descriptions(manifest: Manifest) -> dict[str, str]:
    """Descriptions of the manifest's images from a `descriptions.csv` (file,description) beside it,
    keyed by image path (what `embed_fn_for` fuses for models that see descriptions); {} if none."""
    read = read_rows(manifest.root / "descriptions.csv", DescriptionRow, required=("file", "description"))
    return {str(manifest.root / r.file): r.description for _, r in read if r.description}


def rank_all(vectors: np.ndarray, query_idx: Sequence[int] | None = None, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine ranking of every other item for each query: (order, scores), self excluded."""
    v = np.asarray(vectors, dtype=np.float32)
    q = np.arange(len(v)) if query_idx is None else np.asarray(query_idx)
    sims = v[q] @ v.T
    sims[np.arange(len(q)), q] = -np.inf
    order = np.argsort(-sims, axis=1, kind="stable")
    if k is not None:
        order = order[:, :k]
    return order[:, :-1] if k is None else order, np.take_along_axis(sims, order[:, :-1] if k is None else order, axis=1)


def choose_threshold(top_scores: np.ndarray, is_landmark: np.ndarray) -> float:
    """The top-1 score threshold that best separates landmark from non-landmark queries
    (balanced accuracy; midpoint between neighbouring scores)."""
    s = np.asarray(top_scores, dtype=np.float64)
    y = np.asarray(is_landmark, dtype=bool)
    if y.all() or (~y).all():
        return float(np.min(s) - 1e-6) if y.all() else float(np.max(s) + 1e-6)
    cands = np.unique(s)
    mids = np.concatenate([[cands[0] - 1e-6], (cands[:-1] + cands[1:]) / 2, [cands[-1] + 1e-6]])
    best, best_t = -1.0, float(mids[0])
    for t in mids:
        pred = s >= t
        bal = 0.5 * (pred[y].mean() + (~pred[~y]).mean())
        if bal > best + 1e-12:
            best, best_t = bal, float(t)
    return best_t


@dataclass
class EvaluationResult:
    metrics: dict[str, float]
    rankings: dict[str, list[str]]
    threshold: float
    top_scores: dict[str, float]


MIN_IMAGES = 2  # every image queries the others: one image has nothing to be compared with
MIN_PER_KIND_FOR_CROSS_FIT = 4  # fewer landmarks or distractors than this: the threshold is chosen in-sample


def evaluate_vectors(files: Sequence[str], labels: Sequence[str], vectors: np.ndarray,
                     threshold: float | None = None, ks: Sequence[int] = KS,
                     retrieval=None, paths: Sequence[str | Path] | None = None,
                     landmark_scores: Sequence[float] | None = None,
                     landmark_score_version: float | None = None) -> EvaluationResult:
    """Figures for embeddings of a manifest: every image queries all the others.

    Non-landmark rejection: with a fixed `threshold`, top-1 similarity below it; otherwise a
    `rejection.NonLandmarkRule` on the top-1 similarity and, when given, each image's
    `landmark_scores` (`landmark_score_version`: which score that is, recorded with the rule so that
    search never applies it to another), and the figures are cross-fitted (each query answered by a rule fitted
    without its landmark: `rejection_out_of_sample` = 1) unless the set is too small for that.
    `retrieval` (a `vision.rerank.RetrievalConfig`) ranks with whitening / DBA / QE / re-ranking /
    spatial verification instead of plain cosine; spatial verification needs the image `paths`."""
    files, labels = list(files), list(labels)
    if len(files) < MIN_IMAGES:
        raise ValueError(f"evaluation needs at least {MIN_IMAGES} usable images (every image queries the others), "
                         f"got {len(files)}")
    if len(set(files)) != len(files):
        raise ValueError("evaluation images must be distinct: a repeated file would be its own relevant neighbour")
    if retrieval is None:
        order, scores = rank_all(vectors)
    else:
        from vpr_assets.core.vision.rerank import rank_with

        order, scores = rank_with(retrieval, vectors, paths)
    rankings = {files[i]: [files[j] for j in order[i]] for i in range(len(files))}
    label_of = dict(zip(files, labels))
    top = scores[:, 0]
    is_landmark = np.array([lab != NONE_LABEL for lab in labels])
    chosen = choose_threshold(top, is_landmark) if threshold is None else float(threshold)
    in_sample = top >= chosen
    m = evaluate_rankings(rankings, label_of, ks=ks, is_landmark_pred=dict(zip(files, in_sample.tolist())))
    enough = min(is_landmark.sum(), (~is_landmark).sum()) >= MIN_PER_KIND_FOR_CROSS_FIT
    m["rejection_out_of_sample"] = float(threshold is None and enough)
    if threshold is None and enough:
        from vpr_assets.core.metrics import non_landmark_figures
        from vpr_assets.core.rejection import NonLandmarkRule, cross_fitted_predictions

        sim_only = cross_fitted_predictions(top, labels)
        p, r = non_landmark_figures(sim_only, is_landmark)
        m["NonLandmarkPrecision_similarity"], m["NonLandmarkRecall_similarity"] = p, r
        score = None if landmark_scores is None else np.asarray(landmark_scores, dtype=np.float64)
        pred = sim_only if score is None else cross_fitted_predictions(top, labels, score)
        m["NonLandmarkPrecision"], m["NonLandmarkRecall"] = non_landmark_figures(pred, is_landmark)
        m["rejection_uses_landmark_score"] = float(score is not None)
        # the rule fitted on all of this data, recorded with the evaluation: `vpr search` answers with it
        rule = NonLandmarkRule.fit(top, is_landmark, score)
        m.update(replace(rule, score_version=landmark_score_version if score is not None else None).as_metrics())
    m["landmark_accuracy"] = m.get("Accuracy@1", float("nan"))
    m["non_landmark_threshold"] = chosen
    m["n_images"] = len(files)
    return EvaluationResult(m, rankings, chosen, {files[i]: float(top[i]) for i in range(len(files))})


def evaluate_manifest(manifest: Manifest, embed: Callable[[list[Path]], tuple[np.ndarray, np.ndarray]],
                      threshold: float | None = None, retrieval=None,
                      landmark_score: Callable[[list[Path]], np.ndarray] | None = None) -> EvaluationResult:
    """Embed the manifest's images with `embed(paths) -> (vectors, ok mask)` and evaluate
    (`retrieval`: see `evaluate_vectors`; `landmark_score(paths)`, e.g. `landmark_score_fn()`,
    adds the landmark score to non-landmark rejection)."""
    vectors, ok = embed(manifest.paths())
    ok = np.asarray(ok, dtype=bool)
    files = [f for f, good in zip(manifest.files, ok) if good]
    labels = [lab for lab, good in zip(manifest.labels, ok) if good]
    paths = [p for p, good in zip(manifest.paths(), ok) if good]
    scores = landmark_score(paths) if landmark_score is not None else None
    result = evaluate_vectors(files, labels, np.asarray(vectors)[ok], threshold, retrieval=retrieval, paths=paths,
                              landmark_scores=scores, landmark_score_version=getattr(landmark_score, "version", None))
    result.metrics["n_failed"] = int((~ok).sum())
    return result


def embed_fn_for(model, image_size: int | None = None, text_vectors: dict | None = None, num_workers: int | None = None,
                 read_captions: bool = False, descriptions: dict | None = None, ocr_tools=None):
    """An `embed(paths)` for `evaluate_manifest` from an ActiveModel. For models that fuse text, each
    image is fused with its text: the collection's vector where its content hash is a scan_id of
    `text_vectors` (scan_id -> vector, the model's text source), else, with `read_captions`, its
    caption read now (as a query card's is, with `ocr_tools`) plus its entry in `descriptions` (path -> text)."""
    from vpr_assets.core.images.hashing import sha256_bytes
    from vpr_assets.core.vision.embedder import embed_paths

    def embed(paths: list[Path]):
        res = embed_paths(model.embedder, paths, image_size=image_size, num_workers=num_workers)
        vecs = res.vectors
        if getattr(model, "uses_text", False) and (text_vectors or read_captions):
            ids = [sha256_bytes(Path(p).read_bytes()) for p in paths]
            known = dict(text_vectors or {})
            if read_captions:
                from vpr_assets.core.query_text import query_text_vectors
                from vpr_assets.core.query_text import read_captions as ocr

                todo = [i for i, sid in enumerate(ids) if sid not in known and res.ok[i]]
                caps = ocr([paths[i] for i in todo], ocr_tools)
                desc = [(descriptions or {}).get(str(paths[i])) for i in todo]
                for i, v in zip(todo, query_text_vectors(model.text_sources, caps, desc)):
                    if v is not None:
                        known[ids[i]] = v
            vecs = model.recognizer.fuse_by_id(vecs, ids, known)
        return vecs, res.ok

    return embed


def landmark_score_fn(batch_size: int = 16):
    """`landmark_score(paths)` for `evaluate_manifest`: the score non-landmark rejection reads
    (`curation.landmark_probe.place_scores`: ImageNet prior and the shipped landmark probe, times
    P(front)). Its `version` is recorded with the rule. An image that cannot be read scores 0."""
    from vpr_assets.core.curation.landmark_probe import place_scores, scorer_version
    from vpr_assets.core.images.decode import load_rgb

    def score(paths: list[Path]) -> np.ndarray:
        out = np.zeros(len(paths), dtype=np.float64)
        for start in range(0, len(paths), batch_size):
            images, idx = [], []
            for i, p in enumerate(paths[start:start + batch_size], start=start):
                try:
                    images.append(load_rgb(p))
                    idx.append(i)
                except Exception:
                    continue
            out[idx] = place_scores(images)
        return out

    score.version = scorer_version()
    return score


def flat_figures(metrics: dict, ks: Sequence[int] = KS) -> dict[str, float]:
    """The figures `vpr evaluate` prints, in a stable order."""
    keys = [f"P@{k}" for k in ks] + ["R-precision"] + [f"Recall@{k}" for k in ks] + \
           [f"RecallCapped@{k}" for k in ks] + [f"mAP@{k}" for k in ks] + \
           ["landmark_accuracy", "NonLandmarkPrecision", "NonLandmarkRecall", "NonLandmarkPrecision_similarity",
            "NonLandmarkRecall_similarity", "rejection_out_of_sample", "rejection_uses_landmark_score",
            "rejection_w_similarity", "rejection_w_score", "rejection_bias", "rejection_score_version",
            "non_landmark_threshold", "n_queries", "n_images", "n_failed"]
    return {k: metrics[k] for k in keys if k in metrics}
