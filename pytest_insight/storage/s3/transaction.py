"""Transactions on the S3 backend: staged puts and deletes, committed as bundle writes.

S3 has no multi-object transaction, so a commit is a sequence of safe
steps, in this order:

1. bundles that lose sessions are rewritten in place, conditional on the ETag
   they had when read (``If-Match``); when another writer changed one in the
   meantime it is read again and the removal redone, so nobody's change is
   lost. A bundle left empty is deleted.
2. ``delete(None)`` deletes exactly the bundles it read (never one written
   after), in ``DeleteObjects`` batches of at most 1000 keys.
3. new sessions are uploaded, one bundle per SUT and UTC day, with
   ``If-None-Match: *``; a 412 means the same content-derived key is already
   there, which is the same bundle.

A failure part way leaves the earlier steps done. A bundle that cannot be
decoded is never rewritten (:class:`CorruptStoreError`), only deleted by
``delete(None)``.

Session ids are unique across the whole store, not per partition: a
transaction that looks ids up, deletes or replaces brings the backend's
:class:`~pytest_insight.storage.s3.ids.IdIndex` of the whole prefix up to
date (a listing, plus a GET of each bundle that is new or changed since the
backend last looked), then downloads whole only the bundles holding the ids it
returns or removes. Two exceptions keep saving recorded runs cheap:

- a new session whose id is in the plugin's form
  ``<sut>-<YYYYmmddTHHMMSSZ>-<12 hex>``, naming its own SUT and start second
  (an import of recorded runs, a library save), is checked against its own
  (SUT, day) partition only. Such an id can be stored elsewhere only if
  another session had the same SUT, the same start second and the same 48
  random bits (or was edited by hand to another SUT or day);
- the plugin's save of the run it just recorded (``put(..., minted=True)``)
  is not checked at all: the id was made by this process a moment ago, so a
  CI run's save is one upload however many runs its day holds, and a
  repeated upload of it lands on the same content-derived key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from datetime import date
from functools import partial

from pytest_insight.errors import CorruptStoreError, SessionExistsError
from pytest_insight.format.bundle import encode_session
from pytest_insight.model.session_ids import names_itself
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.s3.bucket import Bucket
from pytest_insight.storage.s3.deletes import delete_keys
from pytest_insight.storage.s3.index import refresh_index
from pytest_insight.storage.s3.objects import StoredBundle
from pytest_insight.storage.s3.pipeline import each_key, read_bundles, run_concurrently, upload_sessions
from pytest_insight.storage.s3.rewrite import rewrite_without
from pytest_insight.storage.scope import EVERYTHING, Scope

__all__ = ["S3Transaction", "delete_all_or_raise", "open_transaction"]


async def delete_all_or_raise(bucket: Bucket, keys: Collection[str]) -> None:
    """Delete ``keys`` (see :mod:`~pytest_insight.storage.s3.deletes`); the first key refused is raised.

    Raises:
        AccessDeniedError: the server refused to delete a key (named in the message).
        StorageError: a request failed.
    """
    failed = await delete_keys(bucket, sorted(keys))
    if failed:
        raise failed[min(failed)]


@asynccontextmanager
async def open_transaction(bucket: Bucket) -> AsyncIterator[S3Transaction]:
    """Open a transaction on ``bucket``; it commits when the block exits without an exception."""
    transaction = S3Transaction(bucket)
    yield transaction
    await transaction.commit()


class S3Transaction:
    """Staged changes to one bucket prefix (see the module docstring for the commit order)."""

    def __init__(self, bucket: Bucket) -> None:
        self._bucket = bucket
        self._index = bucket.index
        self._bundles: dict[str, StoredBundle] = {}  # read whole: to return sessions or rewrite them
        self._partitions: set[tuple[str, date]] = set()
        self._everything = False  # whether the whole prefix was indexed in this transaction
        self._puts: dict[str, TestSession] = {}
        self._replaced: set[str] = set()
        self._deletes: set[str] = set()
        self._delete_all: list[str] | None = None  # delete(None): every bundle indexed then, and no other

    async def _index_everything(self) -> None:
        if not self._everything:
            await refresh_index(self._bucket, EVERYTHING)
            self._everything = True

    async def _index_partitions(self, sessions: Sequence[TestSession]) -> None:
        if self._everything:
            return
        if not all(names_itself(session) for session in sessions):
            await self._index_everything()
            return
        for key in sorted({(s.sut_name, s.session_start_time.date()) for s in sessions} - self._partitions):
            await refresh_index(self._bucket, Scope.of_day(key[1], key[0]))
            self._partitions.add(key)

    async def _read(self, keys: Collection[str]) -> None:
        """Download the bundles at ``keys`` not read yet in this transaction."""
        wanted = sorted(set(keys) - set(self._bundles))
        if not wanted:
            return
        async with aclosing(read_bundles(self._bucket, each_key(wanted))) as bundles:
            async for stored in bundles:
                if stored.failure is not None:
                    raise stored.failure
                self._bundles[stored.key] = stored

    def _stored(self, session_id: str) -> TestSession | None:
        for key in self._index.keys_of(session_id):
            stored = self._bundles.get(key)  # None: indexed by another transaction since the read
            for session in stored.sessions if stored is not None else ():
                if session.session_id == session_id:
                    return session
        return None

    async def lookup(self, session_ids: Collection[str]) -> dict[str, TestSession]:
        await self._index_everything()
        await self._read({key for sid in session_ids for key in self._index.keys_of(sid)})
        found = {sid: self._stored(sid) for sid in session_ids}
        return {sid: session for sid, session in found.items() if session is not None}

    async def stored_ids(self, session_ids: Collection[str]) -> set[str]:
        await self._index_everything()
        return {sid for sid in session_ids if self._index.keys_of(sid)}

    async def put(
        self,
        sessions: Sequence[TestSession],
        *,
        replace: bool = False,
        lines: Mapping[str, bytes] | None = None,  # unused: bundles hold canonical lines only
        minted: bool = False,
    ) -> None:
        batch = list(sessions)
        if not replace:
            seen: set[str] = set()
            for session in batch:
                if session.session_id in seen or session.session_id in self._puts:
                    raise SessionExistsError(session.session_id)
                seen.add(session.session_id)
        if replace:
            await self._index_everything()  # the stored copy may sit in another SUT's or day's partition
        elif not minted:  # a minted id cannot be stored yet: what the index already knows is enough
            await self._index_partitions(batch)
        for session in batch:
            sid = session.session_id
            stored = bool(self._index.keys_of(sid)) and self._delete_all is None and sid not in self._deletes
            if stored and not replace:
                raise SessionExistsError(sid)
            if stored:
                self._replaced.add(sid)
        self._puts.update((session.session_id, session) for session in batch)

    async def delete(self, session_ids: Collection[str] | None = None) -> int:
        await self._index_everything()
        if session_ids is None:
            self._delete_all = self._index.keys()
            self._deletes = set(self._index.ids())
            return len(self._deletes)
        present = {sid for sid in session_ids if self._index.keys_of(sid)} - self._deletes
        broken = sorted(key for sid in present for key in self._index.keys_of(sid) if self._index.broken(key))
        if broken:
            raise CorruptStoreError(
                self._bucket.object_uri(broken[0]), None, "cannot rewrite a corrupt bundle"
            )
        self._deletes |= present
        return len(present)

    async def commit(self) -> None:
        """Apply the staged changes.

        Raises:
            StorageError: a request failed; the steps before it stay applied.
        """
        if self._delete_all is not None:
            await delete_all_or_raise(self._bucket, self._delete_all)
        else:
            removing = self._deletes | self._replaced
            affected: dict[str, set[str]] = {}
            for sid in removing:
                for key in self._index.keys_of(sid):
                    affected.setdefault(key, set()).add(sid)
            await self._read(affected)
            emptied: list[str] = []

            async def rewrite(key: str, removed: set[str]) -> None:
                done = await rewrite_without(
                    self._bucket, self._bundles[key], lambda s: s.session_id in removed
                )
                if done.emptied:
                    emptied.append(key)

            await run_concurrently([partial(rewrite, key, ids) for key, ids in sorted(affected.items())])
            await delete_all_or_raise(self._bucket, emptied)
        if self._puts:
            await upload_sessions(self._bucket, [encode_session(session) for session in self._puts.values()])
