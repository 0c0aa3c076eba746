"""The model variants the product trains (torch-free, so the code location loads fast)."""

VARIANTS = {
    "image": {"clusters": False, "text_sources": ()},
    "image_clusters": {"clusters": True, "text_sources": ()},
    "image_ocr": {"clusters": True, "text_sources": ("ocr",)},
    "image_ocr_desc": {"clusters": True, "text_sources": ("ocr", "description")},
}
