"""The one protocol every storage backend implements.

A backend knows how to read, write and delete sessions at its location and
nothing more: merge strategies, filters and statistics live once, in
:mod:`pytest_insight.exchange.operations`, and work on any backend.

Backends are async. Reads go through :meth:`Backend.scan` and
:meth:`Backend.get`; every change goes through a :class:`Transaction`, which
stages puts and deletes and commits them as one batch when its context exits
without an exception. Per-backend differences:

- memory: a dict guarded by a lock; commits are atomic.
- local (JSON files): a file per session, or a pack file per bulk commit; a
  transaction holds the store's file lock from the first lookup to the
  commit, so read-modify-write is safe across processes, and the commit is
  all-or-nothing even under SIGKILL.
- S3: sessions live in bundles; a transaction writes new bundles with
  ``If-None-Match: *`` and rewrites changed ones conditionally on their ETag.

Two optional capabilities, each a Protocol checked with ``isinstance``: a
backend that can remove a whole scope without reading it is a
:class:`ScopeClearer` (S3 deletes whole day partitions unread), which
``exchange.clear_sessions`` uses; one that keeps each session as its
canonical bundle line is a :class:`LineScanner`, yielding ``SessionLine``, or
``EncodedSession`` for a session it can key without decoding its line (the
local store, from its packs' indexes), which ``exchange.export_sessions``
uses to send the lines as they are instead of encoding every session again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.scope import EVERYTHING, Scope

if TYPE_CHECKING:
    from pytest_insight.format.lines import EncodedSession, SessionLine

# Scope lives in storage.scope; it is still importable from here, as it was
__all__ = ["Backend", "LineScanner", "NewestLister", "Scope", "ScopeClearer", "Transaction"]


class Transaction(Protocol):
    """A batch of changes to one backend, committed together on exit.

    Lookups see what was committed before the transaction began (and, for
    backends that lock, nothing else can commit until it ends); they do not
    see the transaction's own staged changes.
    """

    async def lookup(self, session_ids: Collection[str]) -> dict[str, TestSession]:
        """Return the stored sessions among ``session_ids``, by id."""
        ...

    async def stored_ids(self, session_ids: Collection[str]) -> set[str]:
        """Return which of ``session_ids`` are stored, as :meth:`lookup` would, without reading them."""
        ...

    async def put(
        self,
        sessions: Sequence[TestSession],
        *,
        replace: bool = False,
        lines: Mapping[str, bytes] | None = None,
        minted: bool = False,
    ) -> None:
        """Stage ``sessions`` for writing.

        ``lines`` maps ids to the JSON line a session was read from (see
        :class:`~pytest_insight.format.decoding.SessionLine`); a backend may
        store that line instead of encoding the session again.

        ``minted`` vouches that the ids were just made by this process with
        :func:`~pytest_insight.model.session_ids.new_session_id` (48 random
        bits), so none can be stored yet: a backend for which looking is
        costly may skip the search for a stored copy.

        Raises:
            SessionExistsError: ``replace`` is False and an id is already
                stored or already staged; nothing of this call is staged.
        """
        ...

    async def delete(self, session_ids: Collection[str] | None = None) -> int:
        """Stage the removal of ``session_ids`` (every session when None).

        Returns:
            How many of them are stored and will be removed on commit.
        """
        ...


class Backend(Protocol):
    """Where sessions live: a directory, a dict or a bucket prefix."""

    @property
    def uri(self) -> str:
        """The storage URI that reopens this backend."""
        ...

    def scan(self, scope: Scope = EVERYTHING) -> AsyncIterator[TestSession]:
        """Yield the stored sessions, at least those inside ``scope``, in no set order.

        Raises:
            CorruptStoreError: a stored file or object cannot be parsed.
            StorageError: the location cannot be read.
        """
        ...

    async def get(self, session_id: str) -> TestSession | None:
        """Return the session with this id, or None."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """Open a transaction; it commits when the block exits without an exception.

        Raises:
            StoreLockedError: the backend's lock could not be taken in time.
        """
        ...


@runtime_checkable
class ScopeClearer(Protocol):
    """A backend that removes a whole scope itself, without reading it first (S3)."""

    async def clear_scope(self, scope: Scope) -> int:
        """Remove every session inside ``scope``.

        Returns:
            The number of sessions removed.

        Raises:
            StorageError: some objects could not be removed.
        """
        ...


@runtime_checkable
class LineScanner(Protocol):
    """A backend that keeps each session as its canonical bundle line (the local store)."""

    def scan_lines(self, scope: Scope) -> AsyncIterator[SessionLine | EncodedSession]:
        """Yield the stored sessions with their lines, at least those inside ``scope``.

        Raises:
            CorruptStoreError: a stored file cannot be parsed.
        """
        ...


@runtime_checkable
class NewestLister(Protocol):
    """A backend that finds its newest sessions without decoding the others (the local store)."""

    async def newest(self, limit: int, scope: Scope) -> list[TestSession]:
        """The ``limit`` newest sessions inside ``scope``, newest first.

        Raises:
            StorageError: the store cannot be read.
        """
        ...
