"""The local store's pack files: the sessions of one bulk commit in one file.

Creating, fsyncing and renaming a file per session costs the store about
half a millisecond a session on ext4, most of an import's time there; a
commit of many sessions (an import's batch, a ``save_sessions`` of many)
writes them into a pack instead, one file for the whole batch.

Format::

    <session line>\n ...      each session's canonical bundle line, as a session file holds it
    <index line>\n            {"pytest-insight-pack": 1, "sessions": [[file name, offset, length,
                               session id, SUT, start time], ...]}
    <names line>\n            the sessions' SHA-256 file names (64 hex digits each), sorted, unseparated
    <16 hex><16 hex>\n        the byte offsets of the index line and of the names line

The index is authoritative: it names each session by its session file name
(see :mod:`pytest_insight.storage.local.session_files`), gives its line's bytes,
and its id, SUT and start time (ISO 8601, UTC), so that a scan narrowed to
a SUT or a time decodes only the sessions inside, and an export sends the
lines without decoding them.
A committed pack never changes; a commit that drops sessions from it writes
the survivors into a new pack and removes the old one.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple

import msgspec

from pytest_insight.errors import CorruptStoreError
from pytest_insight.storage.local.session_files import is_session_file

__all__ = [
    "PACK_BYTES",
    "Entry",
    "Key",
    "PackIndex",
    "PackWriter",
    "file_holds",
    "holds",
    "is_pack_file",
    "members",
    "new_pack_name",
    "read_index",
    "read_names",
    "read_lines",
]


PACK_BYTES = 32 << 20
"""A commit starts a new pack once one holds this many bytes (dropping a session rewrites its pack)."""

FORMAT = 1
_FORMAT_KEY = "pytest-insight-pack"
_SUFFIX = ".pack"
_FOOTER = 33  # two offsets of 16 hex digits, and a newline
_DIGEST = 64  # hex digits of a session file name's SHA-256
_HEX = frozenset("0123456789abcdef")
_HEX_BYTES = b"0123456789abcdef"
_READ_BYTES = 8 << 20  # most bytes one read of a pack's lines takes


class Key(NamedTuple):
    """What a pack's index says of a session besides where its line is."""

    session_id: str
    sut_name: str
    start: datetime


class Entry(NamedTuple):
    """Where a session's line is in its pack, and what the index says of it."""

    offset: int
    length: int
    line: int  # 1-based, for error messages
    key: Key


PackIndex = Mapping[str, Entry]
"""A pack's sessions by session file name."""


def new_pack_name() -> str:
    """A fresh pack file name: ``<32 hex>.pack``."""
    return uuid.uuid4().hex + _SUFFIX


def is_pack_file(name: str) -> bool:
    """Whether ``name`` is named like a pack file."""
    return len(name) == 37 and name.endswith(_SUFFIX) and _HEX.issuperset(name[:32])


