"""The progress callback long operations report to (the CLI draws it as a bar)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["ProgressCallback"]


class ProgressCallback(Protocol):
    """Told how far a long operation got.

    ``phase`` is "list" (objects found), "transfer" (objects read), "read"
    (sessions decoded), "merge" (sessions merged) or "write" (sessions
    written); ``total`` is None while it is not known.
    """

    def __call__(self, phase: str, done: int, total: int | None) -> None: ...
