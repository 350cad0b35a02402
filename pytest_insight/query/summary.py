"""What a set of sessions says: outcome counts, slow, failing and flaky tests.

Every function takes any iterable of sessions (a list, a
:class:`QueryResult`). Statistics are kept per node id across sessions:

- a test *ran* in a session when the session has at least one result for it;
- it *failed* in that session when one of those results is ``failed`` or
  ``error`` (a failed setup or teardown counts), and *passed* when one is
  ``passed`` and none failed;
- it is *flaky* by the rule of ``insight flaky``
  (:func:`pytest_insight.analysis.find_flaky`): judged on at least
  ``min_runs`` passing or failing runs, it passed on a rerun after failing,
  or both passed and failed on one commit, or flipped back and forth. A test
  that broke and stayed broken (a regression), or was fixed, is not flaky;
- its duration in a session is the sum of its results' durations, setup and
  teardown included (reruns too), and tests are ranked as slow by their mean
  duration per run; the setup and teardown shares are kept apart as well;
- a subtest is a test of its own, named by its node id and label
  (:attr:`~pytest_insight.model.sessions.TestResult.test_id`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import overload

from pytest_insight.analysis.flaky import flaky_test_ids
from pytest_insight.model.sessions import TestOutcome, TestResult, TestSession

__all__ = [
    "QueryResult",
    "Summary",
    "TestStats",
    "failing_tests",
    "flaky_tests",
    "outcome_counts",
    "slowest_tests",
    "subtest_counts",
    "summarize",
    "test_stats",
]

_FAILING = frozenset({TestOutcome.FAILED, TestOutcome.ERROR})


@dataclass(slots=True)
class TestStats:
    """One node id's record across sessions.

    ``is_flaky`` says whether ``insight flaky``'s rule calls it flaky (see the
    module's documentation); :func:`test_stats` sets it.
    """

    __test__ = False

    nodeid: str
    runs: int = 0
    passed_runs: int = 0
    failed_runs: int = 0
    reruns: int = 0
    recovered_runs: int = 0
    outcomes: Counter[TestOutcome] = field(default_factory=Counter)
    total_duration: float = 0.0
    max_duration: float = 0.0
    total_setup: float = 0.0
    total_teardown: float = 0.0
    last_failure: datetime | None = None
    last_failed_session: str = ""
    last_error: str = ""
    is_flaky: bool = False

    @property
    def mean_setup(self) -> float:
        """Mean seconds of setup per session it ran in (part of :attr:`mean_duration`)."""
        return self.total_setup / self.runs if self.runs else 0.0

    @property
    def mean_teardown(self) -> float:
        """Mean seconds of teardown per session it ran in (part of :attr:`mean_duration`)."""
        return self.total_teardown / self.runs if self.runs else 0.0

    @property
    def mean_duration(self) -> float:
        """Mean seconds per session it ran in."""
        return self.total_duration / self.runs if self.runs else 0.0


def outcome_counts(sessions: Iterable[TestSession]) -> dict[TestOutcome, int]:
    """Count the results by outcome as pytest does (see :meth:`TestSession.outcome_counts`)."""
    counts: Counter[TestOutcome] = Counter()
    for session in sessions:
        counts.update(session.outcome_counts())
    return dict(counts)


def subtest_counts(sessions: Iterable[TestSession]) -> dict[TestOutcome, int]:
    """The subtests that did not fail, by outcome (see :meth:`TestSession.subtest_counts`)."""
    counts: Counter[TestOutcome] = Counter()
    for session in sessions:
        counts.update(session.subtest_counts())
    return dict(counts)


# not a test: a library function whose name begins with test_ (PT028 takes it for one)
def test_stats(sessions: Iterable[TestSession], *, min_runs: int = 5) -> dict[str, TestStats]:  # noqa: PT028
    """Return every node id's statistics, by node id.

    Args:
        sessions: the sessions.
        min_runs: the fewest passing or failing runs a test needs to be
            judged flaky (``insight flaky --min-runs``).
    """
    selected = sessions if isinstance(sessions, Sequence) else list(sessions)
    stats = _gathered(selected)
    # only a test that failed or was rerun can be flaky: the verdict reads those tests' results alone
    candidates = {key for key, entry in stats.items() if entry.failed_runs or entry.reruns}
    if candidates:
        for key in flaky_test_ids(selected, min_runs=min_runs, among=candidates):
            stats[key].is_flaky = True
    return stats


def _gathered(sessions: Iterable[TestSession]) -> dict[str, TestStats]:
    """Every test's statistics but :attr:`TestStats.is_flaky`."""
    stats: dict[str, TestStats] = {}
    for session in sessions:
        start = session.session_start_time
        run = (session.session_id, start)
        # most node ids have one result a session: a list only for the others (reruns, teardown errors)
        grouped: dict[str, TestResult | list[TestResult]] = {}
        for result in session.test_results:
            key = result.test_id
            earlier = grouped.get(key)
            if earlier is None:
                grouped[key] = result
            elif isinstance(earlier, list):
                earlier.append(result)
            else:
                grouped[key] = [earlier, result]
        for nodeid, results in grouped.items():
            entry = stats.get(nodeid)
            if entry is None:
                entry = stats[nodeid] = TestStats(nodeid)
            if isinstance(results, list):
                _add_run(entry, run, results)
            else:
                _add_single_run(entry, run, results)
    return stats


