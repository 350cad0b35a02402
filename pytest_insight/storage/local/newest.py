"""The newest sessions of a local store, decoding only those: what ``insight sessions --limit N`` needs.

A packed session's SUT, start time and id are in its pack's index. A
session file holds one canonical line, read here through a projection that
takes the three keys and skips the rest without building it (msgspec, in C):
a few microseconds a kilobyte, against a whole decode's thousands of objects
a session. Only the ``limit`` newest are then decoded. A file or pack that a
writer moves meanwhile sends the caller back to the full scan, which copes
with writers.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from pytest_insight.format.lines import SessionLine
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.scope import Scope

if TYPE_CHECKING:
    from pytest_insight.storage.local.store import LocalBackend

__all__ = ["Moved", "newest"]


class Moved(Exception):
    """A file or pack went while it was read: the full scan is the way to a consistent answer."""


class _Key(msgspec.Struct):
    session_id: str
    sut_name: str
    session_start_time: datetime


_KEY = msgspec.json.Decoder(_Key)


def newest(backend: LocalBackend, limit: int, scope: Scope) -> list[TestSession]:
    """The ``limit`` newest sessions inside ``scope``, newest first (blocking; call in a thread).

    Raises:
        Moved: a writer moved sessions while they were looked at.
        CorruptStoreError: a stored file or pack cannot be parsed.
    """
    files: dict[str, tuple[datetime, Path]] = {}
    for path in backend.list_files():
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise Moved from None
        try:
            key = _KEY.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):  # not canonical: the full decode words it
            whole = backend.read_files([path])
            if not whole:
                raise Moved from None
            key = _Key(whole[0].session_id, whole[0].sut_name, whole[0].session_start_time)
        if scope.admits_key(key.sut_name, key.session_start_time):
            files[key.session_id] = (key.session_start_time, path)
    packed: dict[str, tuple[datetime, str, str]] = {}
    for pack in backend.shelf.names():
        index = backend.shelf.index(pack)
        if index is None:
            raise Moved
        for name, entry in index.items():
            if entry.key.session_id not in files and scope.admits_key(entry.key.sut_name, entry.key.start):
                packed[entry.key.session_id] = (entry.key.start, pack, name)
    ranked = sorted(
        [(start, session_id) for session_id, (start, _) in files.items()]
        + [(start, session_id) for session_id, (start, _, _) in packed.items()],
        reverse=True,
    )[:limit]
    chosen: list[TestSession] = []
    for _, session_id in ranked:
        if session_id in files:
            found = backend.read_files([files[session_id][1]])
        else:
            _, pack, name = packed[session_id]
            items = backend.shelf.items(pack, [name], reuse=False)
            found = [item.session for _, item in items or [] if isinstance(item, SessionLine)]
        if not found:
            raise Moved
        chosen.append(found[0])
    return chosen
