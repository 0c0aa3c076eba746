"""Text embeddings with the real offline all-MiniLM-L6-v2."""

from __future__ import annotations

import numpy as np
import pytest

from vpr_assets.core.text.text_embeddings import EMBED_DIM, card_text, embed_texts, get_text_model


@pytest.fixture(scope="module")
def embedded():
    texts = ["LONDON - Tower Bridge", None, "", "Tower Bridge over the Thames in London", "   ",
             "A cat asleep on a red sofa", "Venezia - Piazza San Marco", "St Mark's Square, Venice"]
    return texts, *embed_texts(texts, batch_size=4)


def test_shape_dtype_norm(embedded):
    _, vecs, idx = embedded
    assert vecs.shape == (5, EMBED_DIM) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_empty_texts_get_no_vector(embedded):
    texts, vecs, idx = embedded
    assert idx == [0, 3, 5, 6, 7]  # None, "" and whitespace are skipped, not zero vectors
    assert not np.any(np.all(vecs == 0, axis=1))
    empty, none_idx = embed_texts([None, "", " "])
    assert empty.shape == (0, EMBED_DIM) and none_idx == []


def test_similar_captions_are_closer(embedded):
    _, vecs, idx = embedded
    v = dict(zip(idx, vecs))
    assert v[0] @ v[3] > v[0] @ v[5] + 0.2  # Tower Bridge vs cat
    assert v[6] @ v[7] > v[6] @ v[5] + 0.2  # San Marco in Italian and English vs cat
    assert v[6] @ v[7] > v[6] @ v[0]


def test_model_loaded_once_and_deterministic(embedded):
    assert get_text_model() is get_text_model()
    _, vecs, _ = embedded
    again, _ = embed_texts(["LONDON - Tower Bridge"])
    np.testing.assert_allclose(again[0], vecs[0], atol=1e-5)


def test_card_text():
    assert card_text(None, "  ") is None
    assert card_text("LONDON", "Tower Bridge") == "Tower Bridge\nLONDON"
