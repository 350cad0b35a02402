"""The packs of one local store: their names, their indexes and their sessions."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Set
from pathlib import Path

from pytest_insight.errors import CorruptStoreError
from pytest_insight.format.lines import CANONICAL_START, EncodedSession, SessionLine
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.local import packs
from pytest_insight.storage.local.session_files import decode_stored

__all__ = ["Found", "Item", "PackShelf"]

Found = tuple[str, TestSession, bytes]
"""A stored session: its session file name, the session, and its stored line."""

Item = tuple[str, SessionLine | EncodedSession]
"""A session a scan yields, with its session file name."""

_SEARCHED = 16  # names looked up by binary search on disk; more, and the pack's names are read, kept


class PackShelf:
    """The packs in one directory; a pack's index is read once, as a pack never changes.

    Every method returns None for a pack that is gone (a writer dropped it
    after it was listed). Thread-safe: several scans may read at once.

    Args:
        directory: the store's ``packs`` directory.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._indexes: dict[str, packs.PackIndex] = {}
        self._names: dict[str, bytes] = {}
        self._members: dict[str, frozenset[str]] = {}

    def names(self) -> list[str]:
        """The names of the packs there are (forgetting the indexes of packs that are gone)."""
        try:
            with os.scandir(self.directory) as entries:
                names = sorted(entry.name for entry in entries if packs.is_pack_file(entry.name))
        except FileNotFoundError:
            names = []
        for cache in (self._indexes, self._names, self._members):
            for gone in cache.keys() - set(names):
                cache.pop(gone, None)
        return names

    def holding(self, pack: str, names: Collection[str]) -> Set[str] | None:
        """Which of ``names`` the pack holds, from its names line alone (its index is not read).

        Raises:
            CorruptStoreError: the pack is not whole.
        """
        if len(names) > _SEARCHED:
            held = self.members(pack)
            return None if held is None else held & set(names)
        block = self._names.get(pack)
        if block is not None:
            return {name for name in names if packs.holds(block, name)}
        try:
            return packs.file_holds(self.directory / pack, names)
        except FileNotFoundError:
            return None

    def members(self, pack: str) -> frozenset[str] | None:
        """The session file names the pack holds (kept).

        Raises:
            CorruptStoreError: the pack is not whole.
        """
        held = self._members.get(pack)
        if held is None:
            block = self._names.get(pack)
            if block is None:
                try:
                    block = self._names[pack] = packs.read_names(self.directory / pack)
                except FileNotFoundError:
                    return None
            held = self._members[pack] = packs.members(block)
        return held

    def index(self, pack: str) -> packs.PackIndex | None:
        """A pack's index.

        Raises:
            CorruptStoreError: the pack is not whole.
        """
        index = self._indexes.get(pack)
        if index is None:
            try:
                index = self._indexes[pack] = packs.read_index(self.directory / pack)
            except FileNotFoundError:
                return None
        return index

    def read(self, pack: str, names: Iterable[str] | None = None) -> list[Found] | None:
        """The sessions of a pack (those of ``names`` it holds).

        Raises:
            CorruptStoreError: a line is not a session, or not the one its index names.
        """
        items = self.items(pack, names, reuse=False)
        if items is None:
            return None
        return [(name, item.session, item.line) for name, item in items if isinstance(item, SessionLine)]

    def items(self, pack: str, names: Iterable[str] | None, reuse: bool) -> list[Item] | None:
        """Like :meth:`read`; with ``reuse``, a canonical line comes undecoded, keyed by the index.

        Raises:
            CorruptStoreError: a decoded line is not a session, or not the one its index names.
        """
        index = self.index(pack)
        if index is None:
            return None
        path = self.directory / pack
        items: list[Item] = []
        try:
            for name, line in packs.read_lines(path, index, names):
                entry = index[name]
                if reuse and line.startswith(CANONICAL_START):
                    key = entry.key
                    items.append((name, EncodedSession(key.sut_name, key.start, key.session_id, line)))
                else:
                    items.append((name, SessionLine(_decode(path, name, entry, line), line)))
        except FileNotFoundError:
            return None
        return items


def _decode(path: Path, name: str, entry: packs.Entry, line: bytes) -> TestSession:
    """A pack's session, which must be the one its index says (a scan narrows by what the index says)."""
    session = decode_stored(str(path), line, name, entry.line)
    if (session.session_id, session.sut_name, session.session_start_time) != entry.key:
        raise CorruptStoreError(str(path), entry.line, "the pack's index says another id, SUT or start time")
    return session
