"""The canonical session line, declared once as a msgspec schema that decodes, validates and encodes it.

A canonical line is one JSON object, UTF-8, keys in sorted order, no
spaces: what :func:`encode_line` writes and :func:`decode_line` reads. The
schema holds every rule a stored session obeys: the types, the outcome enum,
durations that are finite and between 0 and :data:`MAX_DURATION_SECONDS`,
names of at most :data:`MAX_NAME_LENGTH` characters without control
characters, timezone-aware timestamps. The rules msgspec cannot declare are
checked right after it (:func:`beyond_schema`): timestamps between 1970 and
2200, a ``testing_system`` nested at most ``MAX_NESTING`` levels, and each
rerun group's final outcome being its last attempt's (:func:`from_record`).

What is not canonical (pytest-insight 0.9 files, outcomes in another case,
naive timestamps, nulls for empty fields) is first made canonical by
:mod:`pytest_insight.model.lenient` and then validated by this same schema.
"""

from __future__ import annotations

import operator
from typing import Any, Literal

import msgspec

from pytest_insight.errors import InvalidDataError
from pytest_insight.model.fields import EARLIEST, LATEST, MAX_NESTING, nesting_depth
from pytest_insight.model.sessions import (
    Duration,
    Name,
    RerunTestGroup,
    TestOutcome,
    TestResult,
    TestSession,
    UtcTime,
)

__all__ = [
    "RerunRecord",
    "SessionRecord",
    "decode_line",
    "encode_line",
    "from_record",
    "beyond_schema",
    "to_record",
]


class RerunRecord(msgspec.Struct, frozen=True, gc=False):
    """A rerun group as written: its attempts are the session's results with its node id."""

    nodeid: str
    final_outcome: TestOutcome | None


class SessionRecord(msgspec.Struct, kw_only=True, gc=False):
    """A session as written.

    The fields are in the order they are checked, so that of two faults the
    one reported is the one pytest-insight always reported; lines sort the keys.
    """

    test_results: list[TestResult] = []
    session_start_time: UtcTime
    session_stop_time: UtcTime
    session_duration: Duration
    sut_name: Name
    session_id: Name
    session_tags: dict[str, str] = {}
    testing_system: dict[str, Any] = {}
    rerun_test_groups: list[RerunRecord] = []
    schema_version: Literal[1] = 1  # SCHEMA_VERSION: the one version this release writes and reads directly


_FIRST_YEAR, _LAST_YEAR = EARLIEST.year, LATEST.year - 1
_CONTAINERS = (dict, list)
_START_YEAR = operator.attrgetter("start_time.year")
_STOP_YEAR = operator.attrgetter("stop_time.year")
_DECODER = msgspec.json.Decoder(SessionRecord)
_ENCODER = msgspec.json.Encoder(order="sorted")


def decode_line(line: bytes) -> TestSession:
    """Decode and validate one canonical line.

    Raises:
        msgspec.DecodeError: the line is not JSON, not UTF-8, or not canonical
            (msgspec's ValidationError is one); :mod:`~pytest_insight.model.lenient`
            then reads it, or words the error.
        InvalidDataError: a rerun group's final outcome is not its last attempt's.
    """
    try:
        record = _DECODER.decode(line)
    except OverflowError:  # a time of year 1 or 9999 shifted past the calendar by its offset
        raise msgspec.ValidationError("a timestamp out of range") from None
    if beyond_schema(record) is not None:
        raise msgspec.ValidationError("valid but for a rule msgspec cannot declare")
    return from_record(record)


