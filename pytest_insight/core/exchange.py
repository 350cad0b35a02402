"""STUB (being replaced): the backend-neutral exchange core. Signatures are the contract."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Protocol, TypedDict

from pytest_insight.core.models import TestSession
from pytest_insight.storage.base import Backend, Scope

__all__ = [
    "ImportStats",
    "MergeStrategy",
    "ProgressCallback",
    "clear_sessions",
    "export_sessions",
    "import_sessions",
    "parse_strategy",
    "scope_for",
]


class MergeStrategy(StrEnum):
    """How an import treats a session whose id is already stored."""

    SKIP_EXISTING = "skip_existing"
    REPLACE_EXISTING = "replace_existing"
    KEEP_BOTH = "keep_both"


class ImportStats(TypedDict):
    """What an import did. ``total == imported + skipped + errors``; ``imported == added + updated``."""

    total: int
    imported: int
    added: int
    updated: int
    skipped: int
    errors: int
    error_messages: list[str]


class ProgressCallback(Protocol):
    """Told how far a long operation got: ``phase`` is e.g. "list", "transfer", "merge"."""

    def __call__(self, phase: str, done: int, total: int | None) -> None: ...


def parse_strategy(name: str) -> MergeStrategy:
    """Return the strategy named, or raise ConfigurationError listing the valid names."""
    raise NotImplementedError


def scope_for(
    *, sut_name: str | None = None, days: int | None = None, since: datetime | None = None
) -> Scope:
    """Build the Scope for the SUT / last-N-days / since filters (validates days >= 0)."""
    raise NotImplementedError


async def export_sessions(
    source: Backend,
    export_path: str | os.PathLike[str],
    *,
    scope: Scope,
    sessions: Iterable[TestSession] | None = None,
    progress: ProgressCallback | None = None,
) -> int:
    """Export the sessions of ``source`` inside ``scope`` (or ``sessions``) to ``export_path``."""
    raise NotImplementedError


async def import_sessions(
    target: Backend,
    import_path: str | os.PathLike[str],
    *,
    merge_strategy: MergeStrategy,
    scope: Scope,
    progress: ProgressCallback | None = None,
) -> ImportStats:
    """Import sessions from ``import_path`` into ``target``."""
    raise NotImplementedError


async def clear_sessions(
    target: Backend, sessions: Iterable[TestSession] | None = None, *, scope: Scope | None = None
) -> int:
    """Remove ``sessions`` (by id), or every session in ``scope``, or everything."""
    raise NotImplementedError
