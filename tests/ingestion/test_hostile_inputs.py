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


# --- finding 6: descriptions silently lost or corrupted ------------------------------------------


def _described_batch(tmp_path: Path, csv_bytes: bytes, n: int = 4) -> tuple[Path, Path]:
    home = tmp_path / "home"
    folder = home / "inbox" / "d"
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"c{i}.jpg").write_bytes(jpeg_bytes(photo(i)))
    (folder / "descriptions.csv").write_bytes(csv_bytes)
    return home, folder


def _descriptions(result) -> dict:
    return {r["file_name"]: r["description"] for r in result.scans}


def _desc_rejects(result) -> list[tuple[str, str]]:
    return [(r["path"].rpartition("#")[2], r["reason"]) for r in result.rejects if r["file_name"] == "descriptions.csv"]


def test_an_unterminated_quote_costs_one_row_not_every_row_after_it(tmp_path):
    home, folder = _described_batch(tmp_path, b'file,description\nc0.jpg,Tower Bridge\nc1.jpg,"Big Ben at night\n'
                                              b'c2.jpg,Eiffel Tower\nc3.jpg,"Sacre Coeur, Paris"\n')
    result = ingest_batch(folder, "d", home)
    assert _descriptions(result) == {"c0.jpg": "Tower Bridge", "c1.jpg": None, "c2.jpg": "Eiffel Tower",
                                     "c3.jpg": "Sacre Coeur, Paris"}
    assert _desc_rejects(result) == [("3", "bad_description_row")]


def test_a_quoted_description_over_several_lines_is_still_one_description(tmp_path):
    home, folder = _described_batch(tmp_path, b'file,description\nc0.jpg,"Tower Bridge,\nLondon"\nc1.jpg,Big Ben\n')
    result = ingest_batch(folder, "d", home)
    assert _descriptions(result)["c0.jpg"] == "Tower Bridge,\nLondon" and _descriptions(result)["c1.jpg"] == "Big Ben"
    assert _desc_rejects(result) == []


def test_one_huge_field_is_one_reject_and_the_other_descriptions_stay(tmp_path):
    huge = b"x" * 200_000  # over csv's 131,072-character field limit, which used to drop the whole file
    home, folder = _described_batch(tmp_path, b"file,description\nc0.jpg,Tower Bridge\nc1.jpg," + huge +
                                              b"\nc2.jpg,Eiffel Tower\n")
    result = ingest_batch(folder, "d", home)
    assert _descriptions(result) == {"c0.jpg": "Tower Bridge", "c1.jpg": None, "c2.jpg": "Eiffel Tower", "c3.jpg": None}
    assert _desc_rejects(result) == [("3", "description_too_long")]


def test_windows_1252_and_utf16_descriptions_are_read_as_written(tmp_path):
    text = "file,description\nc0.jpg,\u201cLe Louvre\u201d \u2013 entr\u00e9e 5 \u20ac\n"
    for encoding, expected_reject in (("cp1252", "description_encoding"), ("utf-16", "description_encoding"),
                                      ("utf-8", None)):
        home, folder = _described_batch(tmp_path / encoding, text.encode(encoding), n=1)
        result = ingest_batch(folder, "d", home)
        assert _descriptions(result)["c0.jpg"] == "\u201cLe Louvre\u201d \u2013 entr\u00e9e 5 \u20ac", encoding
        reasons = [reason for _, reason in _desc_rejects(result)]
        assert reasons == ([expected_reject] if expected_reject else []), encoding
        if expected_reject:
            assert encoding.replace("-", "") in result.rejects[0]["detail"].replace("-", "")


def test_a_descriptions_csv_that_is_a_folder_is_a_reject_not_a_crash(tmp_path):
    home = tmp_path / "home"
    folder = home / "inbox" / "d"
    (folder / "descriptions.csv").mkdir(parents=True)
    (folder / "c0.jpg").write_bytes(jpeg_bytes(photo(0)))
    result = ingest_batch(folder, "d", home)
    assert [r["file_name"] for r in result.scans] == ["c0.jpg"]
    assert [(r["file_name"], r["reason"]) for r in result.rejects] == [("descriptions.csv", "bad_descriptions_file")]


def test_the_description_of_a_duplicate_file_is_kept(tmp_path):
    from vpr_assets.core.ingest import drop_known_duplicates

    home = tmp_path / "home"
    same = jpeg_bytes(photo(42))
    (home / "inbox" / "early").mkdir(parents=True)
    (home / "inbox" / "early" / "a.jpg").write_bytes(same)
    early = ingest_batch(home / "inbox" / "early", "early", home)
    late_dir = home / "inbox" / "late"
    late_dir.mkdir()
    (late_dir / "again.jpg").write_bytes(same)
    (late_dir / "twin_1.jpg").write_bytes(jpeg_bytes(photo(43)))
    (late_dir / "twin_2.jpg").write_bytes(jpeg_bytes(photo(43)))
    (late_dir / "descriptions.csv").write_text("file,description\nagain.jpg,Tower Bridge in fog\n"
                                               "twin_2.jpg,Big Ben\n")
    late = drop_known_duplicates(ingest_batch(late_dir, "late", home), {r["scan_id"]: "early" for r in early.scans})
    rejects = {r["file_name"]: r for r in late.rejects}
    # a copy of an earlier batch's scan: its description stays in its reject row
    assert rejects["again.jpg"]["reason"] == "duplicate_file"
    assert rejects["again.jpg"]["description"] == "Tower Bridge in fog"
    # a copy within the batch: the kept scan, which had none, takes it
    assert [(r["file_name"], r["description"]) for r in late.scans] == [("twin_1.jpg", "Big Ben")]
    assert rejects["twin_2.jpg"]["description"] == "Big Ben" and "moved" in rejects["twin_2.jpg"]["detail"]
    assert late.rejects_table().column("description").to_pylist()  # the column is in the table schema


