"""The text stages' core entry points, without Dagster: incremental caption OCR and text embeddings."""

from __future__ import annotations

import gc
import shutil
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vpr_assets.core.text.batch import embed_batch_texts, read_batch_captions
from vpr_assets.core.text.ocr import CaptionOCR, OcrSettings
from vpr_assets.core.text.text_embeddings import EMBED_DIM, embed_texts

POSTCARDS = Path(__file__).resolve().parents[2] / "data" / "geo_testset" / "images" / "europosts"


def test_captions_are_read_once_a_bad_scan_is_a_row_and_failures_are_retried(tmp_path):
    cards = sorted(POSTCARDS.glob("*.jpg"))[:2]
    shutil.copy(cards[0], tmp_path / "a.jpg")
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    scans = pd.DataFrame({"scan_id": ["a", "b"], "path": ["a.jpg", "b.jpg"]})
    settings = OcrSettings(other_scripts=())
    opened = []

    def open_reader():
        opened.append(1)
        return CaptionOCR(settings, gpu=False)

    first = read_batch_captions(scans, tmp_path, "b1", settings, [], open_reader, gpu=False)
    assert (first.read_now, first.reused, first.failed) == (2, 0, 1) and len(opened) == 1
    assert first.rows[0]["text"].strip() and first.rows[0]["error"] is None
    assert first.rows[1]["text"] == "" and "ImageRejected" in first.rows[1]["error"]
    assert first.engine.startswith("easyocr") and first.engine.endswith("cpu")
    assert {r["settings_hash"] for r in first.rows} == {first.settings_hash} == {settings.hash()}

    again = read_batch_captions(scans, tmp_path, "b1", settings, first.rows, open_reader, gpu=False)
    assert (again.read_now, again.reused) == (1, 1)  # the good card is kept, the failed one retried
    assert again.rows[0] is first.rows[0]

    shutil.copy(cards[1], tmp_path / "b.jpg")  # the curator replaced the broken file
    fixed = read_batch_captions(scans, tmp_path, "b1", settings, again.rows, open_reader, gpu=False)
    assert (fixed.read_now, fixed.failed) == (1, 0) and fixed.rows[1]["text"].strip()

    untouched = read_batch_captions(scans, tmp_path, "b1", settings, fixed.rows, open_reader, gpu=False)
    assert untouched.read_now == 0 and untouched.engine == "" and len(opened) == 3  # no reader opened
    assert untouched.settings_hash == first.settings_hash  # reported even when nothing was read

    other = OcrSettings(other_scripts=(), min_confidence=0.3)  # other settings: every card read again
    assert read_batch_captions(scans, tmp_path, "b1", other, fixed.rows, lambda: CaptionOCR(other, gpu=False),
                               gpu=False).read_now == 2


