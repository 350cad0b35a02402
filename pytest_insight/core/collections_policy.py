"""How often CPython's full garbage collections run while many sessions are in memory.

A load or an import keeps many decoded sessions alive, and every full
collection walks all of them: in a large load they took much of the CPU
time. Sessions form no reference cycles (results are not even tracked), so
those collections find nothing. The
young generations, where short-lived garbage goes, are collected as often as
before.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["rare_full_collections"]


@contextmanager
def rare_full_collections() -> Iterator[None]:
    """Run the block with CPython's full garbage collections at most a hundredth as often.

    The thresholds are the process's, so they are restored when the block
    ends; a block inside another leaves them as the outer one set them.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], max(thresholds[2], 1000))
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
