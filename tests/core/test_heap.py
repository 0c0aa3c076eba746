"""batch_heap: full collections inside a batch walk only what the batch made, and nothing older
stays uncollectable after it."""

from __future__ import annotations

import gc
import weakref

from vpr_assets.core.heap import batch_heap


class Node:
    def __init__(self):
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_a_batch_freezes_the_older_heap_and_collects_its_own_cycles():
    gc.collect()
    older = Node()
    older_ref = weakref.ref(older)
    with batch_heap():
        assert gc.get_freeze_count() > 0
        made = Node()
        made_ref = weakref.ref(made)
        del made, older  # both are cyclic garbage now
        gc.collect()
        assert made_ref() is None  # the batch's own garbage is collected inside it
        assert older_ref() is not None  # frozen: not walked, so not freed yet
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert older_ref() is None  # unfrozen with the batch's end: collectable again


def test_a_heap_frozen_before_the_batch_is_left_frozen():
    gc.collect()
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with batch_heap():
            pass
        assert gc.get_freeze_count() == before  # not unfrozen by the batch: the server froze it, not us
    finally:
        gc.unfreeze()
