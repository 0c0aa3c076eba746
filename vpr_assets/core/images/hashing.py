"""Content and perceptual hashes of scans.

`sha256` identifies the exact bytes (the scan_id); perceptual hashes (imagehash) survive
re-encoding, resizing and small crops and drive near-duplicate search.
"""

from __future__ import annotations

import hashlib

import imagehash
import numpy as np
from PIL import Image

HASH_SIZE = 8  # 64-bit hashes: 8 bytes each, FAISS binary-index friendly


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def perceptual_hashes(image: Image.Image) -> dict[str, str]:
    """64-bit pHash, dHash and wHash as 16-character hex strings."""
    return {
        "phash": str(imagehash.phash(image, hash_size=HASH_SIZE)),
        "dhash": str(imagehash.dhash(image, hash_size=HASH_SIZE)),
        "whash": str(imagehash.whash(image, hash_size=HASH_SIZE)),
    }


def hex_to_bytes(hexes: list[str] | np.ndarray) -> np.ndarray:
    """Hex hashes as an (n, 8) uint8 array (the layout faiss.IndexBinary* wants)."""
    return np.array([np.frombuffer(bytes.fromhex(h), dtype=np.uint8) for h in hexes], dtype=np.uint8).reshape(
        len(hexes), -1
    )


def hamming(a: str, b: str) -> int:
    return int(bin(int(a, 16) ^ int(b, 16)).count("1"))
