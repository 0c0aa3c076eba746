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


# --- finding 5: `vpr ingest` and links ----------------------------------------------------------


def _hostile_source(tmp_path: Path) -> Path:
    """A folder as a user might hand to `vpr ingest`: one good scan and every kind of entry
    that must not be copied as data."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "good.jpg").write_bytes(jpeg_bytes(photo(1)))
    (src / "sub" / "inner.jpg").write_bytes(jpeg_bytes(photo(2)))
    secret = tmp_path / "outside" / "secret.jpg"
    secret.parent.mkdir()
    secret.write_bytes(jpeg_bytes(photo(3)))
    os.symlink(secret, src / "to_outside.jpg")  # a link to a file outside the batch
    os.symlink("/etc/passwd", src / "passwd.jpg")  # a system file
    os.symlink(src / "nothing.jpg", src / "dangling.jpg")
    os.symlink("loop_b.jpg", src / "loop_a.jpg")
    os.symlink("loop_a.jpg", src / "loop_b.jpg")
    os.symlink("good.jpg", src / "alias.jpg")  # inside the batch: the target is copied itself
    os.symlink(secret.parent, src / "linked_folder")  # a linked folder
    os.mkfifo(src / "pipe.jpg")
    return src


EXPECTED_NOT_COPIED = {
    "to_outside.jpg": "link_outside_batch", "passwd.jpg": "link_outside_batch", "dangling.jpg": "dangling_link",
    "loop_a.jpg": "link_loop", "loop_b.jpg": "link_loop", "alias.jpg": "link_in_batch",
    "linked_folder": "link_outside_batch", "pipe.jpg": "special_file",
}


@pytest.mark.timeout(120)
def test_ingest_copies_only_regular_files_and_each_refused_entry_becomes_a_reject(tmp_path):
    from vpr_assets.core.ingest import copy_batch_into_inbox, read_not_copied

    src = _hostile_source(tmp_path)
    home = tmp_path / "home"
    inbox = home / "inbox"
    target, created = copy_batch_into_inbox(src, inbox, "b")
    assert created
    copied = sorted(str(p.relative_to(target)) for p in target.rglob("*") if not p.is_dir())
    assert copied == [".vpr_not_copied.tsv", "good.jpg", "sub/inner.jpg"]  # no link, no pipe, no passwd
    assert not any(p.is_symlink() for p in target.rglob("*"))
    assert {rel: reason for rel, reason, _ in read_not_copied(target)} == EXPECTED_NOT_COPIED
    assert not list(inbox.glob(".incoming-*"))
    # the same folder again is a no-op, not an error
    assert copy_batch_into_inbox(src, inbox, "b") == (target, False)

    result = ingest_batch(target, "b", home)
    assert sorted(r["file_name"] for r in result.scans) == ["good.jpg", "inner.jpg"]
    rejects = {r["path"]: r["reason"] for r in result.rejects}
    assert rejects == {f"inbox/b/{rel}": reason for rel, reason in EXPECTED_NOT_COPIED.items()}


def test_a_failed_copy_leaves_no_staging_folder(tmp_path):
    from vpr_assets.core.ingest import copy_batch_into_inbox

    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"c{i}.jpg").write_bytes(jpeg_bytes(photo(i)))
    inbox = tmp_path / "inbox"

    def interrupted():
        raise KeyboardInterrupt  # Ctrl-C in the middle of the copy

    with pytest.raises(KeyboardInterrupt):
        copy_batch_into_inbox(src, inbox, "b", progress=interrupted)
    assert sorted(p.name for p in inbox.iterdir()) == [".ingest.lock"]  # no batch, no staging folder
    target, created = copy_batch_into_inbox(src, inbox, "b")  # and a retry works
    assert created and len(list(target.iterdir())) == 3


@pytest.mark.timeout(300)
def test_two_concurrent_copies_of_one_new_batch_name_are_serialised(tmp_path):
    """Two `vpr ingest` of one new name failed once in three ("Directory not empty")."""
    import subprocess
    import sys

    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        (src / f"c{i:02d}.jpg").write_bytes(jpeg_bytes(photo(i, (640, 480))))
    code = ("import sys; from pathlib import Path; from vpr_assets.core.ingest import copy_batch_into_inbox;"
            "t, c = copy_batch_into_inbox(Path(sys.argv[1]), Path(sys.argv[2]), 'same'); print(c)")
    root = Path(__file__).resolve().parents[2]
    for attempt in range(3):
        inbox = tmp_path / f"inbox{attempt}"
        procs = [subprocess.Popen([sys.executable, "-c", code, str(src), str(inbox)], cwd=root, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env={**os.environ, "PYTHONPATH": str(root)}) for _ in range(2)]
        outs = [p.communicate(120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        assert sorted(o.strip() for o, _ in outs) == ["False", "True"]  # one copied, one found it done
        assert sorted(p.name for p in inbox.iterdir()) == [".ingest.lock", "same"]
        assert len(list((inbox / "same").iterdir())) == 40
