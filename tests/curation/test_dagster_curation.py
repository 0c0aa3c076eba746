"""scan_quality through the Dagster instance, on real photos: labels and reasons, card backs,
multi-card scans split into crops, near duplicates across batches, curator decisions and labels,
re-runs, checks, and the CLI on a fresh store."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFilter

from vpr_assets.core.curation.card_back_model import shipped_card_back_model
from vpr_assets.defs.curation.assets import SCAN_QUALITY_CODE_VERSION
from vpr_assets.storage import Catalog

ROOT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))

LANDMARKS_B1 = ["london_bridge__2.jpg", "london_bridge__3.jpg", "piazza_san_marco__1.jpg", "piazza_san_marco__2.jpg",
                "st_pauls_cathedral__1.jpg", "united_states_capitol__1.jpg"]
DISTRACTORS_B1 = ["none__scannet_scene0713.jpg", "none__face_astronaut.png", "none__cat_chelsea.png",
                  "none__object_coffee.png"]
BACK = "none__pc_kp32_verso.jpg"
ORIGINAL = "london_bridge__3.jpg"  # its near copy arrives in batch 2
LANDMARKS_B2 = ["st_pauls_cathedral__2.jpg", "piazza_san_marco__4.jpg"]
DISTRACTORS_B2 = ["none__object_coins.png"]
MULTI = ["london_bridge__1.jpg", "mitla__pc1.jpg"]  # laid side by side on one scanner bed
QUALITY_KEYS = ["scan_quality", "derived_scans"]
ALL_KEYS = ["raw_scans", "scan_rejects", *QUALITY_KEYS]


def degraded_copy(im: Image.Image) -> bytes:
    """A second scan of the same card: 3% crop each side, 0.6x resize, JPEG q=60."""
    w, h = im.size
    im = im.crop((round(0.03 * w), round(0.03 * h), round(0.97 * w), round(0.97 * h)))
    im = im.resize((round(im.width * 0.6), round(im.height * 0.6)), Image.LANCZOS)
    return _jpeg(im, quality=60)


def _jpeg(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def compose_cards(realsample_dir: Path, files: list[str], bed: int = 250, angles=(2, -1)) -> Image.Image:
    """Real photos laid on a light scanner bed with small rotations (each with the lamp's grey edge)."""
    rng = np.random.default_rng(0)
    canvas = Image.fromarray(np.clip(rng.normal(bed, 2.0, (1700, 2400, 3)), 0, 255).astype(np.uint8))
    for f, angle, (x, y) in zip(files, angles, [(80, 80), (1250, 120)]):
        im = Image.open(realsample_dir / f).convert("RGB")
        im.thumbnail((900, 700))
        rot = im.convert("RGBA").rotate(angle, expand=True, resample=Image.BICUBIC)
        edge = rot.getchannel("A").filter(ImageFilter.MaxFilter(9))
        canvas.paste(Image.new("RGB", rot.size, (bed - 40,) * 3), (x, y), edge)
        canvas.paste(rot, (x, y), rot)
    return canvas


def build_batches(realsample_dir: Path, inbox: Path) -> None:
    b1, b2 = inbox / "b1", inbox / "b2"
    b1.mkdir(parents=True)
    b2.mkdir(parents=True)
    for f in LANDMARKS_B1 + DISTRACTORS_B1 + [BACK]:
        shutil.copy(realsample_dir / f, b1 / f)
    photo = Image.open(realsample_dir / "piazza_san_marco__5.jpg").convert("RGB")
    (b1 / "blurred.jpg").write_bytes(_jpeg(photo.filter(ImageFilter.GaussianBlur(6))))
    (b1 / "black.jpg").write_bytes(_jpeg(Image.new("RGB", (900, 600), (0, 0, 0))))
    grain = np.clip(np.random.default_rng(0).normal(228, 2.0, (600, 900, 3)), 0, 255).astype(np.uint8)
    (b1 / "blank_card.jpg").write_bytes(_jpeg(Image.fromarray(grain)))
    (b1 / "tiny.jpg").write_bytes(_jpeg(photo.resize((60, 40), Image.LANCZOS)))
    (b1 / "multi_card_scan.jpg").write_bytes(_jpeg(compose_cards(realsample_dir, MULTI)))
    for f in LANDMARKS_B2 + DISTRACTORS_B2:
        shutil.copy(realsample_dir / f, b2 / f)
    (b2 / "rescan_of_london_bridge.jpg").write_bytes(degraded_copy(Image.open(realsample_dir / ORIGINAL).convert("RGB")))


def run(keys: list[str], batch: str):
    from vpr_assets.runner import materialize_partitions

    res = materialize_partitions(keys, [batch])[0]
    assert res.success
    return res


def quality(home: Path, batch: str | None = None) -> pd.DataFrame:
    q = Catalog(home).read("scan_quality", batch)
    q["file"] = q["path"].map(lambda p: Path(p).name)
    return q.set_index("file", drop=False)


def checks_of(res) -> dict[str, bool]:
    return {e.check_name: e.passed for e in res.get_asset_check_evaluations()}


def metadata_of(res, key: str = "scan_quality") -> dict:
    for ev in res.get_asset_materialization_events():
        if ev.asset_key == dg.AssetKey(key):
            return ev.step_materialization_data.materialization.metadata
    raise AssertionError(f"no materialisation of {key}")


@pytest.fixture(scope="module")
def store(tmp_path_factory, realsample_dir):
    """Batch 1 and batch 2 ingested and curated, in that order, through one Dagster instance."""
    base = tmp_path_factory.mktemp("curation")
    home, dhome = base / "vpr_home", base / "dagster_home"
    home.mkdir()
    dhome.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", dhome / "dagster.yaml")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VPR_HOME", str(home))
        mp.setenv("DAGSTER_HOME", str(dhome))
        build_batches(realsample_dir, home / "inbox")
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions("scan_batches", ["b1", "b2"])
        results = {b: run(ALL_KEYS, b) for b in ("b1", "b2")}
        yield {"home": home, "dagster_home": dhome, "results": results}


