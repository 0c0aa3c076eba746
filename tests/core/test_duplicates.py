"""Near duplicates on real photos: a degraded copy is found, distinct photos are not linked."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vpr_assets.core.curation.duplicates import (
    NearDupConfig,
    find_near_duplicates,
    group_duplicates,
    hamming_rows,
    range_pairs,
)
from vpr_assets.core.curation.landmark_classifier import ImageNetBackbone
from vpr_assets.core.curation.quality import assess
from vpr_assets.core.images.hashing import hamming, hex_to_bytes, perceptual_hashes

ORIGINAL = "london_bridge__3.jpg"


def degraded_copy(im: Image.Image) -> Image.Image:
    """3% crop each side, 0.6x resize, JPEG q=60: a second scan of the same card."""
    w, h = im.size
    im = im.crop((round(0.03 * w), round(0.03 * h), round(0.97 * w), round(0.97 * h)))
    im = im.resize((round(im.width * 0.6), round(im.height * 0.6)), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=60)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def scan_row(name: str, im: Image.Image, batch: str) -> dict:
    q = assess(im)
    sid = hashlib.sha256(name.encode() + im.tobytes()[:4096]).hexdigest()
    return {"scan_id": sid, "name": name, "batch": batch, **perceptual_hashes(im),
            "quality_score": q.features["quality_score"], "quality_label": q.label}


@pytest.fixture(scope="module")
def landmarks(realsample_dir, realsample_manifest):
    files = realsample_manifest[realsample_manifest.kind == "landmark"].file.tolist()
    images = {f: Image.open(realsample_dir / f).convert("RGB") for f in files}
    return images


@pytest.fixture(scope="module")
def backbone():
    return ImageNetBackbone()


@pytest.fixture(scope="module")
def batches(landmarks, backbone):
    """batch1: half the landmark photos; batch2: the other half + a degraded copy of one of batch1."""
    names = sorted(landmarks)
    first, second = names[::2], names[1::2]
    assert ORIGINAL in first
    b1 = pd.DataFrame([scan_row(n, landmarks[n], "b1") for n in first])
    copy = degraded_copy(landmarks[ORIGINAL])
    b2 = pd.DataFrame([scan_row(n, landmarks[n], "b2") for n in second] + [scan_row("copy", copy, "b2")])
    e1, _ = backbone.embed([landmarks[n] for n in first])
    e2, _ = backbone.embed([landmarks[n] for n in second] + [copy])
    return b1, b2, e1, e2


def test_range_pairs_matches_brute_force_and_handles_batches():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (3000, 8), dtype=np.uint8)
    # plant close copies, some inside the new batch, some across batches
    codes[2500:2600] = codes[:100]
    codes[2600:2700] = codes[2800:2900]
    bits = np.unpackbits(codes[2500:2700], axis=1)
    bits[:, [3, 17, 40, 60]] ^= 1  # 4 flipped bits
    codes[2500:2700] = np.packbits(bits, axis=1)
    existing, new = codes[:2500], codes[2500:]
    for cfg in (NearDupConfig(), NearDupConfig(flat_max=0, nhash=4, bits=16, nflip=2)):
        i, j, d = range_pairs(existing, new, 10, cfg)
        # brute force over the pairs that involve a new code (vectorised, small n)
        ii, jj = np.triu_indices(len(codes), 1)
        sel = jj >= 2500
        ii, jj = ii[sel], jj[sel]
        dd = hamming_rows(codes[ii], codes[jj])
        truth = set(zip(ii[dd <= 10].tolist(), jj[dd <= 10].tolist()))
        got = set(zip(i.tolist(), j.tolist()))
        assert got == truth and len(truth) >= 200, (cfg, len(got), len(truth))
        assert (d == hamming_rows(codes[i], codes[j])).all()


def test_degraded_copy_found_across_batches_with_original_as_representative(batches):
    b1, b2, e1, e2 = batches
    pairs = find_near_duplicates(b1, b2, e1, e2)
    confirmed = pairs[pairs.confirmed]
    by_id = pd.concat([b1, b2]).set_index("scan_id")["name"]
    names = {frozenset((by_id[a], by_id[b])) for a, b in zip(confirmed.scan_a, confirmed.scan_b)}
    assert names == {frozenset((ORIGINAL, "copy"))}, pairs.assign(a=pairs.scan_a.map(by_id), b=pairs.scan_b.map(by_id))
    row = confirmed.iloc[0]
    assert row.cosine >= NearDupConfig().min_cosine

    groups = group_duplicates(pd.concat([b1, b2], ignore_index=True), pairs)
    g = groups.assign(name=groups.scan_id.map(by_id)).set_index("name")
    orig_id = b1.set_index("name").scan_id[ORIGINAL]
    assert g.loc["copy", "duplicate_of"] == orig_id and g.loc["copy", "status"] == "duplicate"
    assert g.loc[ORIGINAL, "is_representative"] and g.loc[ORIGINAL, "status"] == "keep"
    others = g.drop(index=[ORIGINAL, "copy"])
    assert (others.status == "keep").all() and others.duplicate_of.isna().all()  # real photos stay apart
    assert (pd.concat([b1, b2]).quality_label == "good").all()


def test_without_embeddings_hash_distance_alone_still_separates_the_sample(batches):
    b1, b2, _, _ = batches
    pairs = find_near_duplicates(b1, b2)
    by_id = pd.concat([b1, b2]).set_index("scan_id")["name"]
    assert {frozenset((by_id[a], by_id[b])) for a, b in zip(pairs.scan_a, pairs.scan_b)} == {frozenset((ORIGINAL, "copy"))}


def test_embedding_confirmation_rejects_hash_collisions(batches):
    """Two unrelated photos whose hashes collide are not confirmed when embeddings disagree."""
    b1, b2, e1, e2 = batches
    b2 = b2.copy()
    fake = b2.name != "copy"
    victim = b2[fake].index[0]
    b2.loc[victim, ["phash", "dhash"]] = b1.loc[1, ["phash", "dhash"]].to_numpy()  # forged collision
    pairs = find_near_duplicates(b1, b2, e1, e2)
    forged = pairs[(pairs.scan_b == b2.loc[victim, "scan_id"]) | (pairs.scan_a == b2.loc[victim, "scan_id"])]
    assert len(forged) >= 1 and not forged.confirmed.any() and (forged.cosine < NearDupConfig().min_cosine).all()
    assert pairs.confirmed.sum() == 1  # the genuine copy is still confirmed


def test_curator_not_duplicate_pairs_and_forced_decisions(batches):
    b1, b2, e1, e2 = batches
    scans = pd.concat([b1, b2], ignore_index=True)
    orig_id = b1.set_index("name").scan_id[ORIGINAL]
    copy_id = b2.set_index("name").scan_id["copy"]
    pairs = find_near_duplicates(b1, b2, e1, e2, not_duplicates=[(copy_id, orig_id)])
    assert not pairs.confirmed.any()
    groups = group_duplicates(scans, pairs, not_duplicates=[(copy_id, orig_id)]).set_index("scan_id")
    assert groups.loc[copy_id, "status"] == "keep" and groups.loc[orig_id, "status"] == "keep"

    # the curator wants the copy kept: it becomes the representative, the original points to it
    pairs = find_near_duplicates(b1, b2, e1, e2)
    groups = group_duplicates(scans, pairs, forced_keep=[copy_id]).set_index("scan_id")
    assert groups.loc[copy_id, "is_representative"] and groups.loc[orig_id, "duplicate_of"] == copy_id
    # the curator rejects the original: never a representative
    groups = group_duplicates(scans, pairs, forced_reject=[orig_id]).set_index("scan_id")
    assert groups.loc[orig_id, "status"] == "rejected" and groups.loc[copy_id, "is_representative"]


def test_not_duplicate_pair_is_never_linked_through_a_third_scan():
    h = "f0f0f0f0f0f0f0f0"
    near = f"{int(h, 16) ^ 0b111:016x}"
    nearer = f"{int(h, 16) ^ 0b1:016x}"
    scans = pd.DataFrame({"scan_id": ["a", "b", "c"], "phash": [h, near, nearer], "dhash": [h, near, nearer],
                          "quality_score": [3.0, 2.0, 1.0]})
    pairs = find_near_duplicates(scans.iloc[:0], scans)
    assert len(pairs) == 3
    groups = group_duplicates(scans, pairs, not_duplicates=[("a", "b")]).set_index("scan_id")
    assert groups.loc["a", "group_id"] != groups.loc["b", "group_id"]
    assert hamming(h, nearer) == 1 and hex_to_bytes([h]).shape == (1, 8)
