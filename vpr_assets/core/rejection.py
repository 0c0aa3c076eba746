"""Is a query a landmark at all? Similarity to the collection combined with the landmark score.

The top-1 cosine alone does not separate landmarks from other pictures: distractor sequences
(rooms, kitchens, card backs) are near-duplicates of each other and score as high as a landmark
(docs/benchmarks.md). The landmark score (`curation.landmark_classifier`: the ImageNet prior, or
the curators' trained classifier) says whether a picture shows a place at all. `NonLandmarkRule`
is a balanced logistic regression on [top-1 similarity, logit(landmark score)].

Reported figures must come from a rule that did not see the query: `cross_fitted_predictions`
fits the rule on the other folds (landmarks grouped by label, so a landmark's own photos never
choose its threshold) and predicts each fold from them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

EPS = 1e-4


def _features(top1: np.ndarray, score: np.ndarray | None) -> np.ndarray:
    top1 = np.asarray(top1, dtype=np.float64).reshape(-1, 1)
    if score is None:
        return top1
    s = np.clip(np.asarray(score, dtype=np.float64), EPS, 1 - EPS).reshape(-1, 1)
    return np.hstack([top1, np.log(s / (1 - s))])


@dataclass
class NonLandmarkRule:
    """P(landmark) = sigmoid(w . [top1, logit(score)] + b); below 0.5 the answer is non-landmark."""

    weights: list[float]
    bias: float
    uses_score: bool
    score_version: float | None = None  # which landmark score it was fitted on (`landmark_probe.scorer_version`)

    @classmethod
    def fit(cls, top1, is_landmark, score=None, c: float = 1.0) -> "NonLandmarkRule":
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(is_landmark, dtype=bool)
        if y.all() or (~y).all():
            raise ValueError("the rule needs landmark and non-landmark examples")
        x = _features(top1, score)
        mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)  # standardised: one C suits both features
        lr = LogisticRegression(class_weight="balanced", C=c).fit((x - mean) / std, y)
        w = lr.coef_[0] / std  # folded back: the rule reads raw features
        return cls([float(v) for v in w], float(lr.intercept_[0] - (lr.coef_[0] * mean / std).sum()), score is not None)

    def probability(self, top1, score=None) -> np.ndarray:
        if self.uses_score and score is None:
            raise ValueError("this rule needs landmark scores")
        z = _features(top1, score if self.uses_score else None) @ np.asarray(self.weights) + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def is_landmark(self, top1, score=None) -> np.ndarray:
        return self.probability(top1, score) >= 0.5

    def to_json(self) -> dict:
        return asdict(self)

    def as_metrics(self) -> dict[str, float]:
        """The rule as evaluation figures (`rejection_*`), so it is stored with the evaluation."""
        out = {"rejection_w_similarity": self.weights[0], "rejection_bias": self.bias}
        if self.uses_score:
            out["rejection_w_score"] = self.weights[1]
            if self.score_version is not None:
                out["rejection_score_version"] = self.score_version
        return out

    @classmethod
    def from_metrics(cls, metrics: dict) -> "NonLandmarkRule | None":
        if "rejection_w_similarity" not in metrics or "rejection_bias" not in metrics:
            return None
        uses = "rejection_w_score" in metrics
        weights = [float(metrics["rejection_w_similarity"])] + ([float(metrics["rejection_w_score"])] if uses else [])
        version = metrics.get("rejection_score_version") if uses else None
        return cls(weights, float(metrics["rejection_bias"]), uses, None if version is None else float(version))

    @classmethod
    def from_json(cls, data: dict) -> "NonLandmarkRule":
        return cls(list(data["weights"]), float(data["bias"]), bool(data["uses_score"]), data.get("score_version"))


def cross_fitted_predictions(top1, labels, score=None, none_label: str = "none", folds: int = 5,
                             seed: int = 0) -> np.ndarray:
    """Landmark-or-not for every query from rules fitted without it (group k-fold: every photo of a
    landmark in one fold, distractors spread over the folds)."""
    labels = np.asarray(labels, dtype=object)
    y = labels != none_label
    groups = np.where(y, labels, np.array([f"#{i}" for i in range(len(labels))], dtype=object))
    uniq = sorted(set(groups))
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(uniq, rng.permutation(len(uniq)) % max(2, min(folds, len(uniq)))))
    fold = np.array([fold_of[g] for g in groups])
    out = np.zeros(len(labels), dtype=bool)
    top1 = np.asarray(top1, dtype=np.float64)
    score = None if score is None else np.asarray(score, dtype=np.float64)
    for f in np.unique(fold):
        test, train = fold == f, fold != f
        if y[train].all() or (~y[train]).all():  # a fold left only one kind to learn from
            rule_pred = np.full(test.sum(), bool(y[train].mean() >= 0.5))
        else:
            rule = NonLandmarkRule.fit(top1[train], y[train], None if score is None else score[train])
            rule_pred = rule.is_landmark(top1[test], None if score is None else score[test])
        out[test] = rule_pred
    return out
