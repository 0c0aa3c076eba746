"""Image decoding, hashing, thumbnails and synthetic postcards."""
