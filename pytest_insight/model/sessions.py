"""The data model: test sessions, test results, rerun groups and outcomes.

Datetimes are always timezone-aware UTC. A naive datetime, from code or from a
file written by pytest-insight 0.9, is taken as UTC; an aware one in another
zone is converted to UTC. ``to_dict`` and ``from_dict`` round-trip exactly.

In the serialised form a rerun group stores only its node id and final
outcome: its attempts are the session's ``test_results`` with that node id, in
order, so every attempt is stored once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import msgspec

from pytest_insight.errors import InvalidDataError
from pytest_insight.model.fields import (
    EARLIEST,
    LATEST,
    MAX_DURATION_SECONDS,
    MAX_NAME_LENGTH,
    name_problem,
    to_utc,
)

__all__ = [
    "EARLIEST",
    "Duration",
    "LATEST",
    "MAX_DURATION_SECONDS",
    "MAX_NAME_LENGTH",
    "SCHEMA_VERSION",
    "Name",
    "RerunTestGroup",
    "TestOutcome",
    "TestResult",
    "TestSession",
    "UtcTime",
    "to_utc",
]

SCHEMA_VERSION = 1
"""Version of the session dict layout written by this release."""

# The constraints of the canonical schema (pytest_insight.model.schema), declared on the fields.
Duration = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_DURATION_SECONDS)]
"""Seconds: finite, from 0 to :data:`MAX_DURATION_SECONDS` (NaN fails both bounds)."""

UtcTime = Annotated[datetime, msgspec.Meta(tz=True)]
"""A timezone-aware timestamp; the model converts it to UTC."""

Name = Annotated[
    str,
    msgspec.Meta(
        max_length=MAX_NAME_LENGTH,
        # not blank; no control character or lone surrogate (linear: no nested repetition)
        pattern=r"\A(?!\s*\Z)[^\x00-\x1f\x7f\ud800-\udfff]*\Z",
    ),
]
"""A SUT name or session id: see :func:`~pytest_insight.model.fields.name_problem`."""


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


_FAILING = frozenset({TestOutcome.FAILED, TestOutcome.ERROR})


class TestResult(msgspec.Struct, gc=False, omit_defaults=True):
    """One report of one test: its outcome, timing and captured output.

    A msgspec Struct, so that decoding builds it directly. Never tracked by
    the garbage collector (``gc=False``): it holds only strings, times,
    numbers and an outcome, so it cannot be part of a reference cycle, and a
    store's hundreds of thousands of results would otherwise make every full
    collection walk them all.

    A subtest's result has its test's ``nodeid`` and its label in
    ``subtest``; ``worker`` names the pytest-xdist worker that ran the test
    (``gw0``), and is empty for a run without xdist.
    """

    __test__ = False

    nodeid: str
    outcome: TestOutcome
    start_time: UtcTime
    stop_time: UtcTime
    duration: Duration
    caplog: str = ""
    capstdout: str = ""
    capstderr: str = ""
    longreprtext: str = ""
    has_warning: bool = False
    setup_duration: Duration = 0.0
    teardown_duration: Duration = 0.0
    subtest: str = ""
    worker: str = ""

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
            # fields a later release added: written only when set, so older dicts read back equal
            **({"setup_duration": self.setup_duration} if self.setup_duration else {}),
            **({"teardown_duration": self.teardown_duration} if self.teardown_duration else {}),
            **({"subtest": self.subtest} if self.subtest else {}),
            **({"worker": self.worker} if self.worker else {}),
        }

    @property
    def total_duration(self) -> float:
        """Setup, call and teardown together: what the test cost the run."""
        return self.setup_duration + self.duration + self.teardown_duration

    @property
    def test_id(self) -> str:
        """The node id, with the subtest's label for a subtest (``test_x.py::test_a [part] (i=2)``)."""
        return f"{self.nodeid} {self.subtest}" if self.subtest else self.nodeid

    @classmethod
    def from_dict(cls, data: object, *, path: str = "") -> TestResult:
        """Build a result from its dict, validating every field (as :meth:`TestSession.from_dict` does).

        Raises:
            InvalidDataError: a field is missing or has the wrong type or value;
                ``field`` names it, prefixed with ``path``.
        """
        from pytest_insight.model.lenient import read_result  # the reader is built on this model

        return read_result(data, path)


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
        """Count the results by outcome as pytest's summary line does.

        Every attempt of a rerun counts once. A subtest counts here only when
        it failed (pytest counts ``SUBFAILED`` among the failed); its other
        outcomes are :meth:`subtest_counts`.
        """
        counts: dict[TestOutcome, int] = {}
        for result in self.test_results:
            if not result.subtest or result.outcome in _FAILING:
                counts[result.outcome] = counts.get(result.outcome, 0) + 1
        return counts

    def subtest_counts(self) -> dict[TestOutcome, int]:
        """Subtests that did not fail, by outcome: pytest's ``N subtests passed`` (and skipped)."""
        counts: dict[TestOutcome, int] = {}
        for result in self.test_results:
            if result.subtest and result.outcome not in _FAILING:
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
        from pytest_insight.model.lenient import read_session  # the reader is built on this model

        return read_session(data)


def _outcome_value(outcome: TestOutcome | None) -> str | None:
    return outcome.value if outcome is not None else None


def _format_time(value: datetime) -> str:
    # to_utc's first check, inlined: every result of every encoded session formats two times
    return value.isoformat() if value.tzinfo is UTC else to_utc(value).isoformat()
