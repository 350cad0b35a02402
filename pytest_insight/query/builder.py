"""The Query builder: select stored sessions by SUT, time, tags and tests.

::

    query = Query(storage)
    failing = query.filter_by_test().with_outcome("failed").apply().execute()
    old = query.for_sut("legacy-service").before_date("2025-01-01").execute()

A query is immutable: every filter returns a new :class:`Query`, so one
``query`` can start many independent questions. ``execute()`` returns whole
sessions: a test filter selects the sessions that have at least one test
matching it, and every selected session keeps all its test results, rerun
groups, tags and ``testing_system`` (``QueryResult.matching_tests()`` lists
the tests that matched).

Times compare in UTC whatever the machine's time zone: a naive datetime or
ISO string is taken as UTC, a ``date`` or date-only string means midnight UTC
of that day. The SUT and time window are passed down to the backend as a
:class:`~pytest_insight.storage.base.Scope`, so S3 reads only the matching
partitions.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from pytest_insight.errors import ConfigurationError, InvalidDataError
from pytest_insight.model.sessions import TestOutcome, TestResult, TestSession, to_utc
from pytest_insight.query.summary import QueryResult
from pytest_insight.storage.scope import Scope

if TYPE_CHECKING:
    from pytest_insight.core.storage import Storage

__all__ = ["Query", "QueryResult", "TestFilter", "TimeLike"]

TimeLike = datetime | date | str
"""A point in time: an aware or naive (UTC) datetime, a date, or an ISO 8601 string."""

SessionCheck = Callable[[TestSession], bool]
TestCheck = Callable[[TestResult], bool]


@dataclass(frozen=True, slots=True)
class _Criteria:
    sut_names: frozenset[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    session_checks: tuple[SessionCheck, ...] = ()
    test_groups: tuple[tuple[TestCheck, ...], ...] = ()


class Query:
    """Builds a question about stored sessions; ``execute()`` answers it."""

    def __init__(self, storage: Storage | str | None = None) -> None:
        """Query ``storage``.

        Args:
            storage: a storage object (anything with ``load_sessions``), a
                profile name, or None for :func:`get_storage_instance`'s choice.

        Raises:
            UnknownProfileError: ``storage`` names no profile.
        """
        if storage is None or isinstance(storage, str):
            from pytest_insight.core.storage import get_storage_instance

            storage = get_storage_instance(storage)
        self.storage = storage
        self._criteria = _Criteria()

    def _with(self, **changes: object) -> Query:
        query = Query.__new__(Query)
        query.storage = self.storage
        query._criteria = replace(self._criteria, **changes)  # type: ignore[arg-type]
        return query

    def _check(self, check: SessionCheck) -> Query:
        return self._with(session_checks=(*self._criteria.session_checks, check))

    # -- session filters -------------------------------------------------

    def for_sut(self, sut_name: str) -> Query:
        """Only sessions of this SUT (calling it twice with two names selects nothing)."""
        current = self._criteria.sut_names
        names = frozenset({sut_name}) if current is None else current & {sut_name}
        return self._with(sut_names=names)

    def in_last_days(self, days: float) -> Query:
        """Only sessions that started in the last ``days`` days (counted from this call).

        Raises:
            ConfigurationError: ``days`` is negative.
        """
        return self._since_ago(timedelta(days=_positive(days, "days")))

    def in_last_hours(self, hours: float) -> Query:
        """Only sessions that started in the last ``hours`` hours.

        Raises:
            ConfigurationError: ``hours`` is negative.
        """
        return self._since_ago(timedelta(hours=_positive(hours, "hours")))

    def in_last_minutes(self, minutes: float) -> Query:
        """Only sessions that started in the last ``minutes`` minutes.

        Raises:
            ConfigurationError: ``minutes`` is negative.
        """
        return self._since_ago(timedelta(minutes=_positive(minutes, "minutes")))

    def _since_ago(self, age: timedelta) -> Query:
        return self.after_date(datetime.now(UTC) - age)

    def before_date(self, moment: TimeLike) -> Query:
        """Only sessions that started strictly before ``moment``.

        Raises:
            ConfigurationError: ``moment`` is not a datetime, date or ISO string.
        """
        until = parse_time(moment)
        current = self._criteria.until
        return self._with(until=until if current is None else min(current, until))

    def after_date(self, moment: TimeLike) -> Query:
        """Only sessions that started at or after ``moment``.

        Raises:
            ConfigurationError: ``moment`` is not a datetime, date or ISO string.
        """
        since = parse_time(moment)
        current = self._criteria.since
        return self._with(since=since if current is None else max(current, since))

    def date_range(self, start: TimeLike, end: TimeLike) -> Query:
        """Only sessions that started between ``start`` and ``end``, both included.

        An ``end`` given as a date (or a date-only string) includes that whole day.

        Raises:
            ConfigurationError: a bound cannot be parsed, or ``end`` is before ``start``.
        """
        since = parse_time(start)
        until = _end_of(end)
        if until <= since:
            raise ConfigurationError(f"date_range: end {end!s} is before start {start!s}")
        return self.after_date(since).before_date(until)

    def with_session_tag(self, key: str, value: str | None = None) -> Query:
        """Only sessions tagged ``key`` (with this ``value``, when given)."""
        if value is None:
            return self._check(lambda session: key in session.session_tags)
        return self._check(lambda session: session.session_tags.get(key) == value)

    def with_session_id_pattern(self, pattern: str) -> Query:
        """Only sessions whose id matches the glob ``pattern`` (``*``, ``?``, ``[...]``; case-sensitive)."""
        return self._check(lambda session: fnmatch.fnmatchcase(session.session_id, pattern))

    def with_reruns(self) -> Query:
        """Only sessions in which pytest-rerunfailures reran a test."""
        return self._check(
            lambda session: (
                bool(session.rerun_test_groups)
                or any(result.outcome is TestOutcome.RERUN for result in session.test_results)
            )
        )

    def with_warning(self) -> Query:
        """Only sessions in which a test emitted a warning."""
        return self._check(lambda session: any(result.has_warning for result in session.test_results))

    # -- test filters ----------------------------------------------------

    def filter_by_test(self) -> TestFilter:
        """Start a test filter; finish it with :meth:`TestFilter.apply`."""
        return TestFilter(self)

    # -- running -----------------------------------------------------------

    @property
    def scope(self) -> Scope:
        """The SUT and time window this query passes down to the storage."""
        names = self._criteria.sut_names
        sut = next(iter(names)) if names is not None and len(names) == 1 else None
        return Scope(sut_name=sut, since=self._criteria.since, until=self._criteria.until)

    def execute(self) -> QueryResult:
        """Run the query: the matching sessions, oldest first, with their full context.

        Raises:
            CorruptStoreError: a stored file cannot be parsed.
            StorageError: the storage cannot be read.
        """
        criteria = self._criteria
        if criteria.sut_names is not None and not criteria.sut_names:
            return QueryResult([], test_groups=criteria.test_groups)
        scope = self.scope
        selected = [
            session
            for session in self.storage.load_sessions(scope)
            if scope.admits(session)
            and all(check(session) for check in criteria.session_checks)
            and all(_any_test(session, group) for group in criteria.test_groups)
        ]
        return QueryResult(selected, test_groups=criteria.test_groups)


class TestFilter:
    """Conditions on one test; a session matches when one of its tests meets all of them."""

    __test__ = False

    def __init__(self, query: Query) -> None:
        self._query = query
        self._checks: list[TestCheck] = []

    def _add(self, check: TestCheck) -> TestFilter:
        self._checks.append(check)
        return self

    def with_outcome(self, *outcomes: str | TestOutcome) -> TestFilter:
        """Tests with this outcome (or any of these), given in any letter case.

        Raises:
            ConfigurationError: an outcome is unknown, or none is given.
        """
        if not outcomes:
            raise ConfigurationError("with_outcome: give at least one outcome")
        try:
            wanted = frozenset(TestOutcome.from_str(outcome) for outcome in outcomes)
        except InvalidDataError as exc:
            raise ConfigurationError(f"with_outcome: {exc.reason}") from exc
        return self._add(lambda result: result.outcome in wanted)

    def with_nodeid_containing(self, text: str) -> TestFilter:
        """Tests whose node id contains ``text`` (case-sensitive)."""
        return self._add(lambda result: text in result.nodeid)

    def with_nodeid_matching(self, pattern: str | re.Pattern[str], *, regex: bool = False) -> TestFilter:
        """Tests whose node id matches ``pattern``.

        A string is a glob matched against the whole node id, unless
        ``regex`` is True; a compiled pattern or ``regex=True`` is a regular
        expression searched anywhere in the node id.

        Raises:
            ConfigurationError: ``pattern`` is not a valid regular expression.
        """
        if isinstance(pattern, re.Pattern) or regex:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ConfigurationError(f"with_nodeid_matching: bad regex {pattern!r}: {exc}") from exc
            return self._add(lambda result: compiled.search(result.nodeid) is not None)
        return self._add(lambda result: fnmatch.fnmatchcase(result.nodeid, pattern))

    def with_duration_between(self, min_seconds: float, max_seconds: float) -> TestFilter:
        """Tests that took between ``min_seconds`` and ``max_seconds``, both included.

        Raises:
            ConfigurationError: a bound is negative or ``max_seconds < min_seconds``.
        """
        low, high = _positive(min_seconds, "min_seconds"), _positive(max_seconds, "max_seconds")
        if high < low:
            raise ConfigurationError(f"with_duration_between: max {high} is below min {low}")
        return self._add(lambda result: low <= result.duration <= high)

    def with_error_containing(self, text: str) -> TestFilter:
        """Tests whose failure report (``longreprtext``) contains ``text``."""
        return self._add(lambda result: text in result.longreprtext)

    def with_output_containing(self, text: str) -> TestFilter:
        """Tests whose captured stdout, stderr or log contains ``text``."""
        return self._add(
            lambda result: text in result.capstdout or text in result.capstderr or text in result.caplog
        )

    def apply(self) -> Query:
        """Return the query narrowed to sessions with a test meeting every condition here.

        A filter with no conditions leaves the query unchanged.
        """
        if not self._checks:
            return self._query
        groups = (*self._query._criteria.test_groups, tuple(self._checks))
        return self._query._with(test_groups=groups)


def parse_time(moment: TimeLike) -> datetime:
    """Return ``moment`` as an aware UTC datetime.

    Raises:
        ConfigurationError: ``moment`` is not a datetime, date or ISO 8601 string.
    """
    if isinstance(moment, datetime):
        return to_utc(moment)
    if isinstance(moment, date):
        return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if isinstance(moment, str):
        try:
            return to_utc(datetime.fromisoformat(moment.strip()))
        except ValueError:
            raise ConfigurationError(f"not an ISO 8601 date or time: {moment!r}") from None
    raise ConfigurationError(f"expected a datetime, date or ISO 8601 string, got {type(moment).__name__}")


def _end_of(moment: TimeLike) -> datetime:
    if isinstance(moment, str) and _is_date_only(moment):
        return parse_time(moment) + timedelta(days=1)
    if isinstance(moment, date) and not isinstance(moment, datetime):
        return parse_time(moment) + timedelta(days=1)
    return parse_time(moment) + timedelta(microseconds=1)


def _is_date_only(text: str) -> bool:
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigurationError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def _any_test(session: TestSession, checks: tuple[TestCheck, ...]) -> bool:
    return any(all(check(result) for check in checks) for result in session.test_results)
