"""A session beside its canonical bundle line: what stores yield when they scan.

Kept apart from :mod:`~pytest_insight.format.bundle` and
:mod:`~pytest_insight.format.decoding` (which re-export these names) so that a
scan of a store, the plugin's known-flaky note among them, loads neither gzip
nor the bundle decoders.
"""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from pytest_insight.model.sessions import TestSession

__all__ = ["CANONICAL_START", "EncodedSession", "SessionLine", "StoredLine", "is_canonical"]

CANONICAL_START = b'{"rerun_test_groups":'
"""How every line ``encode_session`` writes starts: the first of a session's keys in sorted order."""


class EncodedSession(msgspec.Struct, frozen=True):
    """A session as one canonical bundle line (without the newline), with its sort and partition keys."""

    sut_name: str
    start_time: datetime
    session_id: str
    line: bytes

    @property
    def day(self) -> date:
        """The UTC day the session started: its date partition."""
        return self.start_time.date()


class SessionLine(msgspec.Struct, frozen=True):
    """A session with the JSON line it was decoded from, byte for byte (without the newline).

    Decoding ``line`` gives ``session`` back, so a store may write the line as
    it is instead of encoding the session again.
    """

    session: TestSession
    line: bytes


class StoredLine(msgspec.Struct, frozen=True):
    """A stored session's canonical line, not decoded: its reader decodes what it needs and checks the scope.

    Attributes:
        line: the line, without the newline.
        source: where it is stored (a file), for error messages.
    """

    line: bytes
    source: str


def is_canonical(data: bytes) -> bool:
    """Whether stored ``data`` looks like one line ``encode_session`` wrote (a trailing newline allowed)."""
    return data.startswith(CANONICAL_START) and b"\n" not in data.removesuffix(b"\n")
