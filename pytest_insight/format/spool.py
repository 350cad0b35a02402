"""An export's sessions on disk, so that memory does not grow with the selection.

An export reads every selected session before it writes any bundle: a bundle
holds one SUT and day, and stores yield sessions in no order. The spool
appends each encoded line to an unnamed temporary file (in ``TMPDIR``) and
keeps in memory only what sorting and grouping need: the SUT, start time and
id of each session and where its line lies, a few hundred bytes a session
however large the session is. An item read back loads its line from the file, so a
sink that writes one bundle per SUT and day holds one partition's lines at a
time.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from datetime import date, datetime
from typing import overload

from pytest_insight.errors import StorageError
from pytest_insight.format.bundle import EncodedSession

__all__ = ["Selection", "SessionSpool"]


class Selection(Sequence[EncodedSession]):
    """Sessions of a spool, by index; each item's line is read when the item is asked for."""

    _spool: SessionSpool

    @property
    def _indexes(self) -> Sequence[int]:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self._indexes)

    @overload
    def __getitem__(self, index: int) -> EncodedSession: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[EncodedSession]: ...

    def __getitem__(self, index: int | slice) -> EncodedSession | Sequence[EncodedSession]:
        if isinstance(index, slice):
            return _Members(self._spool, self._indexes[index])
        return self._spool._item(self._indexes[index])

    def ordered(self) -> Sequence[EncodedSession]:
        """These sessions in bundle order (start time, then id), without reading a line."""
        keys = self._spool._keys
        return _Members(self._spool, sorted(self._indexes, key=lambda index: keys[index][1:]))


class SessionSpool(Selection):
    """Encoded sessions kept in a temporary file, their keys in memory.

    Append while reading the source, then read (from any thread: reads are
    positional and never move a shared offset). Close it, or use it as a
    context manager, to drop the file; the operating system drops it anyway
    when the process ends.
    """

    def __init__(self) -> None:
        self._spool = self
        try:
            self._file = tempfile.TemporaryFile(prefix="pytest-insight-export-")  # noqa: SIM115  see close()
        except OSError as exc:
            raise _failed("cannot create the export's temporary file", exc) from exc
        self._keys: list[tuple[str, datetime, str]] = []
        self._spans: list[tuple[int, int]] = []
        self._size = 0
        self._flushed = True

    def __enter__(self) -> SessionSpool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop the temporary file."""
        self._file.close()

    def append(self, item: EncodedSession) -> None:
        """Write ``item``'s line to the file and keep its keys.

        Raises:
            StorageError: the temporary file cannot be written (a full disk).
        """
        try:
            self._file.write(item.line)
        except OSError as exc:
            raise _failed("cannot write the export's temporary file", exc) from exc
        self._keys.append((item.sut_name, item.start_time, item.session_id))
        self._spans.append((self._size, len(item.line)))
        self._size += len(item.line)
        self._flushed = False

    @property
    def _indexes(self) -> Sequence[int]:
        return range(len(self._keys))

    def _item(self, index: int) -> EncodedSession:
        sut_name, start_time, session_id = self._keys[index]
        return EncodedSession(sut_name, start_time, session_id, self._line(index))

    def _line(self, index: int) -> bytes:
        offset, length = self._spans[index]
        try:
            if not self._flushed:
                self._file.flush()
                self._flushed = True
            line = os.pread(self._file.fileno(), length, offset)
        except OSError as exc:
            raise _failed("cannot read the export's temporary file", exc) from exc
        if len(line) != length:  # the file is ours alone: only a failing disk gets here
            raise StorageError(f"{tempfile.gettempdir()}: the export's temporary file came back short")
        return line

    def partition(self) -> dict[tuple[str, date], Sequence[EncodedSession]]:
        """Group the sessions by (SUT, UTC start day) without reading a line."""
        groups: dict[tuple[str, date], list[int]] = {}
        for index, (sut_name, start_time, _) in enumerate(self._keys):
            groups.setdefault((sut_name, start_time.date()), []).append(index)
        return {key: _Members(self, indexes) for key, indexes in groups.items()}


class _Members(Selection):
    """Some of a spool's sessions."""

    def __init__(self, spool: SessionSpool, indexes: Sequence[int]) -> None:
        self._spool = spool
        self._chosen = indexes

    @property
    def _indexes(self) -> Sequence[int]:
        return self._chosen


def _failed(what: str, exc: OSError) -> StorageError:
    return StorageError(f"{tempfile.gettempdir()}: {what}: {exc.strerror or exc} (set TMPDIR elsewhere)")
