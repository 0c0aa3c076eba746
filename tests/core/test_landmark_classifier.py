"""landmark_score: the shipped landmark probe before labels, trained classifier after; labels.csv parsing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vpr_assets.core.curation.landmark_classifier import (
    ImageNetBackbone,
    LandmarkClassifier,
    parse_labels_csv,
    prior_landmark_score,
)
from vpr_assets.core.curation.landmark_probe import place_scores_from_features
from vpr_assets.core.curation.landmark_scoring import PRE_LABEL_SCORER, landmark_scores


@pytest.fixture(scope="module")
def sample(realsample_dir, realsample_manifest):
    m = realsample_manifest.reset_index(drop=True)
    X, P = ImageNetBackbone().embed([Image.open(realsample_dir / f).convert("RGB") for f in m.file])
    labels = np.where(m.label != "none", "landmark", "non_landmark")
    return m, X, P, labels


def test_prior_ranks_landmark_photos_above_distractors(sample):
    m, X, P, labels = sample
    prior = prior_landmark_score(P)
    assert ((prior >= 0) & (prior <= 1)).all()
    lm = prior[(m.kind == "landmark").to_numpy()]
    dis = prior[m.kind.isin(["distractor", "text", "postcard_back"]).to_numpy()]
    assert np.median(lm) > 0.4 and dis.max() < 0.1 and np.median(lm) > 10 * np.median(dis)
    scores, scorer = landmark_scores(X, P, classifier=None)
    assert scorer == PRE_LABEL_SCORER == "landmark_probe" and np.allclose(scores, place_scores_from_features(X, P))


def test_classifier_cross_validated_accuracy_and_held_out_ranking(sample, tmp_path):
    m, X, P, labels = sample
    clf = LandmarkClassifier()
    acc, oof = clf.cross_validate(X, labels, folds=5)
    print(f"landmark classifier: {clf.cv_folds}-fold stratified CV accuracy {acc:.3f} on {len(labels)} real images")
    assert acc >= 0.85
    # out-of-fold scores: every distractor photo scored on a model that never saw it
    lm = oof[(m.kind == "landmark").to_numpy()]
    dis = oof[(m.kind == "distractor").to_numpy()]
    assert lm.mean() > dis.mean() + 0.4
    assert np.median(lm) > np.percentile(dis, 90)
    # fit on everything, save atomically, load, same scores
    assert clf.fit(X, labels) == pytest.approx(acc)
    path = clf.save(tmp_path / "models" / "landmark.joblib")
    again = LandmarkClassifier.load(path)
    scores, scorer = landmark_scores(X, P, again)
    assert scorer == "classifier" and np.allclose(scores, clf.score(X))
    assert again.class_counts["landmark"] == int((labels == "landmark").sum())


def test_low_interest_counts_as_not_landmark_and_one_class_is_refused(sample):
    m, X, _, labels = sample
    mixed = labels.copy()
    mixed[(m.kind == "text").to_numpy()] = "low_interest"
    assert LandmarkClassifier.targets(mixed).sum() == (labels == "landmark").sum()
    with pytest.raises(ValueError):
        LandmarkClassifier().fit(X[:5], ["landmark"] * 5)


def test_parse_labels_csv_reports_problems_without_crashing(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text(
        "file,label\n"
        "a.jpg,landmark\n"
        "b.jpg,Non-Landmark\n"
        "c.jpg,monument\n"
        ",landmark\n"
        "a.jpg,low_interest\n"
        "d.jpg,low interest\n",
        encoding="utf-8",
    )
    rows, problems = parse_labels_csv(p)
    assert [(r["key"], r["label"]) for r in rows] == [("a.jpg", "landmark"), ("b.jpg", "non_landmark"), ("d.jpg", "low_interest")]
    assert len(problems) == 3 and any("monument" in x for x in problems)
    p2 = tmp_path / "bad.csv"
    p2.write_text("name,kind\nx,y\n")
    rows, problems = parse_labels_csv(p2)
    assert rows == [] and problems
    q = tmp_path / "ids.csv"
    q.write_text("scan_id,label\nabc123,landmark\n")
    assert parse_labels_csv(q)[0] == [{"key": "abc123", "key_kind": "scan_id", "label": "landmark"}]


def test_a_batch_reads_the_saved_classifier_and_says_when_labels_moved_on(tmp_path, monkeypatch, sample):
    """`saved_landmark_classifier` never trains: the prior before the classifier stage ran, the saved
    classifier afterwards (with a note once the labels differ from those it was fitted on), the
    prior again once `clear_landmark_classifier` removed it; a damaged file is the prior, not a crash."""
    from vpr_assets.core.curation import landmark_scoring as ls

    monkeypatch.setattr(ls, "_log_mlflow", lambda home, clf, fp: None)  # MLflow is covered by the pipeline test
    m, X, P, labels = sample
    ids = [f"s{i}" for i in range(len(m))]
    labelled = dict(zip(ids, labels))
    assert ls.saved_landmark_classifier(tmp_path, labelled).classifier is None
    fitted = ls.landmark_classifier(tmp_path, labelled, None, dict(zip(ids, X)))
    assert fitted.trained_now and fitted.classifier is not None
    same = ls.saved_landmark_classifier(tmp_path, labelled)
    assert same.classifier is not None and same.fingerprint == fitted.fingerprint and "current labels" in same.note
    moved = ls.saved_landmark_classifier(tmp_path, {**labelled, "s0": "non_landmark" if labels[0] == "landmark" else "landmark"})
    assert moved.classifier is not None and "earlier labels" in moved.note
    (tmp_path / ls.CLASSIFIER_DIR / ls.CLASSIFIER_FILE).write_bytes(b"not a model")
    assert ls.saved_landmark_classifier(tmp_path, labelled).classifier is None
    assert ls.clear_landmark_classifier(tmp_path) and not ls.clear_landmark_classifier(tmp_path)
    assert ls.saved_landmark_classifier(tmp_path, labelled).classifier is None
