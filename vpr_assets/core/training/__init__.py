"""Training of recognition models (ArcFace on landmark clusters), image-only or fused with text."""
