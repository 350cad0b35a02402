"""Which session ids each bundle of a bucket prefix holds: the bookkeeping, without any request.

:mod:`~pytest_insight.storage.s3.index` brings it up to date by listing; an
upload records what it wrote (:meth:`IdIndex.learn`, with the ETag the PUT
answered), so the backend never reads its own bundles back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anyio

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
        self.lock = anyio.Lock()

    def learn(self, key: str, etag: str, session_ids: Sequence[str]) -> None:
        """Record what this backend just wrote at ``key`` (the ETag its PUT answered with)."""
        self.put(key, etag, session_ids, broken=False)

    def drop(self, key: str) -> None:
        """Forget the bundle at ``key``."""
        for sid in self._entries.pop(key).ids:
            keys = self._keys_of[sid]
            keys.remove(key)
            if not keys:
                del self._keys_of[sid]

    def put(self, key: str, etag: str, session_ids: Sequence[str], *, broken: bool) -> None:
        """Record that ``key``, at ``etag``, holds ``session_ids``."""
        if key in self._entries:
            self.drop(key)
        ids = tuple(dict.fromkeys(session_ids))  # a bundle may hold an id twice; it is indexed once
        self._entries[key] = _Entry(etag, ids, broken)
        for sid in ids:
            self._keys_of.setdefault(sid, []).append(key)

    def etag(self, key: str) -> str | None:
        """The ETag ``key`` was last seen with, or None when it is not known."""
        entry = self._entries.get(key)
        return entry.etag if entry is not None else None

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
