"""Promotion: does a registered candidate beat the champion (or, before any, the pretrained embedder)?

`judge` is read-only, so the blocking check can run it as often as it likes; `promote` applies a
decision (version tags, and the `champion` alias when the candidate won). The pretrained bar is
evaluated once per (dev set, pretrained model) and cached beside the models.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from vpr_assets.core.active_model import PRETRAINED_MODEL, REGISTERED_MODEL
from vpr_assets.core.tracking import CHAMPION, PROMOTION_METRICS, ModelRegistry, PromotionDecision
from vpr_assets.storage.atomic import atomic_write_bytes

BASELINE_CACHE = Path("models") / "baselines"


def _manifest_digest(m) -> str:
    """Digest of a read dev manifest: file, label and size of every image (a changed dev set is a new bar)."""
    h = hashlib.sha256()
    for f, label in zip(m.files, m.labels):
        p = Path(m.root) / f
        h.update(f"{f}\t{label}\t{p.stat().st_size if p.exists() else -1}\n".encode())
    return h.hexdigest()[:16]


def pretrained_baseline(home: Path, manifest: str | Path, pretrained: str = PRETRAINED_MODEL) -> dict[str, float]:
    """Figures of the pretrained embedder on the dev manifest (mAP_at_5, landmark_accuracy)."""
    from vpr_assets.core.active_model import active_model
    from vpr_assets.core.evaluation import embed_fn_for, evaluate_manifest, read_manifest

    m = read_manifest(manifest)
    cache = Path(home) / BASELINE_CACHE / f"{pretrained}-{_manifest_digest(m)}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    res = evaluate_manifest(m, embed_fn_for(active_model(home, f"pretrained:{pretrained}")))
    figures = {"mAP_at_5": float(res.metrics["mAP@5"]), "landmark_accuracy": float(res.metrics["landmark_accuracy"])}
    atomic_write_bytes(cache, json.dumps(figures).encode())
    return figures


@dataclass(frozen=True)
class Candidate:
    """A registered version and the dev figures it was registered with."""

    version: str
    figures: Mapping[str, float]
    eval_manifest: str = ""

    @property
    def has_figures(self) -> bool:
        return all(self.figures.get(m) is not None and self.figures[m] == self.figures[m] for m in PROMOTION_METRICS)


def judge(home: Path, candidate: Candidate, model: str = REGISTERED_MODEL) -> PromotionDecision:
    """The promotion decision for `candidate`, without changing the registry."""
    registry = ModelRegistry(home)
    if not candidate.has_figures:
        return PromotionDecision(False, candidate.version, None, dict(candidate.figures), {},
                                 "candidate has no evaluation figures")
    baseline = None
    if registry.version_by_alias(model, CHAMPION) is None:
        if not candidate.eval_manifest or not Path(candidate.eval_manifest).exists():
            return PromotionDecision(False, candidate.version, None, dict(candidate.figures), {},
                                     "no dev manifest to measure the pretrained embedder on")
        baseline = pretrained_baseline(home, candidate.eval_manifest)
    return registry.decide(model, candidate.version, candidate.figures, baseline=baseline,
                           baseline_label=f"pretrained:{PRETRAINED_MODEL}")


def promote(home: Path, decision: PromotionDecision, model: str = REGISTERED_MODEL) -> None:
    """Record `decision` on the version; move `champion` when it won."""
    ModelRegistry(home).apply(model, decision)
