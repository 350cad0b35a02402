"""The local store's session files: their names and their content (a pack's lines hold the same)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import msgspec

from pytest_insight.errors import CorruptStoreError, InvalidDataError
from pytest_insight.model.schema import decode_line, encode_line
from pytest_insight.model.sessions import TestSession

__all__ = ["decode_file", "decode_stored", "encode_file", "is_session_file", "session_file_name"]

_HEX = frozenset("0123456789abcdef")


def session_file_name(session_id: str) -> str:
    """Return the file name a session id is stored under: ``<sha256 hex>.json``."""
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest() + ".json"


def is_session_file(name: str) -> bool:
    """Whether ``name`` is named like a session file (anything else in ``sessions/`` is ignored)."""
    return len(name) == 69 and name.endswith(".json") and _HEX.issuperset(name[:64])


def encode_file(session: TestSession) -> bytes:
    """A session file's content: the session's canonical bundle line and a newline."""
    return encode_line(session) + b"\n"  # canonical, as a bundle's line: an export reuses it


def decode_file(path: Path, data: bytes) -> TestSession:
    """The session in a session file's content.

    Raises:
        CorruptStoreError: the content is not a session, or not the one the file is named for.
    """
    return decode_stored(str(path), data, path.name, 1)


def decode_stored(source: str, data: bytes, name: str, line: int) -> TestSession:
    """The session in a stored line: a session file's content or a line of a pack.

    Args:
        source: the file, for error messages.
        data: the line (a trailing newline is allowed).
        name: the session file name it is stored under; the session's id must hash to it.
        line: the line's number in ``source``.

    Raises:
        CorruptStoreError: the line is not a session, or not the one it is stored under.
    """
    try:
        session = decode_line(data)
    except (msgspec.MsgspecError, OverflowError, InvalidDataError):  # not canonical: read leniently
        session = _read_leniently(source, data, line)
    if session_file_name(session.session_id) != name:
        raise CorruptStoreError(
            source, line, "session_id: does not match the file name (file moved by hand?)"
        )
    return session


def _read_leniently(source: str, data: bytes, line: int) -> TestSession:
    """A stored line that is not canonical (an earlier release's, or edited by hand), or why it is no session.

    Raises:
        CorruptStoreError: the line is not a session.
    """
    try:
        raw = json.loads(data)
    except json.JSONDecodeError as exc:
        raise CorruptStoreError(source, line + exc.lineno - 1, f"{exc.msg} (column {exc.colno})") from exc
    except UnicodeDecodeError as exc:
        raise CorruptStoreError(source, line, f"not UTF-8 text: {exc.reason}") from exc
    try:
        return TestSession.from_dict(raw)
    except InvalidDataError as exc:
        reason = f"{exc.field}: {exc.reason}" if exc.field else exc.reason
        raise CorruptStoreError(source, line, reason) from exc