class PackWriter:
    """Writes a new pack file: lines first, then :meth:`finish` writes the index.

    Args:
        path: the file to create (it must not exist).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.size = 0
        self._entries: dict[str, tuple[int, int, Key]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def append(self, lines: Iterable[tuple[str, bytes, Key]]) -> None:
        """Add sessions' lines (without their newline); a name added again points at its new line."""
        pieces: list[bytes] = []
        offset = self.size
        for name, line, key in lines:
            self._entries.pop(name, None)  # the index lists lines in file order
            self._entries[name] = (offset, len(line), key)
            pieces.append(line)
            offset += len(line) + 1
        if pieces:
            pieces.append(b"")
            self._write(b"\n".join(pieces))

    def forget(self, name: str) -> None:
        """Leave a session added earlier out of the index (its line stays, unreferenced)."""
        self._entries.pop(name, None)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self.size += len(data)

    def finish(self, durable: bool) -> None:
        """Write the index and close the file, fsync'd first when ``durable``."""
        sessions = [
            [name, offset, length, key.session_id, key.sut_name, key.start.isoformat()]
            for name, (offset, length, key) in self._entries.items()
        ]
        index = json.dumps({_FORMAT_KEY: FORMAT, "sessions": sessions}, separators=(",", ":")).encode("ascii")
        digests = "".join(sorted(name[:_DIGEST] for name in self._entries)).encode("ascii")
        start, names_start = self.size, self.size + len(index) + 1
        self._write(b"%s\n%s\n%016x%016x\n" % (index, digests, start, names_start))
        if durable:
            os.fsync(self._fd)
        self.close()

    def close(self) -> None:
        """Close the file without finishing it (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _trailer(path: Path, file: BinaryIO) -> tuple[int, int, int]:
    """The offsets of a pack's index line and names line, and the file's size."""
    size = os.fstat(file.fileno()).st_size
    footer = os.pread(file.fileno(), _FOOTER, size - _FOOTER) if size >= _FOOTER else b""
    whole = len(footer) == _FOOTER and footer.endswith(b"\n") and not footer[:-1].translate(None, _HEX_BYTES)
    start, names_start = (int(footer[:16], 16), int(footer[16:32], 16)) if whole else (-1, -1)
    if not 0 <= start < names_start < size - _FOOTER:
        raise CorruptStoreError(str(path), None, "not a whole pack: no index offsets at its end")
    return start, names_start, size


def read_names(path: Path) -> bytes:
    """A pack's names line: the 64-hex-digit SHA-256 of each session's id, sorted, unseparated.

    Raises:
        FileNotFoundError: the pack is gone (a writer dropped it).
        CorruptStoreError: the file is not a whole pack.
    """
    with path.open("rb") as file:
        _, names_start, size = _trailer(path, file)
        names = os.pread(file.fileno(), size - _FOOTER - names_start - 1, names_start)
    return _checked_names(path, names)


def _checked_names(path: Path, names: bytes) -> bytes:
    if len(names) % _DIGEST or names.translate(None, _HEX_BYTES):
        raise CorruptStoreError(str(path), None, "not a whole pack: its names line is not names")
    return names


def holds(names: bytes, name: str) -> bool:
    """Whether a names line (see :func:`read_names`) holds the session file ``name``."""
    return _search(lambda at: names[at * _DIGEST : (at + 1) * _DIGEST], len(names) // _DIGEST, name)


def file_holds(path: Path, names: Collection[str]) -> set[str]:
    """Which of ``names`` a pack holds: a binary search of its names line on disk, a read a step.

    For a few names, this reads a few hundred bytes where :func:`read_names` reads 64 a session.

    Raises:
        FileNotFoundError: the pack is gone (a writer dropped it).
        CorruptStoreError: the file is not a whole pack.
    """
    with path.open("rb") as file:
        _, names_start, size = _trailer(path, file)
        count, left = divmod(size - _FOOTER - names_start - 1, _DIGEST)
        if left:
            raise CorruptStoreError(str(path), None, "not a whole pack: its names line is not names")

        def record(at: int) -> bytes:
            return _checked_names(path, os.pread(file.fileno(), _DIGEST, names_start + at * _DIGEST))

        return {name for name in names if _search(record, count, name)}


def _search(record: Callable[[int], bytes], count: int, name: str) -> bool:
    wanted = name[:_DIGEST].encode("ascii", "replace")
    low, high = 0, count
    while low < high:
        middle = (low + high) // 2
        found = record(middle)
        if found == wanted:
            return True
        if found < wanted:
            low = middle + 1
        else:
            high = middle
    return False


def members(names: bytes) -> frozenset[str]:
    """The session file names a names line holds."""
    return frozenset(
        names[at : at + _DIGEST].decode("ascii") + ".json" for at in range(0, len(names), _DIGEST)
    )


def read_index(path: Path) -> dict[str, Entry]:
    """Return a pack's index.

    Raises:
        FileNotFoundError: the pack is gone (a writer dropped it).
        CorruptStoreError: the file is not a whole pack.
    """
    with path.open("rb") as file:
        start, names_start, _ = _trailer(path, file)
        text = os.pread(file.fileno(), names_start - start, start)
    try:
        index = msgspec.json.decode(text)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise CorruptStoreError(str(path), None, f"unreadable pack index: {exc}") from exc
    return _checked(path, index, start)


def _checked(path: Path, index: object, limit: int) -> dict[str, Entry]:
    """The entries of a parsed index, checked: names, lines in file order inside the lines' part, keys."""
    if not isinstance(index, dict) or index.get(_FORMAT_KEY) != FORMAT:
        raise CorruptStoreError(str(path), None, f"not a pack of format {FORMAT}")
    sessions = index.get("sessions")
    if not isinstance(sessions, list):
        raise CorruptStoreError(str(path), None, "pack index without sessions")
    entries: dict[str, Entry] = {}
    end = 0
    for number, entry in enumerate(sessions, 1):
        try:
            name, offset, length, session_id, sut_name, started = entry
            fine = (
                type(offset) is int
                and type(length) is int
                and end <= offset
                and length > 0
                and offset + length < limit
                and type(session_id) is str
                and type(sut_name) is str
                and type(started) is str
                and is_session_file(name)
            )
        except (TypeError, ValueError):
            fine = False
        if not fine:
            raise CorruptStoreError(str(path), None, f"pack index entry out of place: {entry!r}")
        entries[name] = Entry(offset, length, number, Key(session_id, sut_name, _utc(path, started)))
        end = offset + length + 1
    return entries


def _utc(path: Path, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.utcoffset() is None:
        raise CorruptStoreError(str(path), None, f"pack index start time unreadable: {text!r}")
    return value.astimezone(UTC)


def read_lines(
    path: Path, index: PackIndex, names: Iterable[str] | None = None
) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, line)`` for the index's sessions (those of ``names``), reading neighbours together.

    Raises:
        FileNotFoundError: the pack is gone (a writer dropped it).
        CorruptStoreError: the pack is shorter than its index says.
    """
    chosen = sorted(
        index if names is None else (name for name in names if name in index), key=index.__getitem__
    )
    with path.open("rb") as file:
        start = 0
        while start < len(chosen):
            first = index[chosen[start]].offset
            end = start + 1
            while end < len(chosen):
                entry, before = index[chosen[end]], index[chosen[end - 1]]
                if (
                    entry.offset != before.offset + before.length + 1
                    or entry.offset + entry.length - first > _READ_BYTES
                ):
                    break
                end += 1
            last = index[chosen[end - 1]]
            size = last.offset + last.length - first
            block = os.pread(file.fileno(), size, first)
            if len(block) != size:
                raise CorruptStoreError(str(path), None, "the pack is shorter than its index says")
            for name in chosen[start:end]:
                entry = index[name]
                yield name, block[entry.offset - first : entry.offset - first + entry.length]
            start = end
