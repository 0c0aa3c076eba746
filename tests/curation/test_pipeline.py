"""The curation glue without Dagster: curator files, and the cross-batch representative rule."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vpr_assets.core.curation.assessment import derived_table
from vpr_assets.core.curation.curator_files import Decisions, read_curator_labels, read_decisions
from vpr_assets.core.curation.duplicate_groups import resolve_duplicates
from vpr_assets.core.curation.tables import SCAN_QUALITY_SCHEMA, quality_table

H1, H1_NEAR, H2 = "f0f0f0f0f0f0f0f0", "f0f0f0f0f0f0f0f1", "0f0f0f0f0f0f0f0f"


def _new(*rows):
    return pd.DataFrame([{"scan_id": s, "phash": h, "dhash": h, "label": lab, "quality_score": q} for s, h, lab, q in rows])


def _existing(*rows):
    return pd.DataFrame([{"scan_id": s, "batch": "old", "phash": h, "dhash": h, "status": st, "quality_score": q}
                         for s, h, st, q in rows], columns=["scan_id", "batch", "phash", "dhash", "status", "quality_score"])


def _pointers(res) -> dict:
    return {r.scan_id: (None if pd.isna(r.duplicate_of) else r.duplicate_of) for r in res.table.itertuples()}


def test_read_decisions_formats_and_problems(tmp_path):
    p = tmp_path / "decisions.csv"
    p.write_text("scan_id,decision\na,keep\nb,REJECT\na,not_duplicate:c\nc,not_duplicate:a\nb,keep\nd,maybe\n,keep\ne,not_duplicate:e\n")
    d = read_decisions(p)
    assert d.keep == {"a"} and d.reject == {"b"}
    assert d.not_duplicates == [("a", "c")]
    assert len(d.problems) == 4  # b keep-vs-reject clash, unknown 'maybe', no scan_id, e not-duplicate of itself
    assert read_decisions(tmp_path / "absent.csv").rows == 0
    (tmp_path / "bad.csv").write_text("id,what\nx,keep\n")
    assert read_decisions(tmp_path / "bad.csv").problems


def test_later_better_copy_points_to_the_earlier_kept_representative():
    existing = _existing(("A", H1, "keep", 5.0), ("Z", H2, "keep", 5.0))
    new = _new(("B", H1_NEAR, "good", 9.0), ("C", H2, "good", 1.0))
    res = resolve_duplicates(new, existing, Decisions(), {})
    assert _pointers(res) == {"B": "A", "C": "Z"} and res.incumbents_used == 2
    # the other batch not curated yet (no status): the best scan of this batch is the representative
    res = resolve_duplicates(new, _existing(("A", H1, None, None)), Decisions(), {})
    assert _pointers(res)["B"] is None and res.table.set_index("scan_id").loc["B", "is_representative"]
    # the earlier copy a duplicate itself, or rejected by a curator: not a representative any more
    res = resolve_duplicates(new, _existing(("A", H1, "duplicate", 5.0)), Decisions(), {})
    assert _pointers(res)["B"] is None
    res = resolve_duplicates(new, existing, Decisions(reject={"A"}), {})
    assert _pointers(res)["B"] is None


def test_within_batch_best_copy_curator_keep_and_not_duplicate():
    new = _new(("B", H1, "good", 5.0), ("B2", H1_NEAR, "good", 7.0), ("B3", H1, "bad", 9.0))
    res = resolve_duplicates(new, _existing(), Decisions(), {})
    assert _pointers(res) == {"B": "B2", "B2": None, "B3": "B2"}  # good beats a sharper bad copy
    res = resolve_duplicates(new, _existing(), Decisions(keep={"B"}), {})
    assert _pointers(res) == {"B": None, "B2": "B", "B3": "B"}  # a kept scan leads its group
    res = resolve_duplicates(_new(("B", H1, "good", 5.0)), _existing(("A", H1, "keep", 5.0)),
                             Decisions(not_duplicates=[("A", "B")]), {})
    assert _pointers(res) == {"B": None}


def test_embeddings_confirm_or_veto_hash_pairs():
    new = _new(("B", H1_NEAR, "good", 9.0))
    existing = _existing(("A", H1, "keep", 5.0))
    same = {"A": np.array([1.0, 0.0]), "B": np.array([0.95, 0.1])}
    other = {"A": np.array([1.0, 0.0]), "B": np.array([0.0, 1.0])}
    res = resolve_duplicates(new, existing, Decisions(), lambda ids: {k: v for k, v in same.items() if k in ids})
    row = res.table.iloc[0]
    assert row.duplicate_of == "A" and row.duplicate_evidence == "embedding" and row.duplicate_cosine > 0.9
    res = resolve_duplicates(new, existing, Decisions(), other)
    assert _pointers(res) == {"B": None}


def test_curator_labels_resolve_files_paths_and_batch_files(tmp_path):
    scans = pd.DataFrame({"scan_id": ["s1", "s2", "s3", "s4"], "batch": ["b1", "b1", "b2", "b2"],
                          "path": ["inbox/b1/a.jpg", "inbox/b1/same.jpg", "inbox/b2/same.jpg", "inbox/b2/c.jpg"],
                          "file_name": ["a.jpg", "same.jpg", "same.jpg", "c.jpg"]})
    (tmp_path / "curation").mkdir()
    (tmp_path / "curation" / "labels.csv").write_text(
        "file,label\na.jpg,landmark\ninbox/b1/same.jpg,non_landmark\nsame.jpg,landmark\nmissing.jpg,landmark\n")
    (tmp_path / "inbox" / "b2").mkdir(parents=True)
    (tmp_path / "inbox" / "b2" / "labels.csv").write_text("file,label\nsame.jpg,low_interest\nc.jpg,landmark\n")
    labels, problems = read_curator_labels(tmp_path, scans)
    assert labels == {"s1": "landmark", "s2": "non_landmark", "s3": "low_interest", "s4": "landmark"}
    assert any("ambiguous" in p for p in problems) and any("missing.jpg" in p for p in problems)


def test_empty_batch_tables_keep_their_schema():
    assert quality_table([]).schema == SCAN_QUALITY_SCHEMA
    assert derived_table([]).num_rows == 0


def test_a_broken_hand_edited_decisions_file_does_not_hide_the_browser_log(tmp_path):
    from vpr_assets.core.curation.curator_files import DECISIONS_FILE, DECISIONS_LOG, append_curator_action, read_decisions

    (tmp_path / "curation").mkdir()
    (tmp_path / DECISIONS_FILE).write_text("id,what\nA,keep\n", encoding="utf-8")
    append_curator_action(tmp_path, DECISIONS_LOG, "A", "reject", "ana")
    append_curator_action(tmp_path, DECISIONS_LOG, "A", "not_duplicate:B", "ana")
    append_curator_action(tmp_path, DECISIONS_LOG, "B", "not_duplicate:A", "ben")
    d = read_decisions(tmp_path / DECISIONS_FILE)
    assert d.reject == {"A"} and d.keep == set()
    assert d.not_duplicates == [("A", "B")]  # one canonical pair, however often and whichever way it is said
    assert any("header must have" in p for p in d.problems)
    with open(tmp_path / DECISIONS_LOG, "a", encoding="utf-8") as fh:  # rows the browser would never write
        fh.write("C,maybe,eve,2026-12-01T00:00:00Z\nD,not_duplicate:D,eve,2026-12-01T00:00:01Z\nE,Keep,eve,x\n")
    d = read_decisions(tmp_path / DECISIONS_FILE)
    log_problems = [p for p in d.problems if p.startswith("decisions_log.csv: line")]
    assert len(log_problems) == 2 and "maybe" in log_problems[0] and "itself" in log_problems[1], d.problems
    assert d.keep == {"E"} and d.reject == {"A"}  # the bad rows are skipped, the rest of the log still counts


def test_a_cards_model_input_is_cut_as_the_curation_backbone_cuts_it(tmp_path, realsample_dir, realsample_manifest):
    """Assessment resizes in its worker threads; what it hands the backbone must be what the
    backbone's own preprocessing makes of the full picture (one resize policy, not a second one)."""
    from vpr_assets.core.curation.assessment import assess_scans
    from vpr_assets.core.curation.landmark_classifier import backbone
    from vpr_assets.core.images.decode import decode_image

    name = realsample_manifest.file[0]
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "card.jpg").write_bytes((realsample_dir / name).read_bytes())
    scans = pd.DataFrame([{"scan_id": "s1", "batch": "b", "path": "b/card.jpg"}])
    (assessed,) = assess_scans(tmp_path, scans)
    bb = backbone()
    full = decode_image(tmp_path / "b" / "card.jpg").image
    assert assessed.model_input.size == (bb.image_size, bb.image_size)
    np.testing.assert_array_equal(bb.preprocess.pixels(assessed.model_input), bb.preprocess.pixels(full))
