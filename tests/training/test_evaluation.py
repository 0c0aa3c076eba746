"""Evaluation on manifests: rankings, the non-landmark threshold, manifest problems."""

from __future__ import annotations

import numpy as np
import pytest

from vpr_assets.core.evaluation import choose_threshold, evaluate_vectors, rank_all, read_manifest


def test_rank_all_excludes_self_and_orders_by_cosine():
    v = np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    order, scores = rank_all(v)
    assert order.tolist() == [[1, 2], [0, 2], [1, 0]]
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_choose_threshold_separates_landmarks_from_distractors():
    top = np.array([0.9, 0.85, 0.8, 0.4, 0.3])
    t = choose_threshold(top, np.array([1, 1, 1, 0, 0], bool))
    assert 0.4 < t < 0.8


def test_evaluate_vectors_hand_computed():
    # a1,a2 same landmark; b1,b2 same landmark; d distractor far from all
    files = ["a1", "a2", "b1", "b2", "d"]
    labels = ["a", "a", "b", "b", "none"]
    v = np.array([[1, 0, 0], [0.95, 0.05, 0], [0, 1, 0], [0.6, 0.4, 0.0], [0, 0, 1]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    res = evaluate_vectors(files, labels, v)
    # b2 (0.83, 0.55) is nearest a2, then a1 (both wrong), then b1 at rank 3
    assert res.rankings["b2"][:3] == ["a2", "a1", "b1"]
    m = res.metrics
    assert m["n_queries"] == 4
    assert m["P@1"] == pytest.approx(3 / 4)
    assert m["mAP@5"] == pytest.approx((1 + 1 + 1 + 1 / 3) / 4)
    assert m["landmark_accuracy"] == m["P@1"]
    assert m["NonLandmarkRecall"] == 1.0  # the distractor is answered non-landmark


def test_manifest_problems_are_reported_not_fatal(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "a.jpg")
    (tmp_path / "m.tsv").write_text("file\tlabel\tkind\na.jpg\tx\tlandmark\nmissing.jpg\tx\tl\nnotes.txt\tnone\tl\n")
    m = read_manifest(tmp_path / "m.tsv")
    assert m.files == ["a.jpg"] and len(m.problems) == 2
    (tmp_path / "bad.tsv").write_text("name\tlabel\na.jpg\tx\n")
    with pytest.raises(ValueError, match="file"):
        read_manifest(tmp_path / "bad.tsv")


# --- issue #15, finding 10: duplicate rows, tiny manifests, bounded figures ----------------------


def _manifest_dir(tmp_path, rows: str):
    from tests.badinput import jpeg_bytes, photo

    for i in range(4):
        (tmp_path / f"c{i}.jpg").write_bytes(jpeg_bytes(photo(i, (64, 48))))
    (tmp_path / "m.tsv").write_text("file\tlabel\n" + rows)
    return tmp_path / "m.tsv"


def test_duplicate_manifest_rows_are_skipped_and_figures_stay_at_most_one(tmp_path):
    from vpr_assets.core.evaluation import evaluate_vectors, read_manifest

    m = read_manifest(_manifest_dir(tmp_path, "c0.jpg\ta\nc1.jpg\ta\nc0.jpg\ta\n./c1.jpg\ta\nc2.jpg\tnone\n"))
    assert m.files == ["c0.jpg", "c1.jpg", "c2.jpg"]
    assert sum("repeats line" in p for p in m.problems) == 2
    vecs = np.eye(3, dtype=np.float32)
    res = evaluate_vectors(m.files, m.labels, vecs, threshold=0.5)
    assert all(0.0 <= v <= 1.0 for k, v in res.metrics.items() if k.split("@")[0] in ("P", "Recall", "mAP"))
    with pytest.raises(ValueError, match="distinct"):  # called directly with a repeated file
        evaluate_vectors(["a", "b", "a"], ["x", "x", "x"], np.eye(3, dtype=np.float32))


def test_ranked_duplicates_cannot_push_recall_or_map_over_one():
    from vpr_assets.core.metrics import evaluate_rankings

    labels = {"q": "a", "g1": "a", "g2": "b"}
    out = evaluate_rankings({"q": ["g1", "g1", "g1", "g2"]}, labels, ks=(1, 3))
    assert out["Recall@3"] == 1.0 and out["mAP@3"] == 1.0 and out["P@3"] == pytest.approx(1 / 3)


def test_a_one_row_manifest_is_a_clear_error_not_an_index_error(tmp_path):
    from vpr_assets.core.evaluation import evaluate_vectors, read_manifest

    m = read_manifest(_manifest_dir(tmp_path, "c0.jpg\ta\n"))
    with pytest.raises(ValueError, match="at least 2"):
        evaluate_vectors(m.files, m.labels, np.ones((1, 8), dtype=np.float32))


def test_vpr_evaluate_refuses_a_one_row_manifest_with_a_message(tmp_path, vpr_home, dagster_home, capsys):
    from vpr_assets.cli import main

    rc = main(["evaluate", "--manifest", str(_manifest_dir(tmp_path, "c0.jpg\ta\n")), "--no-record"])
    err = capsys.readouterr().err
    assert rc == 2 and "at least 2" in err and "IndexError" not in err
