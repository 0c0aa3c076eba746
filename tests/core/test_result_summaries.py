"""The core results' own summaries: the figures `ocr_text`, `geo_words` and `vpr_model` record as metadata
and the keys their data versions hash, checked on hand-made results (no Dagster, no models)."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa

from vpr_assets.core.text.batch import GeoWordsBatch, OcrBatch
from vpr_assets.core.training.run import TrainingRun
from vpr_assets.storage.schemas import VPR_MODELS_SCHEMA


def ocr_rows() -> list[dict]:
    row = {"settings_hash": "h1", "error": None}
    return [{**row, "scan_id": "a", "text": "PARIS Notre-Dame", "mean_confidence": 0.9},
            {**row, "scan_id": "b", "text": "LONDON", "mean_confidence": 0.5},
            {**row, "scan_id": "c", "text": "  \n", "mean_confidence": None},  # whitespace only: no text
            {**row, "scan_id": "d", "text": "", "mean_confidence": None, "error": "ImageRejected: unreadable"}]


def test_ocr_summary_counts_text_failures_and_confidence():
    res = OcrBatch(ocr_rows(), read_now=2, reused=2, failed=1, engine="", reader_load_seconds=1.234,
                   ocr_seconds=4.0, settings_hash="h1")
    assert res.summary() == {"ocr_now": 2, "reused": 2, "kept_on_older_settings": 0, "failed": 1, "cards_with_text": 2, "mean_confidence": 0.7,
                             "images_per_second": 0.5, "reader_load_seconds": 1.23, "settings_hash": "h1",
                             "engine": "(nothing read this run)"}
    nothing = OcrBatch([ocr_rows()[2]], 0, 1, 0, "easyocr", 0.0, 0.0, "h1").summary()
    assert (nothing["mean_confidence"], nothing["images_per_second"], nothing["engine"]) == (0.0, 0.0, "easyocr")


def test_ocr_row_keys_follow_text_settings_and_error():
    keys = OcrBatch(ocr_rows(), 0, 4, 1, "", 0.0, 0.0, "h1").row_keys()
    assert keys[0] == "a|h1|PARIS Notre-Dame|" and keys[3] == "d|h1||ImageRejected: unreadable"
    changed = ocr_rows()
    changed[1]["text"] = "LONDRES"
    assert OcrBatch(changed, 0, 4, 1, "", 0.0, 0.0, "h1").row_keys()[1] != keys[1]


def place(name: str, kind: str) -> dict:
    return {"name": name, "country": "FR", "lat": 48.85, "lon": 2.35, "score": 1.0, "kind": kind, "matched": name.lower(),
            "city": None, "population": None}


def test_geo_words_summary_counts_cards_by_what_was_found():
    paris, tower = place("Paris", "city"), place("Eiffel Tower", "landmark")
    rows = [{"scan_id": "a", "words": ["paris"], "places": [paris, tower], "place": tower},
            {"scan_id": "b", "words": ["paris"], "places": [paris], "place": None},
            {"scan_id": "c", "words": [], "places": [], "place": None}]
    res = GeoWordsBatch(rows, "lex1")
    assert res.summary() == {"cards_with_places": 2, "cards_with_a_resolved_place": 1, "cards_with_city": 2,
                             "cards_with_landmark": 1, "cards_without_places": 1}
    keys = res.row_keys()
    assert len(set(keys)) == 3 and keys[0].startswith('a|["paris"]|')
    rows[1]["place"] = paris  # resolving a place is a change of content
    assert GeoWordsBatch(rows, "lex1").row_keys()[1] != keys[1]


def training_run(figures: dict) -> TrainingRun:
    return TrainingRun("image_only", "7", "run-1", "exp-1", figures, {"a": 0, "b": 1}, [], 12.345, 30, 0.25)


def test_training_run_summary_and_history_row():
    run = training_run({"mAP@5": 0.8, "landmark_accuracy": 0.9})
    assert run.summary() == {"registered_model": "vpr_landmark_recognizer", "version": "7", "alias": "candidate",
                             "mlflow_run_id": "run-1", "mAP@5": 0.8, "landmark_accuracy": 0.9, "classes": 2,
                             "training_items": 30, "train_seconds": 12.3, "final_loss": 0.25}
    row = run.history_row({"raw_scans": "v1"}, Path("/eval/manifest.tsv"), "dagster-run")
    assert (row["mAP_at_5"], row["n_classes"], row["input_data_versions"], row["eval_manifest"]) == \
        (0.8, 2, '{"raw_scans": "v1"}', "/eval/manifest.tsv")
    assert pa.Table.from_pylist([row], schema=VPR_MODELS_SCHEMA).num_rows == 1  # the history table takes it as it is


def test_training_run_without_dev_figures():
    run = training_run({})
    assert math.isnan(run.summary()["mAP@5"]) and math.isnan(run.summary()["landmark_accuracy"])
    row = run.history_row({}, None, "dagster-run")
    assert (row["mAP_at_5"], row["landmark_accuracy"], row["eval_manifest"]) == (None, None, "")
