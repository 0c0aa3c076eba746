"""The caption OCR pipeline's version, alone so that `vpr status` and the Dagster definitions can read
it without loading the OCR (OpenCV, ONNX Runtime). Bump it when the pipeline changes what it returns:
it is part of every card's settings hash and of `ocr_text`'s code version."""

OCR_PIPELINE_VERSION = "caption-ocr-4"  # 3: lone-jamo Hangul readings dropped; 4: sure Latin Tesseract readings replace unsure EasyOCR ones