def _add_single_run(entry: TestStats, run: tuple[str, datetime], result: TestResult) -> None:
    """:func:`_add_run` for one result, without building lists: thousands of calls a session."""
    outcome = result.outcome
    duration = result.total_duration
    entry.total_setup += result.setup_duration
    entry.total_teardown += result.teardown_duration
    entry.runs += 1
    entry.outcomes[outcome] += 1
    entry.total_duration += duration
    if duration > entry.max_duration:
        entry.max_duration = duration
    if outcome is TestOutcome.RERUN:
        entry.reruns += 1
    elif outcome in _FAILING:
        _add_failure(entry, run, result)
    elif outcome is TestOutcome.PASSED:
        entry.passed_runs += 1


def _add_run(entry: TestStats, run: tuple[str, datetime], results: list[TestResult]) -> None:
    outcomes = [result.outcome for result in results]
    duration = sum(result.total_duration for result in results)
    entry.total_setup += sum(result.setup_duration for result in results)
    entry.total_teardown += sum(result.teardown_duration for result in results)
    entry.runs += 1
    entry.outcomes.update(outcomes)
    entry.reruns += outcomes.count(TestOutcome.RERUN)
    if TestOutcome.RERUN in outcomes and outcomes[-1] is TestOutcome.PASSED:
        entry.recovered_runs += 1
    entry.total_duration += duration
    entry.max_duration = max(entry.max_duration, duration)
    failures = [result for result in results if result.outcome in _FAILING]
    if failures:
        _add_failure(entry, run, failures[-1])
    elif TestOutcome.PASSED in outcomes:
        entry.passed_runs += 1


def _add_failure(entry: TestStats, run: tuple[str, datetime], last: TestResult) -> None:
    """Count a failed run; the latest session's id and failure text are the ones kept."""
    entry.failed_runs += 1
    session_id, start = run
    if entry.last_failure is None or start >= entry.last_failure:
        entry.last_failure = start
        entry.last_failed_session = session_id
        entry.last_error = last.longreprtext


def slowest_tests(sessions: Iterable[TestSession], n: int = 10) -> list[TestStats]:
    """The ``n`` tests with the highest mean duration, slowest first."""
    return _slowest(test_stats(sessions).values(), n)


def failing_tests(sessions: Iterable[TestSession]) -> list[TestStats]:
    """Tests that failed (or errored) in at least one session, most failures first."""
    return _failing(test_stats(sessions).values())


def flaky_tests(sessions: Iterable[TestSession], *, min_runs: int = 5) -> list[TestStats]:
    """The tests ``insight flaky`` lists (see the module's documentation), most unstable first."""
    return _flaky(test_stats(sessions, min_runs=min_runs).values())


def _slowest(stats: Iterable[TestStats], n: int) -> list[TestStats]:
    return sorted(stats, key=lambda s: (-s.mean_duration, s.nodeid))[: max(n, 0)]


def _failing(stats: Iterable[TestStats]) -> list[TestStats]:
    return sorted((entry for entry in stats if entry.failed_runs), key=lambda s: (-s.failed_runs, s.nodeid))


