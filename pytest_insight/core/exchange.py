"""The exchange core: export, import and clear, the same on every backend.

Import streams records from a source (see :mod:`pytest_insight.core.locations`)
and merges them into the target in batches; each batch is one transaction of
the target (lookup, decide per strategy, put, commit).

Merge semantics, per session id of the source, in source order:

- ``skip_existing``: an id already stored is skipped (its stored copy is never read).
- ``replace_existing``: an id stored with different content is replaced
  (``updated``); identical content is skipped.
- ``keep_both``: an id stored with different content is stored again as
  ``<id>-<n>`` (the first ``n`` free in the store and the batch); content
  identical to the stored session or to one of its suffixed copies is skipped.

"Identical" means equal canonical JSON without the session id. Each id of a
source is taken at most once (later duplicates meet what the first one left),
so re-running an import adds and updates nothing, under every strategy.

Failure semantics: a bad line, object or file is an error record (counted in
``errors``, named in ``error_messages``) and never stops the import. Each
batch commits atomically, so an I/O failure or a crash part way leaves the
complete batches before it and no part of a session; running the import again
completes it without duplicates.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypedDict, TypeVar

import anyio

from pytest_insight.core.bundle import content_digest, encode_session
from pytest_insight.core.decoding import Limits, SessionLine
from pytest_insight.core.locations import open_sink, open_source
from pytest_insight.core.models import TestSession
from pytest_insight.core.progress import ProgressCallback
from pytest_insight.core.spool import SessionSpool
from pytest_insight.errors import ConfigurationError, InvalidDataError
from pytest_insight.storage.base import Backend, Scope, Transaction

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

BATCH_BYTES = 32 << 20
"""A batch ends early once its sessions' lines reach this many bytes, so large sessions bound memory too."""

MAX_ERROR_MESSAGES = 1000
"""Error messages kept in the stats; ``errors`` still counts every one."""

_SUFFIX_PROBE = 8  # suffixed ids looked up at once by keep_both
T = TypeVar("T")


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


def parse_strategy(name: str) -> MergeStrategy:
    """Return the strategy named (any case, ``-`` or ``_``).

    Raises:
        ConfigurationError: an unknown name; the message lists the valid ones.
    """
    if isinstance(name, str):
        try:
            return MergeStrategy(name.strip().lower().replace("-", "_"))
        except ValueError:
            pass
    valid = ", ".join(strategy.value for strategy in MergeStrategy)
    raise ConfigurationError(f"unknown merge strategy {name!r} (valid: {valid})")


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
    export_path: str | os.PathLike[str],
    *,
    scope: Scope,
    sessions: Iterable[TestSession] | None = None,
    progress: ProgressCallback | None = None,
) -> int:
    """Export the sessions of ``source`` inside ``scope`` (or ``sessions``) to ``export_path``.

    Returns:
        The number of sessions written.

    Raises:
        ConfigurationError: the target is not a supported file type or scheme.
        StorageError: the store cannot be read or the target cannot be written.
    """
    sink = open_sink(export_path)
    with SessionSpool() as encoded:
        if sessions is None:
            async with _closing(source.scan(scope)) as stored:
                async for session in stored:
                    if scope.admits(session):
                        encoded.append(encode_session(session))
                        if progress is not None:
                            progress("read", len(encoded), None)
        else:
            for session in sessions:
                if scope.admits(session):
                    encoded.append(encode_session(session))
        return await sink.write(encoded, progress)


