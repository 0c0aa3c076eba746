"""Card backs and multi-card scans, on the real sample photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from vpr_assets.core.curation.postcard_traps import box_iou, detect_postcard_back, split_multiple_cards


def test_postcard_backs_detected_on_all_real_images(realsample_dir, realsample_manifest):
    """Every real card back is flagged, nothing else is (confusion matrix in the failure message)."""
    tp = fp = tn = fn = 0
    wrong = []
    for f, kind in zip(realsample_manifest.file, realsample_manifest.kind):
        res = detect_postcard_back(Image.open(realsample_dir / f))
        truth = kind == "postcard_back"
        if res.is_back and truth:
            tp += 1
        elif res.is_back:
            fp += 1
            wrong.append((f, res.score, res.cues))
        elif truth:
            fn += 1
            wrong.append((f, res.score, res.cues))
        else:
            tn += 1
    matrix = {"tp": tp, "fn": fn, "fp": fp, "tn": tn}
    assert tp == (realsample_manifest.kind == "postcard_back").sum() >= 3, (matrix, wrong)
    assert fn == 0 and fp == 0, (matrix, wrong)


def test_back_score_is_higher_for_backs_than_fronts_of_the_same_cards(realsample_dir):
    backs = ["none__pc_kp32_verso.jpg", "none__pc_kp34_verso.jpg", "none__pc_mp23_verso.jpg"]
    fronts = ["mount_kumgang__pc1.jpg", "mount_kumgang__pc2.jpg", "stone_of_tizoc__pc1.jpg"]
    b = [detect_postcard_back(Image.open(realsample_dir / f)).score for f in backs]
    fr = [detect_postcard_back(Image.open(realsample_dir / f)).score for f in fronts]
    assert min(b) > max(fr) + 0.2


def _compose(realsample_dir, files, bed, angles, size=(2400, 1700), seed=0):
    """Real photos laid on a scanner bed with small rotations; returns the scan and true boxes.

    On a light bed each card gets the thin grey outline a flatbed lamp shows along a card's edge.
    """
    rng = np.random.default_rng(seed)
    canvas = Image.fromarray(np.clip(rng.normal(bed, 2.0, (size[1], size[0], 3)), 0, 255).astype(np.uint8))
    truth = []
    slots = [(80, 80), (1250, 120), (300, 900)]
    for f, angle, (x, y) in zip(files, angles, slots):
        im = Image.open(realsample_dir / f).convert("RGB")
        im.thumbnail((900, 700))
        rot = im.convert("RGBA").rotate(angle, expand=True, resample=Image.BICUBIC)
        if bed > 128:
            edge = rot.getchannel("A").filter(ImageFilter.MaxFilter(9))
            canvas.paste(Image.new("RGB", rot.size, (bed - 40,) * 3), (x, y), edge)
        canvas.paste(rot, (x, y), rot)
        bb = rot.getchannel("A").getbbox()
        truth.append((x + bb[0], y + bb[1], x + bb[2], y + bb[3]))
    return canvas, truth


@pytest.mark.parametrize("bed", [250, 15], ids=["white_bed", "black_bed"])
@pytest.mark.parametrize(
    "files",
    [
        ["piazza_san_marco__1.jpg", "st_pauls_cathedral__1.jpg", "stone_of_tizoc__pc1.jpg"],
        ["london_bridge__1.jpg", "mitla__pc1.jpg"],
        ["united_states_capitol__2.jpg", "none__pc_kp32_verso.jpg", "none__object_coins.png"],
    ],
    ids=["three", "two", "three_with_back"],
)
def test_multiple_cards_split_into_one_crop_each(realsample_dir, files, bed):
    scan, truth = _compose(realsample_dir, files, bed, [3, -2, 4][: len(files)])
    split = split_multiple_cards(scan)
    assert split.is_multiple
    assert len(split.boxes) == len(truth) == len(split.crops)
    for tb in truth:
        assert max(box_iou(tb, b) for b in split.boxes) > 0.8, (tb, split.boxes)
    for crop, box in zip(split.crops, split.boxes):
        assert crop.size == (box[2] - box[0], box[3] - box[1])


def test_single_photos_and_cards_are_not_multiple(realsample_dir, realsample_manifest):
    flagged = [f for f in realsample_manifest.file if split_multiple_cards(Image.open(realsample_dir / f).convert("RGB")).is_multiple]
    assert flagged == []
    # one card alone on a bed: one box, not multiple_cards
    scan, truth = _compose(realsample_dir, ["piazza_san_marco__4.jpg"], 250, [2])
    split = split_multiple_cards(scan)
    assert not split.is_multiple and len(split.boxes) == 1 and box_iou(split.boxes[0], truth[0]) > 0.8