@pytest.fixture
def store_copy(store, tmp_path, monkeypatch):
    """A private copy of the curated store, for tests that change curator files."""
    home, dhome = tmp_path / "vpr_home", tmp_path / "dagster_home"
    shutil.copytree(store["home"], home)
    shutil.copytree(store["dagster_home"], dhome)
    monkeypatch.setenv("VPR_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(dhome))
    return home


def test_labels_reasons_card_back_and_cross_batch_duplicate(store):
    q1, q2 = quality(store["home"], "b1"), quality(store["home"], "b2")
    assert q1.scan_id.is_unique and q2.scan_id.is_unique
    for f in LANDMARKS_B1 + DISTRACTORS_B1:
        r = q1.loc[f]
        assert r.label == "good" and r.status == "keep" and pd.isna(r.duplicate_of), (f, list(r.reasons), r.duplicate_of)
    # distinct photos (even two of the same landmark) are never duplicates of each other
    assert q1.loc[LANDMARKS_B1, "group_id"].is_unique
    expected = {"blurred.jpg": "blurry", "black.jpg": "too_dark", "blank_card.jpg": "blank", "tiny.jpg": "too_small"}
    for f, reason in expected.items():
        assert q1.loc[f, "label"] == "bad" and reason in list(q1.loc[f, "reasons"]), (f, list(q1.loc[f, "reasons"]))
        assert q1.loc[f, "status"] == "rejected"
    back = q1.loc[BACK]
    assert back.label == "bad" and "postcard_back" in list(back.reasons) and back.is_postcard_back
    # decided by the learned model (its cue first, its probability as the score); no kept card carries its cue
    model = shipped_card_back_model()
    assert list(back.back_cues)[0] == "learned_back_model" and back.back_score >= model.threshold
    kept = q1[q1.label == "good"]
    assert not any("learned_back_model" in list(c) for c in kept.back_cues) and (kept.back_score < model.threshold).all()
    # the re-encoded, resized, cropped copy in batch 2 points to the batch-1 original
    copy = q2.loc["rescan_of_london_bridge.jpg"]
    assert copy.duplicate_of == q1.loc[ORIGINAL, "scan_id"] and copy.status == "duplicate" and copy.label == "good"
    assert copy.duplicate_evidence == "hash" and copy.duplicate_hash_distance <= 12
    assert q1.loc[ORIGINAL, "status"] == "keep"
    for f in LANDMARKS_B2 + DISTRACTORS_B2:
        assert q2.loc[f, "status"] == "keep", (f, list(q2.loc[f, "reasons"]))
    # the prior scores landmarks above distractors, all in 0-1
    both = pd.concat([q1, q2])
    assert set(both.landmark_scorer) == {"landmark_probe"}
    assert both.landmark_score.between(0, 1).all()
    lm = both.loc[LANDMARKS_B1 + LANDMARKS_B2, "landmark_score"]
    dis = both.loc[DISTRACTORS_B1 + DISTRACTORS_B2, "landmark_score"]
    assert lm.median() > 5 * dis.median()
    # features and quality score are there for every decodable scan
    for c in ("sharpness", "mean_luminance", "border_share", "quality_score", "width", "height"):
        assert both[c].notna().all(), c


def test_multi_card_scan_split_into_crops_saved_and_assessed(store):
    home = store["home"]
    q1 = quality(home, "b1")
    src = q1.loc["multi_card_scan.jpg"]
    assert src.multiple_cards and src.n_cards == 2 and src.label == "bad" and "multiple_cards" in list(src.reasons)
    # the original is untouched: its bytes still hash to its scan_id
    assert hashlib.sha256((home / src.path).read_bytes()).hexdigest() == src.scan_id
    derived = Catalog(home).read("derived_scans", "b1")
    assert len(derived) == 2 and set(derived.source_scan_id) == {src.scan_id}
    for d in derived.itertuples():
        assert d.path == f"derived/b1/{src.scan_id}_crop{d.crop_index}.jpg"
        assert hashlib.sha256((home / d.path).read_bytes()).hexdigest() == d.scan_id
        assert len(d.box) == 4 and d.phash and d.thumbnail and (home / d.thumbnail).exists()
        left, top, right, bottom = d.box
        assert (right - left, bottom - top) == (d.width, d.height)
    crops = q1[q1.source_scan_id == src.scan_id]
    assert set(crops.scan_id) == set(derived.scan_id)
    assert (crops.landmark_score.notna()).all() and crops.sharpness.notna().all()
    # the london-bridge card gets a landmark score above the scanner-bed scan as a whole is irrelevant;
    # what matters: each crop holds one card, roughly the size laid down (<= 900 x 700 + rotation)
    assert all(w <= 1000 and h <= 800 for w, h in zip(derived.width, derived.height))


def test_checks_pass_and_metadata_explains_the_batch(store):
    for batch, res in store["results"].items():
        assert checks_of(res) == {"every_file_accounted_for": True, "scan_id_unique": True,
                                  "reject_share_within_bound": True, "kept_scans_are_not_duplicates": True,
                                  "every_reject_has_a_reason": True}, batch
    md = metadata_of(store["results"]["b1"])
    assert md["landmark_scorer"].value == "landmark_probe"
    assert md["card_back_model"].value == f"learned {shipped_card_back_model().version}"
    assert "| good |" in md["labels"].value and "| bad |" in md["labels"].value
    for reason in ("postcard_back", "multiple_cards", "blurry", "blank", "too_small"):
        assert f"| {reason} |" in md["reasons"].value
    assert md["rejected_contact_sheet"].value.startswith("![rejected and duplicate scans](data:image/png;base64,")
    assert md["crops"].value == 2
    assert metadata_of(store["results"]["b2"])["near_duplicate_pairs_confirmed"].value >= 1
    with dg.DagsterInstance.get() as instance:
        rec = instance.fetch_materializations(dg.AssetKey("scan_quality"), limit=5).records[0]
        tags = rec.asset_materialization.tags or {}
        assert tags.get("dagster/code_version") == SCAN_QUALITY_CODE_VERSION and tags.get("dagster/data_version")


def test_rerun_gives_identical_rows_and_never_duplicates(store):
    home = store["home"]
    cat = Catalog(home)

    def tables():
        return {t: cat.read(t).sort_values("scan_id").reset_index(drop=True) for t in QUALITY_KEYS}

    before = tables()
    derived_files = sorted(p.name for p in (home / "derived").rglob("*.jpg"))
    for b in ("b2", "b1"):  # the later batch first: decisions must not depend on the re-run order
        run(QUALITY_KEYS, b)
    mid = tables()
    # batch 1 was first curated before batch 2 existed: now its original knows its group has a
    # copy (group fields, closest-pair evidence); every decision is unchanged
    group_cols = ["group_id", "group_size", "is_representative", "duplicate_evidence", "duplicate_hash_distance",
                  "duplicate_cosine"]
    pd.testing.assert_frame_equal(before["scan_quality"].drop(columns=group_cols), mid["scan_quality"].drop(columns=group_cols))
    pd.testing.assert_frame_equal(before["derived_scans"], mid["derived_scans"])
    orig = mid["scan_quality"].set_index("path").loc[f"inbox/b1/{ORIGINAL}"]
    assert orig.group_size == 2 and orig.is_representative
    run(QUALITY_KEYS, "b1")  # nothing else changed: exactly the same rows
    after = tables()
    for t in QUALITY_KEYS:
        pd.testing.assert_frame_equal(mid[t], after[t])
    assert after["scan_quality"].scan_id.is_unique and len(after["scan_quality"]) == len(before["scan_quality"])
    assert sorted(p.name for p in (home / "derived").rglob("*.jpg")) == derived_files
    # a subset run writes only what it selected: scan_quality alone leaves derived_scans' file as it was
    derived_file = cat.partition_path("derived_scans", "b1")
    stamp = derived_file.stat().st_mtime_ns
    run(["scan_quality"], "b1")
    assert derived_file.stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(tables()["scan_quality"], after["scan_quality"])


def test_curator_decisions_are_respected_and_never_overwritten(store_copy):
    home = store_copy
    q1 = quality(home, "b1")
    blurred, rejected, original = (q1.loc[f, "scan_id"] for f in ("blurred.jpg", "st_pauls_cathedral__1.jpg", ORIGINAL))
    copy = quality(home, "b2").loc["rescan_of_london_bridge.jpg", "scan_id"]
    (home / "curation").mkdir()
    text = (f"scan_id,decision\n{blurred},keep\n{rejected},reject\n{copy},not_duplicate:{original}\n"
            f"{rejected},keep\nnot-a-scan,maybe\n")
    (home / "curation" / "decisions.csv").write_text(text)
    res = [run(QUALITY_KEYS, b) for b in ("b1", "b2")]
    q1, q2 = quality(home, "b1"), quality(home, "b2")
    b = q1.loc["blurred.jpg"]
    assert b.label == "good" and b.status == "keep" and pd.isna(b.duplicate_of) and b.curator_decision == "keep"
    assert "blurry" in list(b.reasons)  # the measured defect stays visible
    r = q1.loc["st_pauls_cathedral__1.jpg"]  # `reject` came first: the later `keep` is a reported clash
    assert r.label == "bad" and list(r.reasons) == ["curator_reject"] and r.status == "rejected"
    c = q2.loc["rescan_of_london_bridge.jpg"]
    assert pd.isna(c.duplicate_of) and c.status == "keep"
    assert (home / "curation" / "decisions.csv").read_text() == text
    assert metadata_of(res[0])["decision_problems"].value == 2
    assert all(checks_of(x)["kept_scans_are_not_duplicates"] and checks_of(x)["every_reject_has_a_reason"] for x in res)


def test_curator_labels_train_the_classifier_and_rank_distractors_lower(store_copy):
    home = store_copy
    (home / "curation").mkdir()
    rows = [f"{f},landmark" for f in LANDMARKS_B1] + [f"{f},non_landmark" for f in DISTRACTORS_B1]
    (home / "curation" / "labels.csv").write_text("file,label\n" + "\n".join(rows) + "\n")
    # scan_quality alone never trains: without a materialised classifier it scores with the prior
    assert metadata_of(run(QUALITY_KEYS, "b1"))["landmark_scorer"].value == "landmark_probe"
    res1 = run(["landmark_classifier", *QUALITY_KEYS], "b1")  # the classifier first, in the same run
    clf_md = metadata_of(res1, "landmark_classifier")
    assert clf_md["trained_now"].value is True and clf_md["scorer"].value == "classifier"
    md = metadata_of(res1)
    assert md["landmark_scorer"].value == "classifier"
    acc = md["landmark_classifier_cv_accuracy"].value
    assert clf_md["cv_accuracy"].value == pytest.approx(acc)
    assert 0.0 <= acc <= 1.0 and md["landmark_classifier_n_train"].value == 10
    folder = home / "models" / "landmark_classifier"
    meta = json.loads((folder / "meta.json").read_text())
    assert (folder / "classifier.joblib").exists() and meta["cv_accuracy"] == pytest.approx(acc)
    from vpr_assets.core import tracking

    client = tracking.client(home)
    mlrun = client.get_run(meta["mlflow_run_id"])
    assert mlrun.data.metrics["cv_accuracy"] == pytest.approx(acc)
    q1 = quality(home, "b1")
    assert set(q1.landmark_scorer.dropna()) == {"classifier"}
    assert q1.loc[DISTRACTORS_B1, "landmark_score"].max() < q1.loc[LANDMARKS_B1, "landmark_score"].min()
    # a curator's non_landmark label is a reject reason; landmarks stay good
    assert all("no_landmark" in list(q1.loc[f, "reasons"]) for f in DISTRACTORS_B1)
    assert (q1.loc[LANDMARKS_B1, "label"] == "good").all()
    # batch 2 was not labelled: the classifier is reused (same data version) and still ranks its distractor lower
    res2 = run(["landmark_classifier", *QUALITY_KEYS], "b2")
    assert metadata_of(res2, "landmark_classifier")["trained_now"].value is False
    assert metadata_of(res2)["landmark_classifier_version"].value == md["landmark_classifier_version"].value
    with dg.DagsterInstance.get() as instance:
        versions = [e.asset_materialization.tags["dagster/data_version"] for e in instance.fetch_materializations(
            dg.AssetKey("landmark_classifier"), limit=10).records]
    assert len(versions) == 2 and len(set(versions)) == 1
    q2 = quality(home, "b2")
    assert q2.loc[DISTRACTORS_B2, "landmark_score"].max() < q2.loc[LANDMARKS_B2, "landmark_score"].mean()


@pytest.mark.slow
def test_cli_materializes_star_scan_quality_on_a_fresh_store(realsample_dir, vpr_home, dagster_home):
    """`dagster asset materialize --select '*scan_quality'` on a fresh store: raw_scans and
    image_embeddings come along, and the embeddings then confirm the near copy."""
    batch = vpr_home / "inbox" / "k1"
    batch.mkdir(parents=True)
    for f in (ORIGINAL, "mitla__pc1.jpg", BACK):
        shutil.copy(realsample_dir / f, batch / f)
    (batch / "rescan.jpg").write_bytes(degraded_copy(Image.open(realsample_dir / ORIGINAL).convert("RGB")))
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", ["k1"])
    env = {**os.environ, "VPR_HOME": str(vpr_home), "DAGSTER_HOME": str(dagster_home), "HF_HUB_OFFLINE": "1"}
    # in-process executor: the same run without a subprocess per step (minutes on 2 busy cores)
    out = subprocess.run([DAGSTER, "asset", "materialize", "-m", "vpr_assets.definitions", "--select", "*scan_quality",
                          "--partition", "k1", "--config-json", '{"execution": {"config": {"mode": "in_process"}}}'],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    cat = Catalog(vpr_home)
    assert cat.has("image_embeddings", "k1") and cat.has("raw_scans", "k1")
    q = quality(vpr_home, "k1")
    assert len(q) == 4
    assert q.loc[BACK, "label"] == "bad" and "postcard_back" in list(q.loc[BACK, "reasons"])
    dup = q.loc["rescan.jpg"]
    assert dup.duplicate_of == q.loc[ORIGINAL, "scan_id"] and dup.duplicate_evidence == "embedding"
    assert dup.duplicate_cosine > 0.82
    with dg.DagsterInstance.get() as instance:
        assert instance.get_materialized_partitions(dg.AssetKey("scan_quality")) == {"k1"}