async def import_sessions(
    target: Backend,
    import_path: str | os.PathLike[str],
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
    merger = _Merger(target, strategy)
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

    try:
        async with anyio.create_task_group() as group, receive:
            group.start_soon(read)
            async for batch in receive:
                await merger.merge(batch, progress)
    except BaseExceptionGroup as failure:
        if len(failure.exceptions) == 1:  # surface the one real error, not the task group's wrapper
            raise failure.exceptions[0] from None
        raise
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
    scoped_clear = getattr(target, "clear_scope", None)
    if sessions is None and scoped_clear is not None:
        # the backend clears a scope itself (S3: whole partitions without downloading them)
        return int(await scoped_clear(scope or Scope()))
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


class _Batch:
    """The target as one batch sees it: what was stored, overlaid by what the batch staged."""

    def __init__(
        self, transaction: Transaction, stored: dict[str, TestSession], stored_ids: Iterable[str] = ()
    ) -> None:
        self.transaction = transaction
        self.known: dict[str, TestSession | None] = dict(stored)
        self.stored_ids = set(stored_ids)  # stored, content not read (skip_existing needs no more)
        self.digests: dict[str, str] = {}
        self.new: dict[str, TestSession] = {}
        self.replacements: dict[str, TestSession] = {}

    def digest(self, session_id: str, session: TestSession) -> str:
        if session_id not in self.digests:
            self.digests[session_id] = content_digest(session)
        return self.digests[session_id]

    async def current(self, session_id: str, *, probe: bool = False) -> TestSession | None:
        if session_id not in self.known:
            if not probe:
                return None
            base, _, number = session_id.rpartition("-")
            wanted = [f"{base}-{int(number) + step}" for step in range(_SUFFIX_PROBE)]
            found = await self.transaction.lookup([sid for sid in wanted if sid not in self.known])
            for sid in wanted:
                self.known.setdefault(sid, found.get(sid))
        return self.known[session_id]

    def exists(self, session_id: str) -> bool:
        return session_id in self.stored_ids or self.known.get(session_id) is not None

    def stage(self, session: TestSession, *, replace: bool) -> None:
        (self.replacements if replace else self.new)[session.session_id] = session
        self.known[session.session_id] = session
        self.digests.pop(session.session_id, None)


class _Merger:
    """Applies one strategy batch after batch and keeps the stats."""

    def __init__(self, target: Backend, strategy: MergeStrategy) -> None:
        self.target = target
        self.strategy = strategy
        self.seen: set[str] = set()
        self.merged = 0
        self.stats = ImportStats(
            total=0, imported=0, added=0, updated=0, skipped=0, errors=0, error_messages=[]
        )

    def error(self, message: str) -> None:
        self.stats["total"] += 1
        self._note_error(message)

    def _note_error(self, message: str) -> None:
        self.stats["errors"] += 1
        messages = self.stats["error_messages"]
        if len(messages) < MAX_ERROR_MESSAGES:
            messages.append(message)
        elif len(messages) == MAX_ERROR_MESSAGES:
            messages.append(f"... further errors not listed (limit {MAX_ERROR_MESSAGES})")

    async def merge(self, items: list[SessionLine | TestSession], progress: ProgressCallback | None) -> None:
        added = updated = skipped = 0
        failed: list[str] = []
        sessions = [item.session if isinstance(item, SessionLine) else item for item in items]
        # by object identity: an incoming session staged as it came keeps its line, a renamed copy does not
        lines = {id(item.session): item.line for item in items if isinstance(item, SessionLine)}

        def lines_of(staged: Iterable[TestSession]) -> dict[str, bytes]:
            return {s.session_id: lines[id(s)] for s in staged if id(s) in lines}

        async with self.target.transaction() as transaction:
            ids = {session.session_id for session in sessions}
            if self.strategy is MergeStrategy.SKIP_EXISTING:
                batch = _Batch(transaction, {}, await transaction.stored_ids(ids))
            else:
                batch = _Batch(transaction, await transaction.lookup(ids))
            for session in sessions:
                try:
                    outcome = await self._decide(session, batch)
                except InvalidDataError as exc:  # e.g. a keep_both copy's id would be too long
                    sid = session.session_id
                    shown = sid if len(sid) <= 64 else sid[:60] + "..."
                    failed.append(f"session {shown!r}: {exc}")
                    continue
                added += outcome == "added"
                updated += outcome == "updated"
                skipped += outcome == "skipped"
            if batch.new:
                await transaction.put(list(batch.new.values()), lines=lines_of(batch.new.values()))
            if batch.replacements:
                replacing = batch.replacements.values()
                await transaction.put(list(replacing), replace=True, lines=lines_of(replacing))
        # counted only once the batch is committed
        self.stats["total"] += len(sessions)
        for message in failed:
            self._note_error(message)
        self.stats["added"] += added
        self.stats["updated"] += updated
        self.stats["imported"] += added + updated
        self.stats["skipped"] += skipped
        self.merged += len(sessions)
        if progress is not None:
            progress("merge", self.merged, None)

    async def _decide(self, session: TestSession, batch: _Batch) -> str:
        sid = session.session_id
        first = sid not in self.seen
        self.seen.add(sid)
        if self.strategy is MergeStrategy.SKIP_EXISTING:
            if batch.exists(sid):
                return "skipped"
            batch.stage(session, replace=False)
            return "added"
        current = await batch.current(sid)
        if current is None:
            batch.stage(session, replace=False)
            return "added"
        digest = content_digest(session)
        if digest == batch.digest(sid, current):
            return "skipped"
        if self.strategy is MergeStrategy.REPLACE_EXISTING:
            if not first:
                return "skipped"
            batch.stage(session, replace=True)
            return "updated"
        number = 1
        while True:
            candidate = f"{sid}-{number}"
            copy = await batch.current(candidate, probe=True)
            if copy is None:
                batch.stage(dataclasses.replace(session, session_id=candidate), replace=False)
                return "added"
            if batch.digest(candidate, copy) == digest:
                return "skipped"
            number += 1
