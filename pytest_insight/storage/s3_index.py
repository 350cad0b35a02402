"""Which session ids each bundle of a bucket prefix holds, kept up to date by listing.

Session ids are unique in a whole prefix, so an S3 transaction must know
where every id is stored, and an import into a bucket opens one transaction
per batch. Reading every bundle in each transaction made such an import
quadratic in requests and held the whole prefix in memory. The index keeps,
for each bundle key, the ETag it was listed with and the ids it holds.
:meth:`IdIndex.refresh` lists a scope (one request per 1000 keys) and
downloads only the bundles that are new or whose ETag changed since; keys
gone from the listing are dropped. What the backend uploads itself is
learnt from the upload (:meth:`IdIndex.learn`, with the ETag the PUT
answered), so its own bundles are never read back. A transaction then
downloads whole only the bundles it must return or rewrite.

One index belongs to one backend object and lives as long as it does; it
costs about the ids themselves in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from pytest_insight.core.layout import parse_bundle_key
from pytest_insight.errors import InvalidDataError
from pytest_insight.storage.base import Scope
from pytest_insight.storage.s3_listing import covers, list_objects
from pytest_insight.storage.s3_pipeline import each_key

if TYPE_CHECKING:
    from pytest_insight.storage.s3_reads import S3Reader

__all__ = ["IdIndex"]


@dataclass(frozen=True, slots=True)
class _Entry:
    etag: str
    ids: tuple[str, ...]  # each once
    broken: bool  # some of its lines, or all of it, could not be decoded


class IdIndex:
    """Bundle key → the ETag it was listed with and the session ids it holds, and the reverse."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._keys_of: dict[str, list[str]] = {}
        self._lock = anyio.Lock()

    async def refresh(self, backend: S3Reader, scope: Scope) -> None:
        """Bring the bundles inside ``scope`` up to date: list them, download what changed.

        Raises:
            StorageError: the listing or a download failed.
            NotFoundError: the bucket does not exist.
        """
        async with self._lock:
            listed: dict[str, str] = {}
            async with aclosing(list_objects(backend, scope)) as objects:
                async for item in objects:
                    listed[item.key] = item.etag
            gone = [key for key in self._entries if key not in listed and self._inside(backend, key, scope)]
            for key in gone:
                self._drop(key)
            known = self._entries
            changed = [key for key, etag in listed.items() if key not in known or known[key].etag != etag]
            async with aclosing(backend.read_bundles(each_key(changed))) as bundles:
                async for stored in bundles:
                    if stored.failure is not None:
                        raise stored.failure
                    ids = [session.session_id for session in stored.sessions]
                    self._put(stored.key, listed[stored.key], ids, broken=bool(stored.errors))

    def learn(self, key: str, etag: str, session_ids: Sequence[str]) -> None:
        """Record what this backend just wrote at ``key`` (the ETag its PUT answered with)."""
        self._put(key, etag, session_ids, broken=False)

    @staticmethod
    def _inside(backend: S3Reader, key: str, scope: Scope) -> bool:
        if scope.is_everything:
            return True
        try:
            return covers(scope, parse_bundle_key(key, backend.root))
        except InvalidDataError:
            return False  # outside the layout: listed only with everything

    def _drop(self, key: str) -> None:
        for sid in self._entries.pop(key).ids:
            keys = self._keys_of[sid]
            keys.remove(key)
            if not keys:
                del self._keys_of[sid]

    def _put(self, key: str, etag: str, session_ids: Sequence[str], *, broken: bool) -> None:
        if key in self._entries:
            self._drop(key)
        ids = tuple(dict.fromkeys(session_ids))  # a bundle may hold an id twice; it is indexed once
        self._entries[key] = _Entry(etag, ids, broken)
        for sid in ids:
            self._keys_of.setdefault(sid, []).append(key)

    def keys_of(self, session_id: str) -> Sequence[str]:
        """The bundles holding ``session_id`` (none when it is not stored)."""
        return self._keys_of.get(session_id, ())

    def ids(self) -> list[str]:
        """Every session id stored."""
        return list(self._keys_of)

    def keys(self) -> list[str]:
        """Every bundle known."""
        return list(self._entries)

    def broken(self, key: str) -> bool:
        """Whether the bundle at ``key`` holds lines that could not be decoded."""
        return self._entries[key].broken
