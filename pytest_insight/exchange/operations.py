"""The exchange core: export, import and clear, the same on every backend.

Import streams records from a source (see :mod:`pytest_insight.exchange.locations`)
and merges them into the target in batches; each batch is one transaction of
the target (lookup, decide per strategy, put, commit).

Merge strategies and their semantics: :mod:`pytest_insight.exchange.merging`.

Failure semantics: a bad line, object or file is an error record (counted in
``errors``, named in ``error_messages``) and never stops the import. Each
batch commits atomically, so an I/O failure or a crash part way leaves the
complete batches before it and no part of a session; running the import again
completes it without duplicates.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import anyio

from pytest_insight.errors import ConfigurationError, InvalidDataError
from pytest_insight.exchange.locations import Sink, Source, open_sink, open_source
from pytest_insight.exchange.merging import (
    MAX_ERROR_MESSAGES,
    ImportStats,
    Merger,
    MergeStrategy,
    parse_strategy,
)
from pytest_insight.exchange.redaction import Redactor
from pytest_insight.format.bundle import EncodedSession, encode_or_reuse, encode_session
from pytest_insight.format.decoding import Limits, SessionLine
from pytest_insight.format.spool import SessionSpool
from pytest_insight.model.sessions import TestSession
from pytest_insight.progress import ProgressCallback
from pytest_insight.storage.base import Backend, LineScanner, ScopeClearer
from pytest_insight.storage.scope import Scope
from pytest_insight.tasks import unwrapped

__all__ = [
    "BATCH_BYTES",
    "DEFAULT_BATCH_SIZE",
    "MAX_ERROR_MESSAGES",
    "ImportStats",
    "MergeStrategy",
    "ProgressCallback",
    "clear_sessions",
    "export_sessions",
    "import_sessions",
    "parse_strategy",
    "scope_for",
]

DEFAULT_BATCH_SIZE = 500
"""Sessions merged per target transaction."""

BATCH_BYTES = 8 << 20
"""A batch ends early once its sessions' lines reach this many bytes, so large sessions bound memory too."""

T = TypeVar("T")


def scope_for(
    *, sut_name: str | None = None, days: int | None = None, since: datetime | None = None
) -> Scope:
    """Build the Scope for the SUT / last-N-days / since filters; both time filters narrow.

    Raises:
        ConfigurationError: ``days`` is negative or not a whole number, or ``sut_name`` is empty.
    """
    if sut_name is not None and not sut_name.strip():
        raise ConfigurationError("sut_name must not be empty")
    start = since
    if days is not None:
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise ConfigurationError(f"days must be a whole number >= 0, got {days!r}")
        cutoff = datetime.now(UTC) - timedelta(days=days)
        start = cutoff if start is None else max(Scope(since=start).since or cutoff, cutoff)
    return Scope(sut_name=sut_name, since=start)


async def export_sessions(
    source: Backend,
    export_path: str | os.PathLike[str] | Sink,
    *,
    scope: Scope,
    sessions: Iterable[TestSession] | None = None,
    progress: ProgressCallback | None = None,
    redactor: Redactor | None = None,
) -> int:
    """Export the sessions of ``source`` inside ``scope`` (or ``sessions``) to ``export_path``.

    With a ``redactor``, every secret in what is exported is replaced first
    (a session imported from elsewhere may hold some); a session with none
    is exported as stored.

    Returns:
        The number of sessions written.

    Raises:
        ConfigurationError: the target is not a supported file type or scheme.
        StorageError: the store cannot be read or the target cannot be written.
    """
    sink = open_sink(export_path)
    with SessionSpool() as encoded:
        if sessions is None:
            stored: AsyncIterator[TestSession | SessionLine | EncodedSession]
            stored = source.scan_lines(scope) if isinstance(source, LineScanner) else source.scan(scope)
            async with _closing(stored) as items:
                async for item in items:
                    if isinstance(item, EncodedSession):  # keyed by the store, its line canonical
                        if not scope.admits_key(item.sut_name, item.start_time):
                            continue
                        encoded.append(_redacted(item, redactor))
                    else:
                        session = item.session if isinstance(item, SessionLine) else item
                        line = item.line if isinstance(item, SessionLine) else None
                        if not scope.admits(session):
                            continue
                        encoded.append(_redacted(encode_or_reuse(session, line), redactor))
                    if progress is not None:
                        progress("read", len(encoded), None)
        else:
            for session in sessions:
                if scope.admits(session):
                    encoded.append(_redacted(encode_session(session), redactor))
        return await sink.write(encoded, progress)


