"""The embedder through ONNX Runtime gives the torch forward's vectors on real cards, really runs
ONNX Runtime, and keeps one export per weights (reused, made again when corrupt; untimed)."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
import torch

from vpr_assets.core.vision import embedder as embedder_mod
from vpr_assets.core.vision import onnx_embedder
from vpr_assets.core.vision.embedder import embed_images, embed_paths
from vpr_assets.core.vision.models import build_embedder

CARDS = sorted((Path(__file__).resolve().parents[2] / "data" / "geo_testset" / "images" / "europosts").glob("*.jpg"))[:6]


@pytest.fixture(scope="module")
def lite0():
    return build_embedder("lite0_gem512", pretrained=True).eval()


def _no_torch_forward(*a, **k):
    raise AssertionError("the torch forward ran on the ONNX path")


def test_onnx_gives_the_torch_vectors_on_real_cards(tmp_path, lite0, monkeypatch):
    ref = embed_paths(lite0, CARDS, num_workers=0)
    assert ref.ok.all()
    monkeypatch.setattr(embedder_mod, "_forward", _no_torch_forward)
    got = embed_paths(lite0, CARDS, num_workers=0, runtime="onnx", onnx_cache=tmp_path)
    assert got.ok.all()
    assert np.abs(got.vectors - ref.vectors).max() < 1e-4
    assert np.allclose(np.linalg.norm(got.vectors, axis=1), 1.0, atol=1e-5)
    # a search query takes the same path and gets the same vector as its file in the index
    from vpr_assets.core.vision.embedder import embedding_load_size, load_for_embedding

    view = load_for_embedding(CARDS[0], embedding_load_size(lite0))
    q = embed_images(lite0, [view], runtime="onnx", onnx_cache=tmp_path)
    assert float(q[0] @ got.vectors[0]) > 0.9999
    with pytest.raises(ValueError):
        embed_paths(lite0, CARDS[:1], runtime="tensorflow")


def test_one_export_per_weights_reused_and_made_again(tmp_path, lite0, monkeypatch):
    first = onnx_embedder.onnx_embedder(lite0, tmp_path)
    assert first.path.exists() and first.path.parent == tmp_path
    onnx_embedder._SESSIONS.clear()  # a new process: the file is read back, not exported again
    monkeypatch.setattr(onnx_embedder, "_export", lambda *a: (_ for _ in ()).throw(AssertionError("exported again")))
    assert onnx_embedder.onnx_embedder(lite0, tmp_path).path == first.path
    monkeypatch.undo()
    onnx_embedder._SESSIONS.clear()
    first.path.write_bytes(b"truncated")  # a corrupt file is exported again, not a crash
    again = onnx_embedder.onnx_embedder(lite0, tmp_path)
    assert again.path == first.path and first.path.stat().st_size > 1_000_000
    x = np.random.default_rng(0).standard_normal((2, 3, 320, 320)).astype(np.float32)
    with torch.inference_mode():
        assert np.abs(again(x) - lite0(torch.from_numpy(x)).numpy()).max() < 1e-4
    other = build_embedder("lite0_gem512", pretrained=True).eval()
    before = onnx_embedder.weights_key(other, "w")
    with torch.no_grad():
        other.neck[0].weight.mul_(1.01)  # weights changed in place: another key (it is kept per module), another file
    assert onnx_embedder.weights_key(other, "w") != before
    assert onnx_embedder.onnx_embedder(other, tmp_path).path != first.path
    assert len(list(tmp_path.glob("embedder-*.onnx"))) == 2
    assert other in onnx_embedder._KEYS
    held = len(onnx_embedder._KEYS)
    del other
    gc.collect()
    assert len(onnx_embedder._KEYS) == held - 1  # a key dies with its module: never handed to a later one


def test_curation_backbone_through_onnx_gives_the_torch_features(tmp_path, monkeypatch):
    """scan_quality's backbone pass (card-back features, landmark prior) is the same through ONNX Runtime."""
    from PIL import Image

    from vpr_assets.core.curation.landmark_classifier import backbone

    bb = backbone()
    images = [Image.open(p).convert("RGB") for p in CARDS]
    feats, probs = bb.embed(images)
    bb.embed(images[:1], runtime="onnx", onnx_cache=tmp_path)  # the export traces the torch forward once
    monkeypatch.setattr(bb.model, "forward_features", _no_torch_forward)
    f2, p2 = bb.embed(images, runtime="onnx", onnx_cache=tmp_path)
    assert np.abs(f2 - feats).max() < 1e-3 * max(1.0, float(np.abs(feats).max()))
    assert np.abs(p2 - probs).max() < 1e-5
    assert (p2.argmax(1) == probs.argmax(1)).all()
    assert [p.name.split("-")[0] for p in tmp_path.glob("*.onnx")] == ["backbone"]
    with pytest.raises(ValueError):
        bb.embed(images[:1], runtime="tensorflow")
