"""Landmark embedder: offline weights, GeM, neck, ArcFace head, checkpoints, batched inference."""

import io
import os

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from vpr_assets.core.vision import embedder as emb
from vpr_assets.core.vision.models import (
    MODEL_CONFIGS,
    ArcMarginProduct,
    GeM,
    arcface_loss,
    build_embedder,
    load_checkpoint,
    model_version,
    save_checkpoint,
)
from vpr_assets.core.vision.weights import (
    WeightMismatchError,
    imagenet_weight_path,
    load_imagenet_weights,
    load_state_dict_file,
    map_by_position,
)

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="module")
def lite0():
    return build_embedder("lite0_gem512", pretrained=True)


# --- weights -----------------------------------------------------------------------------------


def test_offline_weights_give_correct_imagenet_predictions(realsample_dir):
    """The positional mapping is right only if a real cat photo comes out as a cat (281-285)."""
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000).eval()
    load_imagenet_weights(model, "tf_efficientnet_lite0", include_classifier=True)
    im = Image.open(realsample_dir / "none__cat_chelsea.png").convert("RGB").resize((224, 224), Image.BICUBIC)
    x = torch.from_numpy(np.array(im)).permute(2, 0, 1).float().div(255).sub(0.5).div(0.5)[None]
    with torch.no_grad():
        top = model(x).softmax(-1)[0].topk(3)
    assert 281 <= int(top.indices[0]) <= 285 and float(top.values[0]) > 0.5


def test_mismatched_weights_raise_clear_errors():
    lite0_model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0, global_pool="")
    lite2_sd = load_state_dict_file(imagenet_weight_path("tf_efficientnet_lite2"))
    with pytest.raises(WeightMismatchError, match="tensors"):
        map_by_position(lite2_sd, lite0_model)
    sd = load_state_dict_file(imagenet_weight_path("tf_efficientnet_lite0"))
    first = next(iter(sd))
    sd[first] = torch.zeros(1, 2, 3)
    with pytest.raises(WeightMismatchError, match="tensor #0"):
        map_by_position(sd, lite0_model)
    with pytest.raises(KeyError):
        imagenet_weight_path("resnet50")


# --- model -------------------------------------------------------------------------------------


def test_registry_and_builder():
    assert {"lite0_gem512", "lite2_gem512"} <= set(MODEL_CONFIGS)
    with pytest.raises(KeyError, match="registered"):
        build_embedder("nope")
    m = build_embedder("lite0_gem512", pretrained=False, embedding_dim=256, image_size=320)
    assert m.config.embedding_dim == 256 and m.config.image_size == 320


def test_gem_pooling():
    g = GeM()
    assert g.p.requires_grad and g.p.item() == pytest.approx(3.0)
    x = torch.rand(2, 4, 5, 5) + 0.1
    assert torch.allclose(GeM(p=1.0)(x), x.mean(dim=(-2, -1)), atol=1e-5)
    # a large p approaches max pooling, and GeM lies between mean and max
    big = GeM(p=200.0)(x)
    assert (big <= x.amax(dim=(-2, -1)) + 1e-4).all() and (big >= 0.97 * x.amax(dim=(-2, -1))).all()
    out = g(x)
    assert (out >= x.mean(dim=(-2, -1)) - 1e-5).all() and (out <= x.amax(dim=(-2, -1)) + 1e-5).all()


