"""Query cards read their captions: a text-fused model fuses a query exactly as the index fused the
collection's cards (same OCR, same variant text, same MiniLM), and that changes what it finds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vpr_assets.core.active_model import ActiveModel
from vpr_assets.core.evaluation import embed_fn_for
from vpr_assets.core.images import synth
from vpr_assets.core.training.recognizer import Recognizer, RecognizerConfig
from vpr_assets.core.training.variants import text_for_sources, variant_text
from vpr_assets.core.vision.models import build_embedder

pytestmark = pytest.mark.slow


def test_variant_text_is_one_definition():
    assert variant_text("image_clusters", "PARIS", "Notre-Dame") is None
    assert variant_text("image_ocr", "PARIS", "Notre-Dame") == "PARIS"
    assert variant_text("image_ocr_desc", "PARIS", "Notre-Dame") == "Notre-Dame\nPARIS"
    assert variant_text("image_ocr", "  ", "Notre-Dame") is None
    assert text_for_sources(("description",), None, " Tower Bridge ") == "Tower Bridge"


def test_query_caption_is_read_and_fused_like_the_index(tmp_path):
    from vpr_assets.core.query_text import query_text_vectors, read_captions
    from vpr_assets.core.vision.embedder import embed_paths

    places = synth.DEMO_PLACES[:3]
    paths = []
    for place in places:
        for i in range(2):
            p = tmp_path / f"{place.key}_{i}.jpg"
            synth.landmark_card(place, i, seed=2).save(p, quality=90)
            paths.append(p)
    torch.manual_seed(0)
    rec = Recognizer(build_embedder("lite0_gem512", pretrained=True), RecognizerConfig("image_ocr")).eval()
    with torch.no_grad():
        rec.fusion.gate.fill_(2.0)  # a model that leans on text, as a trained image_ocr model may
    model = ActiveModel("candidate:image_ocr", rec.embedder, rec, "training")
    assert model.text_sources == "ocr"

    plain, ok = embed_fn_for(model, num_workers=0)(paths)
    fused, ok2 = embed_fn_for(model, num_workers=0, read_captions=True)(paths)
    assert ok.all() and ok2.all()

    # what the index would hold for these cards: image vector fused with MiniLM(the OCR caption)
    captions = read_captions(paths)
    assert sum(bool(c.strip()) for c in captions) >= 4  # the printed captions were read
    img = embed_paths(rec.embedder, paths, num_workers=0).vectors
    text = query_text_vectors("ocr", captions)
    expected = rec.fuse_by_id(img, [str(p) for p in paths], {str(p): v for p, v in zip(paths, text) if v is not None})
    np.testing.assert_allclose(fused, expected, atol=1e-5)
    np.testing.assert_allclose(plain, rec.fuse_by_id(img, [str(p) for p in paths], {}), atol=1e-5)

    # reading the captions changes the ranking of the captioned cards
    def ranking(v):
        sims = v @ v.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1).tolist()

    assert ranking(fused) != ranking(plain)
    captioned = [i for i, c in enumerate(captions) if c.strip()]
    assert not np.allclose(fused[captioned], plain[captioned], atol=1e-3)
