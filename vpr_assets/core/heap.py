"""Python's garbage collector around a long batch in a large process.

A Dagster run process holds about a million long-lived objects (Dagster, pandas, torch, the models).
A full collection walks all of them while holding the GIL: 0.65 s each in a run of the per-batch
graph, with every OCR stream waiting. Inside `batch_heap()` the objects that existed when the batch
began are frozen (`gc.freeze`), so a full collection walks only what the batch made; they are
unfrozen, and collectable again, when it ends."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def batch_heap() -> Iterator[None]:
    """Full collections inside this block skip the objects that existed before it. When the heap is
    already frozen (a server that froze it at start-up, an enclosing batch), it is left as it is."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
