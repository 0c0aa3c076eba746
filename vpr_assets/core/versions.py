"""Content versions: the same rows in give the same short hash out (order-independent). Dagster data
versions, index build versions and lexicon fingerprints are made from it, so lineage can tell
"recomputed, same content" from "changed"."""

from __future__ import annotations

import hashlib
from typing import Iterable


def content_version(values: Iterable[str]) -> str:
    h = hashlib.sha256()
    for v in sorted(str(x) for x in values):
        h.update(v.encode("utf-8", "backslashreplace"))
        h.update(b"\0")
    return h.hexdigest()[:16]