def _redacted(item: EncodedSession, redactor: Redactor | None) -> EncodedSession:
    """``item`` with its secrets replaced: decoded and encoded again only when it holds one."""
    if redactor is None:
        return item
    found = redactor.total
    session = redactor.redacted_line(item.line)
    return item if session is None or redactor.total == found else encode_session(session)


async def import_sessions(
    target: Backend,
    import_path: str | os.PathLike[str] | Source,
    *,
    merge_strategy: MergeStrategy,
    scope: Scope,
    progress: ProgressCallback | None = None,
    limits: Limits | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ImportStats:
    """Import sessions from ``import_path`` into ``target`` (see the module docstring).

    Args:
        target: the backend to merge into.
        import_path: a file, a directory of bundles, or a registered URI.
        merge_strategy: what to do with ids already stored.
        scope: only sessions inside it are imported (and counted).
        progress: told of sessions read and merged.
        limits: decoding bounds; :meth:`Limits.from_env` when None.
        batch_size: sessions per target transaction (fewer once their lines
            reach :data:`BATCH_BYTES`).

    Raises:
        ConfigurationError: an unknown strategy or unsupported location (nothing read).
        NotFoundError: the source does not exist.
        StorageError: the source or the target failed part way; complete
            batches stay committed.
    """
    strategy = parse_strategy(merge_strategy)
    bounds = limits or Limits.from_env()
    source = open_source(import_path)
    merger = Merger(target, strategy)
    # one batch is decoded while the previous one commits; at most two are held
    send, receive = anyio.create_memory_object_stream[list[SessionLine | TestSession]](1)

    async def read() -> None:
        batch: list[SessionLine | TestSession] = []
        count = size = 0
        async with send, _closing(source.records(scope, bounds, progress)) as records:
            async for item in records:
                count += 1
                if progress is not None:
                    progress("read", count, None)
                if isinstance(item, InvalidDataError):
                    merger.error(str(item))
                elif scope.admits(item.session if isinstance(item, SessionLine) else item):
                    batch.append(item)
                    size += len(item.line) if isinstance(item, SessionLine) else 0
                    if len(batch) >= batch_size or size >= BATCH_BYTES:
                        await send.send(batch)
                        batch, size = [], 0
            if batch:
                await send.send(batch)

    with unwrapped():
        async with anyio.create_task_group() as group, receive:
            group.start_soon(read)
            async for batch in receive:
                await merger.merge(batch, progress)
    return merger.stats


async def clear_sessions(
    target: Backend, sessions: Iterable[TestSession] | None = None, *, scope: Scope | None = None
) -> int:
    """Remove ``sessions`` (by id, those inside ``scope`` if given), or every session in ``scope``, or all.

    Returns:
        The number of sessions removed.

    Raises:
        StorageError: the store cannot be read or written.
    """
    if sessions is None and isinstance(target, ScopeClearer):
        # the backend clears a scope itself (S3: whole partitions without downloading them)
        return await target.clear_scope(scope or Scope())
    ids: set[str] | None = None
    if sessions is not None:
        ids = {session.session_id for session in sessions if scope is None or scope.admits(session)}
    elif scope is not None and not scope.is_everything:
        async with _closing(target.scan(scope)) as stored:
            ids = {session.session_id async for session in stored if scope.admits(session)}
    if ids is not None and not ids:
        return 0
    async with target.transaction() as transaction:
        return await transaction.delete(ids)


@asynccontextmanager
async def _closing(items: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close an async generator when the block ends, even on an early exit."""
    try:
        yield items
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()