def test_keep_older_keeps_reads_of_other_settings_and_reads_only_new_or_failed_cards(tmp_path):
    """After an OCR change, re-running a batch need not re-read it: `keep_older` keeps every good earlier
    row (whose settings_hash still says what read it) and reads only cards without one."""
    cards = sorted(POSTCARDS.glob("*.jpg"))[:3]
    for name, card in zip("abc", cards):
        shutil.copy(card, tmp_path / f"{name}.jpg")
    (tmp_path / "d.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    old = OcrSettings(other_scripts=(), min_confidence=0.3)  # stands for an older pipeline's settings
    new = OcrSettings(other_scripts=())
    earlier = read_batch_captions(pd.DataFrame({"scan_id": ["a", "b", "d"], "path": ["a.jpg", "b.jpg", "d.jpg"]}),
                                  tmp_path, "b1", old, [], lambda: CaptionOCR(old, gpu=False), gpu=False)
    assert earlier.failed == 1 and earlier.settings_hash != new.hash()
    scans = pd.DataFrame({"scan_id": list("abcd"), "path": [f"{n}.jpg" for n in "abcd"]})  # c: added to the batch
    shutil.copy(cards[0], tmp_path / "d.jpg")  # the broken file was replaced
    opened = []

    def open_reader():
        opened.append(1)
        return CaptionOCR(new, gpu=False)

    kept = read_batch_captions(scans, tmp_path, "b1", new, earlier.rows, open_reader, gpu=False, keep_older=True)
    assert (kept.read_now, kept.reused, kept.kept_older, kept.failed) == (2, 2, 2, 0) and len(opened) == 1
    assert kept.rows[0] is earlier.rows[0] and kept.rows[1] is earlier.rows[1]
    assert [r["settings_hash"] for r in kept.rows] == [old.hash(), old.hash(), new.hash(), new.hash()]
    assert kept.summary()["kept_on_older_settings"] == 2 and kept.rows[3]["text"].strip()

    # without it the same call reads every card again (the default: a batch reflects today's settings)
    assert read_batch_captions(scans, tmp_path, "b1", new, earlier.rows, open_reader, gpu=False).read_now == 4
    with pytest.raises(ValueError, match="choose one"):
        read_batch_captions(scans, tmp_path, "b1", new, earlier.rows, open_reader, gpu=False, force=True, keep_older=True)


def test_text_embeddings_embed_each_distinct_text_once_and_reuse_earlier_vectors():
    scans = pd.DataFrame({"scan_id": ["a", "b", "c"],
                          "description": ["Tower Bridge, London", "Tower Bridge, London", None]})
    ocr = {"a": "LONDON Tower Bridge", "b": "", "c": ""}
    seen: list[list[str]] = []

    def encode(texts):
        seen.append(list(texts))
        return embed_texts(texts)

    res = embed_batch_texts(scans, ocr, {}, encode, EMBED_DIM)
    assert res.cards_with_text == 2 and {sid for sid, _ in res.keys} == {"a", "b"}  # c has no text at all
    assert len(seen[0]) == len(set(seen[0])) == res.embedded  # one call, each distinct text once
    assert res.vectors.shape == (len(res.keys), EMBED_DIM)
    assert np.allclose(np.linalg.norm(res.vectors, axis=1), 1.0, atol=1e-5)
    previous = dict(zip(res.texts, res.vectors))
    again = embed_batch_texts(scans, ocr, previous, encode, EMBED_DIM)
    assert again.embedded == 0 and again.reused == res.embedded and len(seen) == 1
    assert np.array_equal(again.vectors, res.vectors)


def test_streams_read_the_same_rows_in_the_scans_order(tmp_path):
    """Two cards at once (the batch default on a 2-core CPU) give the rows one at a time gives, in
    the scans' order, and a bad scan among them is still its own error row."""
    cards = sorted(POSTCARDS.glob("*.jpg"))[:4]
    for i, card in enumerate(cards):
        shutil.copy(card, tmp_path / f"{i}.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    ids = ["c0", "c1", "bad", "c2", "c3"]
    scans = pd.DataFrame({"scan_id": ids, "path": ["0.jpg", "1.jpg", "bad.jpg", "2.jpg", "3.jpg"]})
    settings = OcrSettings()  # the second engine included: it too runs in both streams
    warnings: list[str] = []
    done: list[int] = []
    threads: set[str] = set()
    frozen: list[int] = []

    class Watched(CaptionOCR):
        def read(self, image):
            threads.add(threading.current_thread().name)
            frozen.append(gc.get_freeze_count())  # the heap older than the batch: full collections skip it
            return super().read(image)

    one = read_batch_captions(scans, tmp_path, "b", settings, [], lambda: CaptionOCR(settings, gpu=False), gpu=False)
    two = read_batch_captions(scans, tmp_path, "b", settings, [], lambda: Watched(settings, gpu=False, streams=2),
                              gpu=False, progress=done.append, warn=warnings.append)
    assert len(threads) == 2 and all(t.startswith("ocr") for t in threads)  # two streams did read
    assert [r["scan_id"] for r in two.rows] == ids
    for a, b in zip(one.rows, two.rows):
        assert (a["text"], a["boxes"], a["error"] is None) == (b["text"], b["boxes"], b["error"] is None)
    assert two.failed == 1 and two.rows[2]["error"] and len(warnings) == 1 and "bad.jpg" in warnings[0]
    assert done == [1, 2, 3, 4, 5] and sum(bool(r["text"].strip()) for r in two.rows) >= 3
    assert len(frozen) == 4 and min(frozen) > 0 and gc.get_freeze_count() == 0  # frozen while reading (the bad scan never reaches read), not after