# --- finding 7: batch names the pipeline cannot store --------------------------------------------


@pytest.mark.parametrize("name", ["東京" * 20, "_all", "é" * 100, "%" * 70])
def test_batch_names_storage_cannot_hold_are_refused_before_registration(name):
    from vpr_assets.core.ingest import validate_batch_name

    with pytest.raises(ValueError, match="reserved|too long"):
        validate_batch_name(name)


def test_the_longest_accepted_names_are_really_written_and_listed(tmp_path):
    """What validation accepts, storage holds: a Parquet partition (atomic temporary file
    included), its listing, and the inbox folder."""
    import pyarrow as pa

    from vpr_assets.core.ingest import copy_batch_into_inbox, validate_batch_name
    from vpr_assets.storage import Catalog

    cjk = "東" * 22  # the longest CJK name accepted (22 x 9 = 198 bytes once percent-encoded)
    validate_batch_name(cjk)
    with pytest.raises(ValueError):
        validate_batch_name(cjk + "東")
    ascii_ = "w" * 128
    cat = Catalog(tmp_path / "home")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jpg").write_bytes(jpeg_bytes(photo(1)))
    for name in (cjk, ascii_, "all", "__all", "_all_"):
        validate_batch_name(name)
        cat.write_partition("names_probe", name, pa.table({"x": [1]}))
        copy_batch_into_inbox(src, tmp_path / "home" / "inbox", name)
    assert sorted(cat.partitions("names_probe")) == sorted([cjk, ascii_, "all", "__all", "_all_"])
    assert cat.query("SELECT count(*) AS n FROM names_probe").n[0] == 5
    with pytest.raises(ValueError, match="too long"):  # the catalog refuses it too, whoever calls
        cat.write_partition("names_probe", "東京" * 20, pa.table({"x": [1]}))


# --- minor: tables and thumbnails were written 0600 ----------------------------------------------


def test_tables_and_thumbnails_get_the_same_mode_as_other_new_files(tmp_path):
    import stat as stat_

    home = tmp_path / "home"
    folder = home / "inbox" / "b"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(jpeg_bytes(photo(1)))
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")  # what open() gives a new file under this umask
    expected = stat_.S_IMODE(plain.stat().st_mode)
    result = ingest_batch(folder, "b", home)
    from vpr_assets.storage import Catalog

    path = Catalog(home).write_partition("raw_scans", "b", result.scans_table())
    thumb = home / result.scans[0]["thumbnail"]
    assert stat_.S_IMODE(path.stat().st_mode) == expected
    assert stat_.S_IMODE(thumb.stat().st_mode) == expected


@pytest.mark.timeout(300)
def test_a_decode_worker_killed_mid_batch_does_not_fail_the_batch(tmp_path):
    """A worker process that dies (the OOM killer, a decoder crashing the interpreter) broke the
    process pool and with it the whole batch. Here a real worker is killed with SIGKILL."""
    import multiprocessing
    import signal
    import threading
    import time

    home = tmp_path / "home"
    folder = home / "inbox" / "b"
    folder.mkdir(parents=True)
    for i in range(24):
        (folder / f"c{i:02d}.jpg").write_bytes(jpeg_bytes(photo(i, (640, 480))))
    out = {}
    # a daemon thread: if ingestion ever hangs again, the test fails instead of holding the suite
    worker = threading.Thread(target=lambda: out.update(r=ingest_batch(folder, "b", home, workers=2)), daemon=True)
    worker.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and worker.is_alive() and time.monotonic() < deadline:
        children = multiprocessing.active_children()
        if children:
            killed = children[0].pid
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.01)
    worker.join(240)
    assert killed is not None, "no worker was seen to kill"
    result = out["r"]
    assert len(result.scans) + len(result.rejects) == 24
    assert len(result.scans) == 24, [r for r in result.rejects]  # each file retried in its own process


def test_a_file_that_outlives_the_decode_timeout_is_a_reject_and_the_batch_goes_on(tmp_path):
    """A decoder that never returns must not hold the batch: the file becomes `decoder_timeout`."""
    home = tmp_path / "home"
    folder = home / "inbox" / "b"
    folder.mkdir(parents=True)
    for i in range(10):  # large enough that no file is read within the limit, however busy the machine
        (folder / f"c{i:02d}.jpg").write_bytes(jpeg_bytes(photo(i, (2400, 1800))))
    result = ingest_batch(folder, "b", home, workers=2, decode_timeout_s=1e-4)
    assert len(result.rejects) == 10 and not result.scans
    assert {r["reason"] for r in result.rejects} == {"decoder_timeout"}
    assert sorted(r["file_name"] for r in result.rejects) == [f"c{i:02d}.jpg" for i in range(10)]
    again = ingest_batch(folder, "b", home, workers=2)  # with time enough, the same files are scans
    assert len(again.scans) == 10 and not again.rejects
