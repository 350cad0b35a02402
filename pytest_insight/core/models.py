"""The data model: test sessions, test results, rerun groups and outcomes.

Datetimes are always timezone-aware UTC. A naive datetime, from code or from a
file written by pytest-insight 0.9, is taken as UTC; an aware one in another
zone is converted to UTC. ``to_dict`` and ``from_dict`` round-trip exactly.

In the serialised form a rerun group stores only its node id and final
outcome: its attempts are the session's ``test_results`` with that node id, in
order, so every attempt is stored once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pytest_insight.core.fields import (
    EARLIEST,
    LATEST,
    MAX_DURATION_SECONDS,
    MAX_NAME_LENGTH,
    Record,
    name_problem,
    to_utc,
)
from pytest_insight.errors import InvalidDataError

__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_DURATION_SECONDS",
    "MAX_NAME_LENGTH",
    "SCHEMA_VERSION",
    "RerunTestGroup",
    "TestOutcome",
    "TestResult",
    "TestSession",
    "to_utc",
]

SCHEMA_VERSION = 1
"""Version of the session dict layout written by this release."""


class TestOutcome(StrEnum):
    """The outcome of one test, as pytest reports it."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    XPASSED = "xpassed"
    RERUN = "rerun"
    ERROR = "error"

    @classmethod
    def from_str(cls, value: str | TestOutcome) -> TestOutcome:
        """Parse an outcome in any letter case.

        Raises:
            InvalidDataError: ``value`` names no outcome.
        """
        if isinstance(value, TestOutcome):
            return value
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        known = ", ".join(o.value for o in cls)
        raise InvalidDataError(f"unknown outcome {value!r} (expected one of: {known})")


