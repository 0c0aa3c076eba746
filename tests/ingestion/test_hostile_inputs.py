"""Hostile inputs (issue #15): no single file fails, hangs or empties a batch.

Real files on disk, real decoders; every finding of the issue has its regression test here or in
the test file of the part it touches (named in each test's docstring).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.badinput import corrupt_avif_bytes, jpeg_bytes, photo, uncaught_by_pillow
from vpr_assets.core.images.decode import ImageRejected, decode_image
from vpr_assets.core.ingest import ingest_batch

CRASHERS = sorted((Path(__file__).resolve().parents[1] / "fuzz_crashers").iterdir())


# --- finding 1: one corrupt file failed the whole batch ------------------------------------------


@pytest.mark.parametrize("path", CRASHERS, ids=lambda p: p.name)
def test_files_that_crashed_pillow_are_refused_with_the_exception_class(path):
    """Every file the mutation fuzz found (AVIF RuntimeError, IM/TIFF TypeError, Spider
    AttributeError) raises something other than OSError in plain Pillow, and is an
    `ImageRejected` with the exception class in its detail here."""
    data = path.read_bytes()
    exc = uncaught_by_pillow(data)
    if exc is None:
        pytest.skip(f"this Pillow no longer raises an unexpected type on {path.name}")
    with pytest.raises(ImageRejected) as err:
        decode_image(data)
    assert err.value.reason == "unreadable"
    assert type(exc).__name__ in err.value.detail


def test_a_corrupt_avif_is_one_reject_and_the_rest_of_the_batch_goes_on(tmp_path):
    bad = corrupt_avif_bytes()
    if bad is None:
        pytest.skip("no AVIF support in this Pillow")
    home = tmp_path / "home"
    folder = home / "inbox" / "b"
    folder.mkdir(parents=True)
    (folder / "a_good.jpg").write_bytes(jpeg_bytes(photo(1)))
    (folder / "b_corrupt.avif").write_bytes(bad)
    (folder / "c_good.jpg").write_bytes(jpeg_bytes(photo(2)))
    for workers in (1, 2):  # in-process and through the process pool
        result = ingest_batch(folder, "b", home, workers=workers)
        assert sorted(r["file_name"] for r in result.scans) == ["a_good.jpg", "c_good.jpg"]
        [rej] = result.rejects
        assert rej["file_name"] == "b_corrupt.avif" and rej["reason"] == "unreadable"
        assert "RuntimeError" in rej["detail"] and rej["sha256"] and rej["bytes"] == len(bad)


# --- finding 4: a named pipe hung the run -------------------------------------------------------


@pytest.mark.timeout(60)  # before the fix this hung for ever
def test_a_named_pipe_in_a_batch_is_a_reject_and_does_not_hang(tmp_path):
    home = tmp_path / "home"
    folder = home / "inbox" / "b"
    folder.mkdir(parents=True)
    (folder / "a_good.jpg").write_bytes(jpeg_bytes(photo(1)))
    os.mkfifo(folder / "b_pipe.jpg")
    result = ingest_batch(folder, "b", home)
    assert [r["file_name"] for r in result.scans] == ["a_good.jpg"]
    [rej] = result.rejects
    assert rej["file_name"] == "b_pipe.jpg" and rej["reason"] == "special_file"
    assert "FIFO" in rej["detail"]


@pytest.mark.timeout(60)
def test_decoding_a_path_that_is_a_pipe_or_device_is_refused_not_blocked(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    for path in (tmp_path / "pipe.jpg", Path("/dev/zero")):
        with pytest.raises(ImageRejected) as err:
            decode_image(path)
        assert err.value.reason == "special_file"


@pytest.mark.timeout(60)  # `vpr evaluate` hung on a FIFO listed in its manifest
def test_a_named_pipe_in_an_evaluation_manifest_is_a_problem_row_not_a_hang(tmp_path):
    from vpr_assets.core.evaluation import read_manifest

    for i in range(3):
        (tmp_path / f"c{i}.jpg").write_bytes(jpeg_bytes(photo(i)))
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "m.tsv").write_text("file\tlabel\nc0.jpg\ta\nc1.jpg\ta\npipe.jpg\ta\nc2.jpg\tnone\n")
    m = read_manifest(tmp_path / "m.tsv")
    assert m.files == ["c0.jpg", "c1.jpg", "c2.jpg"]
    assert any("pipe.jpg is not a regular file" in p for p in m.problems)
