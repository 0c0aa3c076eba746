"""One `Variant` type owns the text each model variant sees."""

from __future__ import annotations

import pytest

from vpr_assets.core.training.variants import FUSED_TEXT_SOURCES, VARIANTS, variant


def test_each_variant_sees_its_own_text():
    ocr, desc = "TOWER BRIDGE LONDON", "Tower Bridge at dusk"
    assert variant("image").text(ocr, desc) is None and not variant("image").uses_text
    assert variant("image_ocr").text(ocr, desc) == ocr
    assert variant("image_ocr_desc").text(ocr, desc) == f"{desc}\n{ocr}"
    assert variant("image_ocr_desc").text(None, "  ") is None
    assert {v.text_source for v in VARIANTS.values()} == {"", "ocr", "ocr+description"}
    assert FUSED_TEXT_SOURCES == ("ocr", "ocr+description")
    assert variant("image_clusters").clusters and not variant("image").clusters


def test_an_unknown_variant_is_named_in_the_error():
    with pytest.raises(ValueError, match="unknown variant 'image_desc'.*image_ocr"):
        variant("image_desc")
