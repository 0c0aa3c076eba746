"""Ingestion core: every awkward file becomes a scan or a reject with a clear reason."""

from __future__ import annotations

import pytest

from tests.badinput import jpeg_bytes, make_bad_batch, photo
from vpr_assets.core.images.decode import ImageRejected, decode_image
from vpr_assets.core.ingest import (
    copy_batch_into_inbox,
    drop_known_duplicates,
    ingest_batch,
    store_batch,
    validate_batch_name,
)


@pytest.fixture
def bad_batch(tmp_path):
    home = tmp_path / "home"
    folder = home / "inbox" / "b1"
    expected = make_bad_batch(folder)
    return home, folder, expected


def test_every_file_is_a_scan_or_a_reject_with_the_right_reason(bad_batch):
    home, folder, expected = bad_batch
    result = ingest_batch(folder, "b1", home)
    scans = {r["file_name"]: r for r in result.scans}
    rejects = {r["file_name"]: r for r in result.rejects if r["file_name"] != "descriptions.csv"}
    assert set(scans) | set(rejects) == set(expected)
    assert not set(scans) & set(rejects)
    for name, outcome in expected.items():
        if outcome == "ok":
            assert name in scans, f"{name} should be accepted, got {rejects.get(name)}"
        else:
            assert rejects[name]["reason"] == outcome, f"{name}: {rejects.get(name)}"
            assert rejects[name]["detail"] is not None


def test_scan_rows_carry_measurements_and_normalised_modes(bad_batch):
    home, folder, _ = bad_batch
    scans = {r["file_name"]: r for r in ingest_batch(folder, "b1", home).scans}
    assert scans["cmyk.jpg"]["mode"] == "CMYK"
    assert scans["sixteen_bit.png"]["mode"].startswith("I")
    assert scans["palette.png"]["mode"] == "P"
    assert scans["alpha.png"]["mode"] == "RGBA"
    rot = scans["rotated.jpg"]
    assert rot["exif_orientation"] == 6 and (rot["width"], rot["height"]) == (240, 320)
    good = scans["good.jpg"]
    assert len(good["scan_id"]) == 64 and good["path"] == "inbox/b1/good.jpg"
    assert good["description"] == "A good card, with a comma"
    assert scans["Zürich_Großmünster_東京.jpg"]["description"] == "Zürich. Großmünster"
    assert all(len(r[h]) == 16 for r in scans.values() for h in ("phash", "dhash", "whash"))
    assert (home / good["thumbnail"]).exists()


def test_descriptions_problems_become_rejects(bad_batch):
    home, folder, _ = bad_batch
    rejects = [r for r in ingest_batch(folder, "b1", home).rejects if r["file_name"] == "descriptions.csv"]
    reasons = sorted(r["reason"] for r in rejects)
    assert reasons == ["bad_description_row", "unknown_file_description"]
    assert all("#" in r["path"] for r in rejects)


def test_originals_are_never_modified(bad_batch):
    home, folder, _ = bad_batch
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    ingest_batch(folder, "b1", home)
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert before == after


def test_duplicate_in_a_later_batch_points_to_the_earlier_scan(tmp_path):
    home = tmp_path / "home"
    data = jpeg_bytes(photo(11))
    for b in ("early", "late"):
        (home / "inbox" / b).mkdir(parents=True)
        (home / "inbox" / b / "card.jpg").write_bytes(data)
    early = ingest_batch(home / "inbox" / "early", "early", home)
    known = {r["scan_id"]: "early" for r in early.scans}
    late = drop_known_duplicates(ingest_batch(home / "inbox" / "late", "late", home), known)
    assert not late.scans
    assert late.rejects[0]["reason"] == "duplicate_file"
    assert late.rejects[0]["duplicate_of"] == early.scans[0]["scan_id"]


def test_storing_a_batch_claims_its_files_against_the_other_batches_and_rerunning_is_safe(tmp_path):
    from vpr_assets.storage import Catalog

    home = tmp_path / "home"
    shared, own = jpeg_bytes(photo(11)), jpeg_bytes(photo(12))
    for b in ("early", "late"):
        (home / "inbox" / b).mkdir(parents=True)
        (home / "inbox" / b / "card.jpg").write_bytes(shared)
    (home / "inbox" / "late" / "own.jpg").write_bytes(own)
    cat = Catalog(home)
    store_batch(cat, "early", ingest_batch(home / "inbox" / "early", "early", home))
    for _ in range(2):  # the same batch stored again replaces its partitions, never adds rows
        late = store_batch(cat, "late", ingest_batch(home / "inbox" / "late", "late", home))
        assert [r["file_name"] for r in late.scans] == ["own.jpg"]
        assert [(r["file_name"], r["reason"]) for r in late.rejects] == [("card.jpg", "duplicate_file")]
    rows = cat.query("SELECT batch, file_name FROM raw_scans ORDER BY batch, file_name")
    assert list(zip(rows.batch, rows.file_name)) == [("early", "card.jpg"), ("late", "own.jpg")]
    assert cat.query("SELECT count(*) AS n FROM scan_rejects").n[0] == 1


def test_pixel_limit_is_checked_before_decoding():
    big = jpeg_bytes(photo(1, (400, 300)))
    with pytest.raises(ImageRejected) as err:
        decode_image(big, max_pixels=100_000)
    assert err.value.reason == "too_many_pixels"
    assert decode_image(big, max_pixels=120_000).width == 400


def test_inbox_copy_is_idempotent_and_refuses_a_different_batch_under_the_same_name(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jpg").write_bytes(jpeg_bytes(photo(1)))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    target, created = copy_batch_into_inbox(src, inbox, "b")
    assert created and (target / "a.jpg").read_bytes() == (src / "a.jpg").read_bytes()
    assert copy_batch_into_inbox(src, inbox, "b") == (target, False)
    (src / "b.jpg").write_bytes(jpeg_bytes(photo(2)))
    with pytest.raises(FileExistsError):
        copy_batch_into_inbox(src, inbox, "b")
    assert not list(inbox.glob(".incoming-*"))  # no staging folder left (.ingest.lock is the copy lock)


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", " padded ", "x\ny"])
def test_bad_batch_names_are_refused(name):
    with pytest.raises(ValueError):
        validate_batch_name(name)


def test_real_sample_photos_ingest(realsample_dir, tmp_path):
    home = tmp_path / "home"
    result = ingest_batch(realsample_dir, "real", home)
    images = [p for p in realsample_dir.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}]
    assert len(result.scans) == len({r["scan_id"] for r in result.scans})
    assert {r["file_name"] for r in result.scans} | {r["file_name"] for r in result.rejects} >= {p.name for p in images}
    accepted = {r["file_name"] for r in result.scans}
    assert len(accepted) >= len(images) - 1  # every real photo decodes (identical files would be one scan)
    described = [r for r in result.scans if r["description"]]
    assert len(described) >= 5
    assert all(r["width"] > 100 and r["height"] > 100 for r in result.scans)