def test_embedder_outputs_are_unit_vectors_in_both_modes(lite0):
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        gem = lite0(x)
        assert gem.shape == (2, 1280) and lite0.embedding_dim == 1280
        lite0.set_output("neck")
        try:
            neck = lite0(x)
            assert neck.shape == (2, 512) and lite0.embedding_dim == 512
        finally:
            lite0.set_output("gem")
    assert torch.allclose(gem.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(neck.norm(dim=1), torch.ones(2), atol=1e-5)
    with pytest.raises(ValueError):
        lite0.set_output("logits")


def test_arcface_head_applies_the_margin_to_the_target_only():
    torch.manual_seed(0)
    head = ArcMarginProduct(16, 5, s=10.0, m=0.3)
    e = torch.randn(4, 16)
    labels = torch.tensor([0, 1, 2, 3])
    plain = head(e)
    cos = head.cosine(e)
    assert plain.shape == (4, 5) and torch.allclose(plain, cos * 10.0)
    logits = head(e, labels)
    target = torch.nn.functional.one_hot(labels, 5).bool()
    assert torch.allclose(logits[~target], plain[~target])
    assert (logits[target] < plain[target]).all()  # the margin makes the true class harder
    # easy margin: no change where cos(theta) <= 0
    easy = ArcMarginProduct(16, 5, s=10.0, m=0.3, easy_margin=True)
    easy.weight.data = head.weight.data.clone()
    el = easy(e, labels)
    neg = target & (cos <= 0)
    assert torch.allclose(el[neg], plain[neg])


def test_arcface_training_step_reduces_loss():
    torch.manual_seed(0)
    centres = torch.randn(3, 8) * 3
    y = torch.arange(3).repeat(20)
    x = centres[y] + torch.randn(60, 8) * 0.3
    proj = torch.nn.Linear(8, 8)
    head = ArcMarginProduct(8, 3, s=16.0, m=0.2)
    opt = torch.optim.SGD(list(proj.parameters()) + list(head.parameters()), lr=0.1)
    losses = []
    for _ in range(30):
        loss = arcface_loss(head(proj(x), y), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_checkpoint_round_trip(tmp_path, lite0):
    with torch.no_grad():
        lite0.pool.p.fill_(3.5)  # a "trained" value that must survive the round trip
    try:
        save_checkpoint(lite0, tmp_path / "ckpt", extra={"epoch": 3})
        assert sorted(os.listdir(tmp_path / "ckpt")) == ["config.json", "weights.pt"]
        loaded = load_checkpoint(tmp_path / "ckpt")
        assert loaded.config == lite0.config
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            assert torch.allclose(loaded(x), lite0(x), atol=1e-6)
        assert model_version(loaded) == model_version(lite0)
        with torch.no_grad():
            loaded.neck[0].weight[0, 0] += 1.0
        assert model_version(loaded) != model_version(lite0)
    finally:
        with torch.no_grad():
            lite0.pool.p.fill_(3.0)


# --- inference ---------------------------------------------------------------------------------


def _photo(seed, size=(200, 150)):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(base).resize(size, Image.BICUBIC)


def test_embed_paths_reports_bad_files_and_goes_on(tmp_path, lite0):
    paths = []
    for i in range(3):
        p = tmp_path / f"ok{i}.png"
        _photo(i).save(p)
        paths.append(p)
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not an image at all")
    buf = io.BytesIO()
    _photo(9).save(buf, format="JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    paths[1:1] = [garbage, tmp_path / "missing.jpg", truncated]
    res = emb.embed_paths(lite0, paths, image_size=96, batch_size=2, num_workers=2)
    assert res.vectors.shape == (6, 1280) and res.vectors.dtype == np.float32
    assert res.ok.tolist() == [True, False, False, False, True, True]
    assert set(res.failures) == {1, 2, 3}
    assert res.failures[2].startswith("missing_file")
    assert res.failures[3].startswith("truncated") or res.failures[3].startswith("unreadable")
    assert np.allclose(np.linalg.norm(res.vectors[res.ok], axis=1), 1.0, atol=1e-5)
    assert not res.vectors[~res.ok].any()
    # worker processes and in-process loading give the same vectors
    res0 = emb.embed_paths(lite0, paths, image_size=96, batch_size=4, num_workers=0)
    assert np.allclose(res0.vectors, res.vectors, atol=1e-5)
    # in-memory images (search queries) match files for lossless formats
    mem = emb.embed_images(lite0, [Image.open(paths[0]), Image.open(paths[4])], image_size=96)
    assert np.allclose(mem, res.vectors[[0, 4]], atol=1e-5)


def test_exif_rotation_is_applied_before_embedding(tmp_path, lite0):
    upright = _photo(1, size=(160, 240))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a camera would store it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    stored.save(tmp_path / "rotated.jpg", quality=95, exif=exif)
    upright.save(tmp_path / "upright.jpg", quality=95)
    stored.save(tmp_path / "sideways.jpg", quality=95)
    v = emb.embed_paths(lite0, [tmp_path / n for n in ("rotated.jpg", "upright.jpg", "sideways.jpg")],
                        image_size=96, num_workers=0).vectors
    assert v[0] @ v[1] > 0.99
    assert v[0] @ v[1] > v[0] @ v[2] + 0.01


def test_multiscale_embeddings(tmp_path, lite0):
    p = tmp_path / "a.png"
    _photo(3).save(p)
    single = emb.embed_paths(lite0, [p], image_size=96, num_workers=0).vectors[0]
    multi = emb.embed_paths(lite0, [p], image_size=96, scales=(0.707, 1.0, 1.414), num_workers=0).vectors[0]
    assert np.linalg.norm(multi) == pytest.approx(1.0, abs=1e-5)
    assert 0.8 < float(single @ multi) < 0.99999


def test_machine_settings():
    assert emb.available_cpus() >= 1
    assert emb.default_num_workers() <= 2  # on a CPU, workers take the model's cores
    assert emb.default_num_workers("cpu") <= 2
    # on 2 cores or fewer, worker processes cost more than they save: the main process decodes
    assert emb.default_num_workers("cpu") == (0 if emb.available_cpus() <= 2 else 2)
    assert emb.default_num_workers("cuda") >= 2  # on a GPU the feed is the limit: more decoders
    assert emb.default_device().type in ("cpu", "cuda")


def test_a_batch_is_embedded_incrementally_per_model_version(tmp_path, lite0):
    """The image_embeddings stage: a re-run reuses the vectors its model made, a failure is
    reported for its scan alone, another model version embeds everything again."""
    import pandas as pd

    from vpr_assets.core.vision.batch import embed_batch

    for i in range(3):
        _photo(20 + i).save(tmp_path / f"s{i}.png")
    (tmp_path / "bad.jpg").write_bytes(b"not an image at all")
    scans = pd.DataFrame({"scan_id": ["a", "b", "x", "c"], "path": ["s0.png", "s1.png", "bad.jpg", "s2.png"]})
    seen = []
    first = embed_batch(scans, tmp_path, lite0, "v1", image_size=96, num_workers=0, progress=lambda d, t: seen.append((d, t)))
    assert first.scan_ids == ["a", "b", "c"] and first.embedded_now == 3 and first.reused == 0
    assert list(first.failures) == ["x"] and seen[-1] == (4, 4)
    table = first.table("b1")
    assert table.num_rows == 3 and set(table.column("model_version").to_pylist()) == {"v1"}
    again = embed_batch(scans, tmp_path, lite0, "v1", previous=table, image_size=96, num_workers=0)
    assert again.embedded_now == 0 and again.reused == 3 and np.allclose(again.vectors, first.vectors)
    assert list(again.failures) == ["x"]  # the unreadable scan is tried again, and fails again
    other = embed_batch(scans, tmp_path, lite0, "v2", previous=table, image_size=96, num_workers=0)
    assert other.embedded_now == 3 and other.reused == 0
    empty = embed_batch(scans.iloc[:0], tmp_path, lite0, "v1", image_size=96, num_workers=0)
    assert empty.scan_ids == [] and empty.vectors.shape == (0, lite0.embedding_dim) and empty.table("b1").num_rows == 0
