"""data/caption_truth/captions.tsv transcribes the committed geo-test-set pictures themselves: one row
per committed picture, in the manifest's order, for the very file committed (sha256), split as
bench_scripts.py splits the Latin cards (the first 40 dev), so that a changed picture or a reordered
manifest cannot silently score OCR against another card's print."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_caption_truth_rows_are_the_committed_pictures_in_order():
    with open(ROOT / "data" / "geo_testset" / "MANIFEST.tsv", encoding="utf-8") as f:
        committed = [r for r in csv.DictReader(f, delimiter="\t") if r["committed"] == "yes"]
    with open(ROOT / "data" / "caption_truth" / "captions.tsv", encoding="utf-8") as f:
        truth = list(csv.DictReader(f, delimiter="\t"))
    assert [r["file"] for r in truth] == [r["file"] for r in committed]
    for i, (t, m) in enumerate(zip(truth, committed)):
        data = (ROOT / "data" / "geo_testset" / t["file"]).read_bytes()
        assert t["file_sha256"] == m["file_sha256"] == hashlib.sha256(data).hexdigest(), t["file"]
        assert t["split"] == ("dev" if i < 40 else "heldout")
        assert t["handwriting"] in ("yes", "no") and None not in t.values()
    assert sum(bool(t["caption"].strip()) for t in truth) >= 80  # most fronts print a caption
