"""The storage API over any backend: :class:`Storage`, and :func:`run_sync` for its sync face.

Every method has an ``_async`` twin for callers already inside an event
loop; the plain method runs the twin on a fresh event loop. The concrete
storages and the URI and profile resolution are in
:mod:`pytest_insight.core.storage`, the documented import path.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from pytest_insight.core.collections_policy import rare_full_collections
from pytest_insight.model.session_ids import names_itself
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.base import Backend, NewestLister
from pytest_insight.storage.scope import Scope

if TYPE_CHECKING:
    from pytest_insight.exchange.locations import Sink, Source
    from pytest_insight.exchange.operations import ImportStats, ProgressCallback
    from pytest_insight.exchange.redaction import Redactor

__all__ = ["PathLike", "Storage", "run_sync"]

T = TypeVar("T")
PathLike = str | os.PathLike[str]


def run_sync(function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``function(*args)`` to completion from synchronous code.

    Inside a running event loop (an async test, a notebook) the coroutine
    runs on a fresh loop in a short-lived thread, since a loop cannot be
    nested in the thread that runs one.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(function, *args)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pytest-insight") as pool:
        return pool.submit(anyio.run, function, *args).result()


class Storage:
    """Sessions at one location, with the save, load and exchange API."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def uri(self) -> str:
        """The storage URI that reopens this storage."""
        return self.backend.uri

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"

    # -- saving and loading -------------------------------------------------

    async def save_session_async(self, session: TestSession) -> None:
        """Async twin of :meth:`save_session`."""
        await self.save_sessions_async([session])

    def save_session(self, session: TestSession) -> None:
        """Store one session.

        Raises:
            SessionExistsError: a session with the same id is already stored.
            StorageError: the store cannot be written.
        """
        run_sync(self.save_session_async, session)

    async def save_recorded_session_async(self, session: TestSession) -> None:
        """Async twin of :meth:`save_recorded_session`."""
        async with self.backend.transaction() as transaction:
            await transaction.put([session], minted=names_itself(session))

    def save_recorded_session(self, session: TestSession) -> None:
        """Store a session this process just recorded, as the plugin does at the end of a run.

        An id made by :func:`~pytest_insight.model.session_ids.new_session_id`
        for this session's SUT and start (48 random bits) cannot be stored
        yet, so the store is not searched for it: in a bucket the save is one
        upload, however many runs that SUT's day already holds. Any other id
        is checked as :meth:`save_session` checks it.

        Raises:
            SessionExistsError: the id is not of that form and is already stored.
            StorageError: the store cannot be written.
        """
        run_sync(self.save_recorded_session_async, session)

    async def save_sessions_async(self, sessions: Iterable[TestSession]) -> None:
        """Async twin of :meth:`save_sessions`."""
        batch = list(sessions)
        async with self.backend.transaction() as transaction:
            await transaction.put(batch)

    def save_sessions(self, sessions: Iterable[TestSession]) -> None:
        """Store several sessions as one batch: all of them or none.

        Raises:
            SessionExistsError: one of the ids is already stored (or repeated);
                nothing is written.
            StorageError: the store cannot be written.
        """
        run_sync(self.save_sessions_async, sessions)

    async def load_sessions_async(self, scope: Scope | None = None) -> list[TestSession]:
        """Async twin of :meth:`load_sessions`."""
        wanted = scope or Scope()
        found = [session async for session in self.backend.scan(wanted) if wanted.admits(session)]
        found.sort(key=lambda session: (session.session_start_time, session.session_id))
        return found

    def load_sessions(self, scope: Scope | None = None) -> list[TestSession]:
        """Return the stored sessions (those inside ``scope``), oldest first.

        Raises:
            CorruptStoreError: a stored file cannot be parsed; names file and line.
            StorageError: the store cannot be read.
        """
        with rare_full_collections():  # the loaded sessions form no cycles: see collections_policy
            return run_sync(self.load_sessions_async, scope)

    async def newest_sessions_async(self, limit: int, scope: Scope | None = None) -> list[TestSession]:
        """Async twin of :meth:`newest_sessions`."""
        wanted = scope or Scope()
        if isinstance(self.backend, NewestLister):
            return await self.backend.newest(limit, wanted)
        found = await self.load_sessions_async(wanted)
        return found[::-1][:limit]

    def newest_sessions(self, limit: int, scope: Scope | None = None) -> list[TestSession]:
        """Return the ``limit`` newest sessions (inside ``scope``), newest first.

        A local store decodes only those: the cost of finding them does not
        grow with what the other sessions hold.

        Raises:
            CorruptStoreError: a stored file cannot be parsed.
            StorageError: the store cannot be read.
        """
        return run_sync(self.newest_sessions_async, limit, scope)

    async def get_session_by_id_async(self, session_id: str) -> TestSession | None:
        """Async twin of :meth:`get_session_by_id`."""
        return await self.backend.get(session_id)

    def get_session_by_id(self, session_id: str) -> TestSession | None:
        """Return the session with this id, or None when there is none."""
        return run_sync(self.get_session_by_id_async, session_id)

    async def get_last_session_async(self) -> TestSession | None:
        """Async twin of :meth:`get_last_session`."""
        last: TestSession | None = None
        async for session in self.backend.scan():
            if last is None or session.session_start_time > last.session_start_time:
                last = session
        return last

    def get_last_session(self) -> TestSession | None:
        """Return the session that started last, or None for an empty store."""
        return run_sync(self.get_last_session_async)

    # -- the exchange -------------------------------------------------------

    async def clear_sessions_async(
        self, sessions_to_clear: Iterable[TestSession] | None = None, *, scope: Scope | None = None
    ) -> int:
        """Async twin of :meth:`clear_sessions`."""
        from pytest_insight.exchange import (
            operations,  # the exchange loads when used: a plugin's save skips it
        )

        return await operations.clear_sessions(self.backend, sessions_to_clear, scope=scope)

    def clear_sessions(
        self, sessions_to_clear: Iterable[TestSession] | None = None, *, scope: Scope | None = None
    ) -> int:
        """Remove stored sessions.

        Args:
            sessions_to_clear: the sessions to remove (matched by id), for
                example a query result; every session when None.
            scope: instead of a list, remove every session inside this scope.

        Returns:
            The number of sessions removed.
        """
        return run_sync(lambda: self.clear_sessions_async(sessions_to_clear, scope=scope))

    async def export_sessions_async(
        self,
        export_path: PathLike | Sink,
        days: int | None = None,
        sut_name: str | None = None,
        *,
        sessions: Iterable[TestSession] | None = None,
        since: datetime | None = None,
        progress: ProgressCallback | None = None,
        redact: bool | Redactor = True,
    ) -> int:
        """Async twin of :meth:`export_sessions`."""
        from pytest_insight.exchange import operations
        from pytest_insight.exchange.redaction import Redactor

        scope = operations.scope_for(sut_name=sut_name, days=days, since=since)
        redactor = redact if isinstance(redact, Redactor) else Redactor() if redact else None
        return await operations.export_sessions(
            self.backend, export_path, scope=scope, sessions=sessions, progress=progress, redactor=redactor
        )

    def export_sessions(
        self,
        export_path: PathLike | Sink,
        days: int | None = None,
        sut_name: str | None = None,
        *,
        sessions: Iterable[TestSession] | None = None,
        since: datetime | None = None,
        progress: ProgressCallback | None = None,
        redact: bool | Redactor = True,
    ) -> int:
        """Export sessions for sharing with another store.

        Args:
            export_path: a ``.json`` file, a ``.jsonl.gz`` / ``.json.gz``
                bundle, a directory or ``file://`` URI (bundle layout), or an
                ``s3://bucket/prefix``.
            days: only sessions that started in the last ``days`` days.
            sut_name: only sessions of this SUT.
            sessions: export exactly these sessions (a list or query result)
                instead of reading the store; ``days`` and ``sut_name`` still
                narrow them.
            since: only sessions that started at or after this time.
            progress: called as work advances, for progress bars.
            redact: replace secrets before they leave (see
                :mod:`pytest_insight.exchange.redaction`); False exports sessions as
                stored; a :class:`~pytest_insight.exchange.redaction.Redactor` of your
                own sets the patterns and counts what it replaced.

        Returns:
            The number of sessions exported.
        """
        return run_sync(
            lambda: self.export_sessions_async(
                export_path, days, sut_name, sessions=sessions, since=since, progress=progress, redact=redact
            )
        )

    async def import_sessions_async(
        self,
        import_path: PathLike | Source,
        merge_strategy: str = "skip_existing",
        *,
        sut_name: str | None = None,
        days: int | None = None,
        since: datetime | None = None,
        progress: ProgressCallback | None = None,
    ) -> ImportStats:
        """Async twin of :meth:`import_sessions`."""
        from pytest_insight.exchange import operations

        strategy = operations.parse_strategy(merge_strategy)
        scope = operations.scope_for(sut_name=sut_name, days=days, since=since)
        return await operations.import_sessions(
            self.backend, import_path, merge_strategy=strategy, scope=scope, progress=progress
        )

    def import_sessions(
        self,
        import_path: PathLike | Source,
        merge_strategy: str = "skip_existing",
        *,
        sut_name: str | None = None,
        days: int | None = None,
        since: datetime | None = None,
        progress: ProgressCallback | None = None,
    ) -> ImportStats:
        """Import sessions exported by another store.

        Args:
            import_path: a file (``.json``, ``.jsonl.gz``, 0.9 formats), a
                directory or ``file://`` URI of bundles, or ``s3://...``.
            merge_strategy: ``skip_existing`` (default), ``replace_existing``
                or ``keep_both``.
            sut_name: only import sessions of this SUT.
            days: only import sessions that started in the last ``days`` days.
            since: only import sessions that started at or after this time.
            progress: called as work advances, for progress bars.

        Returns:
            Statistics: ``total``, ``imported``, ``added``, ``updated``,
            ``skipped``, ``errors`` and the ``error_messages``.

        Raises:
            ConfigurationError: an unknown merge strategy (nothing is read).
            NotFoundError: the source does not exist.
        """
        with rare_full_collections():  # the sessions in flight form no cycles: see collections_policy
            return run_sync(
                lambda: self.import_sessions_async(
                    import_path, merge_strategy, sut_name=sut_name, days=days, since=since, progress=progress
                )
            )
