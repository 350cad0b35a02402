"""The progress callback long operations report to (the CLI draws it as a bar)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["ProgressCallback"]


class ProgressCallback(Protocol):
    """Told how far a long operation got.

    ``phase`` is "list" (objects found), "transfer" (objects read), "read"
    (sessions decoded), "merge" (sessions merged) or "write" (sessions
    written); ``total`` is None while it is not known. An export to a
    directory or a bucket ends with one "new bundles" report: the bundles it
    wrote that were not there yet, of all its bundles.
    """

    def __call__(self, phase: str, done: int, total: int | None) -> None: ...
