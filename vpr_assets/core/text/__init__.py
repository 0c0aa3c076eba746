"""Text from postcards: caption OCR, place words matched to a gazetteer, sentence embeddings.

Modules import their heavy dependencies (torch, easyocr, sentence-transformers) lazily, so
importing this package is cheap.
"""