@dataclass(slots=True)
class TestResult:
    """One report of one test: its outcome, timing and captured output."""

    __test__ = False

    nodeid: str
    outcome: TestOutcome
    start_time: datetime
    stop_time: datetime
    duration: float
    caplog: str = ""
    capstdout: str = ""
    capstderr: str = ""
    longreprtext: str = ""
    has_warning: bool = False

    def __post_init__(self) -> None:
        # decoding builds thousands a session, already normalised: check before calling
        if type(self.outcome) is not TestOutcome:
            self.outcome = TestOutcome.from_str(self.outcome)
        if self.start_time.tzinfo is not UTC:
            self.start_time = to_utc(self.start_time)
        if self.stop_time.tzinfo is not UTC:
            self.stop_time = to_utc(self.stop_time)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict of this result."""
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome.value,
            "start_time": _format_time(self.start_time),
            "stop_time": _format_time(self.stop_time),
            "duration": self.duration,
            "caplog": self.caplog,
            "capstdout": self.capstdout,
            "capstderr": self.capstderr,
            "longreprtext": self.longreprtext,
            "has_warning": self.has_warning,
        }

    @classmethod
    def from_dict(cls, data: object, *, path: str = "") -> TestResult:
        """Build a result from its dict, validating every field.

        Raises:
            InvalidDataError: a field is missing or has the wrong type or value;
                ``field`` names it, prefixed with ``path``.
        """
        written = _result_as_written(data)
        return written if written is not None else cls._validated(data, path)

    @classmethod
    def _validated(cls, data: object, path: str) -> TestResult:
        """:meth:`from_dict` for any input: accepts what it can, names the field it cannot."""
        record = Record(data, path)
        start = record.time("start_time")
        duration = record.duration("duration")
        stop = record.optional_time("stop_time") or start
        return cls(
            nodeid=record.text("nodeid", limit=None),
            outcome=_outcome(record, "outcome"),
            start_time=start,
            stop_time=stop,
            duration=duration,
            caplog=record.text("caplog", default=""),
            capstdout=record.text("capstdout", default=""),
            capstderr=record.text("capstderr", default=""),
            longreprtext=record.text("longreprtext", default=""),
            has_warning=record.flag("has_warning", default=False),
        )


_OUTCOMES = {outcome.value: outcome for outcome in TestOutcome}
_NUMBERS = (int, float)


def _time_as_written(value: object) -> datetime | None:
    """An ISO 8601 timestamp in UTC (or naive) and in range, as written; None for anything else."""
    if type(value) is not str:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    zone = parsed.tzinfo
    if zone is None:
        parsed = parsed.replace(tzinfo=UTC)
    elif zone is not UTC and parsed.utcoffset():  # "+00:00" parses to the UTC singleton: no call
        return None
    return parsed if EARLIEST <= parsed <= LATEST else None


def _result_as_written(data: object) -> TestResult | None:
    """A result dict exactly as this release writes one, checked inline; None for anything else.

    Sessions hold thousands of results, and checking each field through
    :class:`Record` cost 4 µs a result, most of a download's decoding. This
    accepts a subset of what :meth:`TestResult._validated` accepts and builds
    the same result; for anything else (another letter case, a UTC offset, a
    missing field, a wrong type) ``from_dict`` takes the validating path,
    which converts what it can and names the field it cannot.
    """
    if type(data) is not dict:
        return None
    get = data.get
    nodeid, outcome_text, warned = get("nodeid"), get("outcome"), get("has_warning")
    duration: Any = get("duration")  # a number once its type is checked below
    caplog, capstdout, capstderr = get("caplog"), get("capstdout"), get("capstderr")
    longreprtext = get("longreprtext")
    if (
        type(nodeid) is not str
        or type(outcome_text) is not str
        or type(duration) not in _NUMBERS  # not bool, which JSON's true would be
        or not 0 <= duration <= MAX_DURATION_SECONDS  # NaN fails too
        or (warned is not None and type(warned) is not bool)
        or (caplog is not None and type(caplog) is not str)
        or (capstdout is not None and type(capstdout) is not str)
        or (capstderr is not None and type(capstderr) is not str)
        or (longreprtext is not None and type(longreprtext) is not str)
    ):
        return None
    outcome = _OUTCOMES.get(outcome_text)
    start = _time_as_written(get("start_time"))
    stop_text = get("stop_time")
    stop = start if stop_text is None else _time_as_written(stop_text)
    if outcome is None or start is None or stop is None or (warned is None and "has_warning" in data):
        return None
    return TestResult(
        nodeid,
        outcome,
        start,
        stop,
        float(duration),
        caplog or "",
        capstdout or "",
        capstderr or "",
        longreprtext or "",
        warned or False,
    )


@dataclass(slots=True)
class RerunTestGroup:
    """All attempts of one test that pytest-rerunfailures ran more than once."""

    __test__ = False

    nodeid: str
    tests: list[TestResult] = field(default_factory=list)

    @property
    def final_outcome(self) -> TestOutcome | None:
        """The outcome of the last attempt, or None for an empty group."""
        return self.tests[-1].outcome if self.tests else None

    def add_test(self, result: TestResult) -> None:
        """Append the next attempt."""
        self.tests.append(result)


@dataclass(slots=True)
class TestSession:
    """One pytest run: where it ran, when, and every test report it produced."""

    __test__ = False

    sut_name: str
    session_id: str
    session_start_time: datetime
    session_stop_time: datetime
    session_duration: float = 0.0
    session_tags: dict[str, str] = field(default_factory=dict)
    testing_system: dict[str, Any] = field(default_factory=dict)
    test_results: list[TestResult] = field(default_factory=list)
    rerun_test_groups: list[RerunTestGroup] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("sut_name", "session_id"):
            value = getattr(self, name)
            problem = name_problem(value) if isinstance(value, str) else "expected a string"
            if problem:
                raise InvalidDataError(problem, field=name)
        self.session_start_time = to_utc(self.session_start_time)
        self.session_stop_time = to_utc(self.session_stop_time)

    def outcome_counts(self) -> dict[TestOutcome, int]:
        """Count the results by outcome (every attempt of a rerun counts once)."""
        counts: dict[TestOutcome, int] = {}
        for result in self.test_results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict of this session, with its schema version."""
        return {
            "schema_version": SCHEMA_VERSION,
            "sut_name": self.sut_name,
            "session_id": self.session_id,
            "session_start_time": _format_time(self.session_start_time),
            "session_stop_time": _format_time(self.session_stop_time),
            "session_duration": self.session_duration,
            "session_tags": dict(self.session_tags),
            "testing_system": dict(self.testing_system),
            "test_results": [result.to_dict() for result in self.test_results],
            "rerun_test_groups": [
                {"nodeid": group.nodeid, "final_outcome": _outcome_value(group.final_outcome)}
                for group in self.rerun_test_groups
            ],
        }

    @classmethod
    def from_dict(cls, data: object) -> TestSession:
        """Build a session from its dict, validating every field.

        Reads this release's layout and pytest-insight 0.9's (no schema
        version, naive timestamps, lowercase outcomes, rerun groups that
        carry their attempts inline).

        Raises:
            InvalidDataError: a field is missing or has the wrong type or
                value (``field`` names it), or the schema version is newer
                than this release reads.
        """
        record = Record(data, "")
        version = record.get("schema_version", 0)
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise InvalidDataError(f"not a schema version: {version!r}", field="schema_version")
        if version > SCHEMA_VERSION:
            raise InvalidDataError(
                f"schema version {version} is newer than this release reads ({SCHEMA_VERSION}); "
                "upgrade pytest-insight",
                field="schema_version",
            )
        results = []
        for index, item in enumerate(record.sequence("test_results")):
            written = _result_as_written(item)  # the path is formatted only for the validating path
            results.append(
                written if written is not None else TestResult._validated(item, f"test_results[{index}]")
            )
        start = record.time("session_start_time")
        stop = record.optional_time("session_stop_time") or start
        if record.get("session_duration") is None:
            duration = max((stop - start).total_seconds(), 0.0)
        else:
            duration = record.duration("session_duration")
        return cls(
            sut_name=record.name("sut_name"),
            session_id=record.name("session_id"),
            session_start_time=start,
            session_stop_time=stop,
            session_duration=duration,
            session_tags=record.string_map("session_tags"),
            testing_system=record.mapping("testing_system"),
            test_results=results,
            rerun_test_groups=_rerun_groups(record, results),
        )


