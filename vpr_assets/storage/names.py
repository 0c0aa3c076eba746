"""File names of partitions: a reversible, file-system-safe stem per partition key, and the
limits a key must respect to be stored at all (no DuckDB here: the core imports it).

A stem becomes `tables/<asset>/<stem>.parquet` (written through `.<stem>.parquet.XXXXXXXX.tmp`)
and `derived/<stem>/`; a file name holds at most 255 bytes on the file systems we run on, so the
percent-encoded stem is capped well below that (40 CJK characters are 360 bytes once encoded).
"""

from __future__ import annotations

import urllib.parse

UNPARTITIONED = "_all"  # the file of an unpartitioned table: no partition key may take this name
RESERVED_KEYS = frozenset({UNPARTITIONED})
MAX_STEM_BYTES = 200  # + ".parquet" + the temporary-file prefix and suffix stays under 255
_SAFE = "-_.="


def partition_file_stem(partition: str) -> str:
    """A file-system-safe, reversible name for a partition key (keys may hold any character)."""
    if not partition:
        raise ValueError("partition key must be non-empty")
    return urllib.parse.quote(partition, safe=_SAFE) if partition != UNPARTITIONED else UNPARTITIONED


def partition_from_stem(stem: str) -> str:
    return urllib.parse.unquote(stem)


def storable_key_problem(partition: str) -> str | None:
    """Why a partition key cannot be stored as a partition file, or None."""
    if partition in RESERVED_KEYS:
        return f"{partition!r} is reserved (the file of unpartitioned tables)"
    n = len(partition_file_stem(partition).encode("utf-8"))
    if n > MAX_STEM_BYTES:
        return (f"too long once encoded for a file name: {n} bytes > {MAX_STEM_BYTES} "
                f"(non-ASCII characters take 6-12 bytes each; {len(partition)} characters given)")
    return None