def _flaky(stats: Iterable[TestStats]) -> list[TestStats]:
    unstable = (entry for entry in stats if entry.is_flaky)
    return sorted(unstable, key=lambda s: (-(s.failed_runs + s.reruns), s.nodeid))


@dataclass(frozen=True, slots=True)
class Summary:
    """What :func:`summarize` found: the outcome counts and the three rankings, each cut to ``top``."""

    sessions: int
    outcomes: dict[TestOutcome, int]
    failing: list[TestStats]
    slowest: list[TestStats]
    flaky: list[TestStats]


def summarize(sessions: Iterable[TestSession], top: int = 10, *, min_runs: int = 5) -> Summary:
    """Outcome counts and the ``top`` failing, slowest and flaky tests of ``sessions``.

    The same as calling :func:`outcome_counts`, :func:`failing_tests`,
    :func:`slowest_tests` and :func:`flaky_tests` (with ``min_runs``), but the
    statistics behind the three rankings are gathered once instead of three times.
    """
    selected = sessions if isinstance(sessions, Sequence) else list(sessions)
    stats = test_stats(selected, min_runs=min_runs).values()
    return Summary(
        sessions=len(selected),
        outcomes=outcome_counts(selected),
        failing=_failing(stats)[: max(top, 0)],
        slowest=_slowest(stats, top),
        flaky=_flaky(stats)[: max(top, 0)],
    )


Check = Callable[[TestResult], bool]


class QueryResult(Sequence[TestSession]):
    """The sessions a query selected, oldest first, each with its full context.

    Behaves as a read-only list (``len``, indexing, slicing, iteration,
    truth value) and can be passed wherever a list of sessions is taken, for
    example to ``storage.clear_sessions()`` or ``storage.export_sessions(sessions=...)``.
    """

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, sessions: Iterable[TestSession], *, test_groups: tuple[tuple[Check, ...], ...] = ()):
        self._sessions = list(sessions)
        self._test_groups = test_groups

    @overload
    def __getitem__(self, index: int) -> TestSession: ...

    @overload
    def __getitem__(self, index: slice) -> QueryResult: ...

    def __getitem__(self, index: int | slice) -> TestSession | QueryResult:
        if isinstance(index, slice):
            return QueryResult(self._sessions[index], test_groups=self._test_groups)
        return self._sessions[index]

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[TestSession]:
        return iter(self._sessions)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, QueryResult | list | tuple):
            return self._sessions == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"QueryResult({len(self._sessions)} sessions)"

    @property
    def sessions(self) -> list[TestSession]:
        """The sessions as a new list."""
        return list(self._sessions)

    @property
    def session_ids(self) -> list[str]:
        """The ids of the sessions, in order."""
        return [session.session_id for session in self._sessions]

    def matching_tests(self) -> list[tuple[TestSession, TestResult]]:
        """The (session, result) pairs that met one of the query's test filters.

        Without test filters, every result of every session.
        """
        return [
            (session, result)
            for session in self._sessions
            for result in session.test_results
            if not self._test_groups
            or any(all(check(result) for check in group) for group in self._test_groups)
        ]

    def outcome_counts(self) -> dict[TestOutcome, int]:
        """See :func:`outcome_counts`."""
        return outcome_counts(self._sessions)

    def test_stats(self, *, min_runs: int = 5) -> dict[str, TestStats]:
        """See :func:`test_stats`."""
        return test_stats(self._sessions, min_runs=min_runs)

    def slowest_tests(self, n: int = 10) -> list[TestStats]:
        """See :func:`slowest_tests`."""
        return slowest_tests(self._sessions, n)

    def failing_tests(self) -> list[TestStats]:
        """See :func:`failing_tests`."""
        return failing_tests(self._sessions)

    def flaky_tests(self, *, min_runs: int = 5) -> list[TestStats]:
        """See :func:`flaky_tests`."""
        return flaky_tests(self._sessions, min_runs=min_runs)

    def summarize(self, top: int = 10, *, min_runs: int = 5) -> Summary:
        """See :func:`summarize`."""
        return summarize(self._sessions, top, min_runs=min_runs)