def _rerun_groups(record: Record, results: list[TestResult]) -> list[RerunTestGroup]:
    items = record.sequence("rerun_test_groups")
    if not items:
        return []
    groups: list[RerunTestGroup] = []
    # the attempts of the few tests that were rerun, found in one pass over thousands of results
    named = (item.get("nodeid") for item in items if isinstance(item, Mapping))
    by_nodeid: dict[str, list[TestResult]] = {nodeid: [] for nodeid in named if isinstance(nodeid, str)}
    for result in results:
        attempts = by_nodeid.get(result.nodeid)
        if attempts is not None:
            attempts.append(result)
    for index, item in enumerate(items):
        group = Record(item, f"rerun_test_groups[{index}]")
        nodeid = group.text("nodeid", limit=None)
        if "tests" in group.data:  # 0.9 kept the attempts inline
            attempts = [
                TestResult.from_dict(test, path=f"{group.path}.tests[{position}]")
                for position, test in enumerate(group.sequence("tests"))
            ]
        else:
            attempts = list(by_nodeid.get(nodeid, ()))
            final = None if group.get("final_outcome") is None else _outcome(group, "final_outcome")
            if final is not None and attempts and final != attempts[-1].outcome:
                raise InvalidDataError(
                    "final outcome does not match the last attempt in test_results",
                    field=f"{group.path}.final_outcome",
                )
        groups.append(RerunTestGroup(nodeid=nodeid, tests=attempts))
    return groups


def _outcome(record: Record, name: str) -> TestOutcome:
    try:
        return TestOutcome.from_str(record.required(name))
    except InvalidDataError as exc:
        raise record.fail(name, exc.reason) from None


def _outcome_value(outcome: TestOutcome | None) -> str | None:
    return outcome.value if outcome is not None else None


def _format_time(value: datetime) -> str:
    # to_utc's first check, inlined: every result of every encoded session formats two times
    return value.isoformat() if value.tzinfo is UTC else to_utc(value).isoformat()