def beyond_schema(record: SessionRecord) -> str | None:
    """The path of the first field that breaks a rule the msgspec types cannot declare, or None.

    The rules: timestamps from 1970 to 2200, and ``testing_system`` nested at
    most :data:`~pytest_insight.model.fields.MAX_NESTING` levels (a type for
    that makes msgspec's type compilation exponential in the depth).
    """
    for name in ("session_start_time", "session_stop_time"):
        if not EARLIEST <= getattr(record, name) <= LATEST:
            return name
    results = record.test_results
    # the years first, in C loops: decoding made every result time UTC, and thousands of them pass here
    years = set(map(_START_YEAR, results))
    years.update(map(_STOP_YEAR, results))
    if years and (min(years) < _FIRST_YEAR or max(years) > _LAST_YEAR):
        for index, result in enumerate(results):
            for name in ("start_time", "stop_time"):
                if not EARLIEST <= getattr(result, name) <= LATEST:
                    return f"test_results[{index}].{name}"
    system = record.testing_system
    if any(type(value) in _CONTAINERS for value in system.values()) and nesting_depth(system) > MAX_NESTING:
        return "testing_system"
    return None


def from_record(record: SessionRecord, inline: dict[int, list[TestResult]] | None = None) -> TestSession:
    """The session a valid record describes.

    Args:
        record: what the schema decoded.
        inline: attempts of rerun groups that carried them inline (pytest-insight 0.9), by group index.

    Raises:
        InvalidDataError: a rerun group's final outcome is not its last attempt's.
    """
    results = record.test_results
    groups: list[RerunTestGroup] = []
    if record.rerun_test_groups:
        # the attempts of the few tests that were rerun, found in one pass over thousands of results
        by_nodeid: dict[str, list[TestResult]] = {group.nodeid: [] for group in record.rerun_test_groups}
        for result in results:
            attempts = by_nodeid.get(result.nodeid)
            if attempts is not None:
                attempts.append(result)
        for index, group in enumerate(record.rerun_test_groups):
            if inline is not None and index in inline:
                groups.append(RerunTestGroup(group.nodeid, inline[index]))
                continue
            found = list(by_nodeid[group.nodeid])
            final = group.final_outcome
            if final is not None and found and final is not found[-1].outcome:
                raise InvalidDataError(
                    "final outcome does not match the last attempt in test_results",
                    field=f"rerun_test_groups[{index}].final_outcome",
                )
            groups.append(RerunTestGroup(group.nodeid, found))
    return TestSession(
        record.sut_name,
        record.session_id,
        record.session_start_time,
        record.session_stop_time,
        record.session_duration,
        record.session_tags,
        record.testing_system,
        results,
        groups,
    )


def to_record(session: TestSession, *, session_id: str | None = None) -> SessionRecord:
    """The record of ``session`` (``session_id`` in place of its own, when given)."""
    return SessionRecord(
        sut_name=session.sut_name,
        session_id=session.session_id if session_id is None else session_id,
        session_start_time=session.session_start_time,
        session_stop_time=session.session_stop_time,
        session_duration=session.session_duration,
        session_tags=session.session_tags,
        testing_system=session.testing_system,
        test_results=session.test_results,
        rerun_test_groups=[
            RerunRecord(group.nodeid, group.final_outcome) for group in session.rerun_test_groups
        ],
    )


def encode_line(session: TestSession, *, session_id: str | None = None) -> bytes:
    """The canonical line of ``session`` (without the newline).

    Raises:
        InvalidDataError: the session holds what no canonical line can: a
            duration that is not a finite number, text that is not Unicode
            (a lone surrogate), or a value JSON has no form for.
    """
    problem = _unwritable(session)
    if problem is not None:
        raise InvalidDataError(problem, source=f"session {session.session_id!r}")
    try:
        return _ENCODER.encode(to_record(session, session_id=session_id))
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise InvalidDataError(f"cannot encode: {exc}", source=f"session {session.session_id!r}") from exc


def _unwritable(session: TestSession) -> str | None:
    """Why ``session`` has no canonical line, for the one thing msgspec writes rather than refuses.

    msgspec writes NaN and infinity as ``null``: the line would then fail its
    own schema, so such a duration is refused here instead.
    """
    total = session.session_duration
    for result in session.test_results:
        total += result.duration  # NaN or infinity anywhere makes the sum so
    if total - total != 0:
        return "Out of range float values are not JSON compliant (a duration is NaN or infinite)"
    return None
