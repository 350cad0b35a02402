"""The ids the plugin gives sessions: ``<readable SUT>-<start second, UTC>-<12 random hex>``.

Readable (the SUT and when the run started), unique (48 random bits) and
safe in file names and object keys. Because such an id names its own SUT and
start second, an S3 store can look for it in one day's bundles before
reading them all.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from pytest_insight.model.fields import to_utc
from pytest_insight.model.sessions import MAX_NAME_LENGTH, TestSession

__all__ = ["id_start", "imported_session_id", "names_itself", "new_session_id"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_PLUGIN_ID = re.compile(r"(?P<sut>.+)-(?P<start>\d{8}T\d{6}Z)-[0-9a-f]{12}")
_STAMP = "%Y%m%dT%H%M%SZ"


def _readable(sut_name: str) -> str:
    return _UNSAFE.sub("_", sut_name).strip("_")[:64] or "session"


def new_session_id(sut_name: str, start: datetime) -> str:
    """A new id for a session of ``sut_name`` that started at ``start``."""
    return f"{_readable(sut_name)}-{to_utc(start):{_STAMP}}-{uuid.uuid4().hex[:12]}"[:MAX_NAME_LENGTH]


def imported_session_id(sut_name: str, start: datetime, digest: str) -> str:
    """The id of a session read from another format: the plugin's form, with 12 hex of ``digest``.

    The same report imported twice gets the same id, so the second import skips it.
    """
    return f"{_readable(sut_name)}-{to_utc(start):{_STAMP}}-{digest[:12]}"[:MAX_NAME_LENGTH]


def id_start(session_id: str) -> datetime | None:
    """The start second an id of the plugin's form names, or None for any other id."""
    match = _PLUGIN_ID.fullmatch(session_id)
    if match is None:
        return None
    try:
        return datetime.strptime(match["start"], _STAMP).replace(tzinfo=UTC)
    except ValueError:  # digits in the right places, but no such date (month 13)
        return None


def names_itself(session: TestSession) -> bool:
    """Whether the session's id is of the plugin's form and names this session's SUT and start second."""
    match = _PLUGIN_ID.fullmatch(session.session_id)
    if match is None:
        return False
    return (
        match["sut"] == _readable(session.sut_name)
        and match["start"] == f"{session.session_start_time:{_STAMP}}"
    )
