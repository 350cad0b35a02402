"""Flaky tests, each with its evidence, a confidence and where it fails.

A test is flaky when :func:`~pytest_insight.analysis.verdict.judge` says so
and it ran at least ``min_runs`` times. Its *flip rate* is the share of
consecutive runs whose outcome differs (Google's measure); the confidence is
the Wilson score lower bound (95%) of its failure rate, so a test seen twice
ranks below one seen a hundred times at the same rate.

Where it fails: a context value (host, Python version, CI, branch, any tag)
that all its failures share, and the pytest-xdist worker that ran all of
them. A session's context is fixed, but xdist hands a test to whichever
worker is free, so two failures on one of two workers happen by chance half
the time: a worker is named only when chance would put every failure on it
less than one time in twenty.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter

from pytest_insight.analysis.history import FAIL, PASS, SKIP, History, TestHistory
from pytest_insight.analysis.verdict import Verdict, judge
from pytest_insight.model.sessions import TestSession

__all__ = [
    "Correlation",
    "FlakyTest",
    "correlate",
    "find_flaky",
    "flaky_test_ids",
    "flaky_verdict",
    "outcome_strip",
    "wilson_lower_bound",
    "worker_correlation",
]

_STRIP = {PASS: "P", FAIL: "F"}
_MIN_FAILURES_TO_CORRELATE = 2
_WORKER_CHANCE = 0.05  # the most that chance may explain of "every failure on one worker"


@dataclass(frozen=True, slots=True)
class Correlation:
    """All failures of a test happened where one context key had one value.

    Attributes:
        key: the context key (``host``, ``python``, ``branch``, ``ci`` or any
            tag), or ``worker`` for the pytest-xdist worker.
        value: the only value its failures had.
        failures: its failures there (all of them).
        runs_elsewhere: its runs where the key had another value (all passed).
    """

    key: str
    value: str
    failures: int
    runs_elsewhere: int

    def __str__(self) -> str:
        return f"fails only with {self.key}={self.value} ({self.runs_elsewhere} runs elsewhere all passed)"


@dataclass(frozen=True, slots=True)
class FlakyTest:
    """A flaky test and the evidence for it.

    Attributes:
        sut_name: its SUT.
        nodeid: its node id.
        runs: its passing and failing runs.
        failures: how many of them failed.
        flips: outcome changes between consecutive runs.
        flip_rate: ``flips / (runs - 1)``.
        rerun_recoveries: runs that failed, were rerun and passed.
        mixed_commits: commits on which it both passed and failed (the
            strongest evidence), newest last.
        evidence: ``rerun``, ``same commit`` or ``flips``: the strongest kind found.
        confidence: the Wilson lower bound (95%) of its failure rate.
        first_seen: the start of the first session that ran it.
        last_seen: the start of the last one.
        last_failure: the failure text of its latest failure.
        recent: its latest outcomes, oldest first: ``P`` passed, ``F`` failed.
        correlations: context values that all its failures share.
    """

    sut_name: str
    nodeid: str
    runs: int
    failures: int
    flips: int
    flip_rate: float
    rerun_recoveries: int
    mixed_commits: tuple[str, ...]
    evidence: str
    confidence: float
    first_seen: datetime
    last_seen: datetime
    last_failure: str
    recent: str
    correlations: tuple[Correlation, ...]


def wilson_lower_bound(successes: int, trials: int, z: float = 1.96) -> float:
    """The Wilson score interval's lower bound of a proportion (0 for no trials)."""
    if trials <= 0:
        return 0.0
    share = successes / trials
    spread = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    return max(0.0, (share + z * z / (2 * trials) - spread) / (1 + z * z / trials))


def outcome_strip(test: TestHistory, last: int = 30) -> str:
    """The latest ``last`` passing and failing outcomes of ``test``, oldest first (``PFPP``)."""
    letters = [_STRIP[code] for code in test.outcomes if code in _STRIP]
    return "".join(letters[-last:])


def find_flaky(history: History, *, min_runs: int = 5, strip: int = 30) -> list[FlakyTest]:
    """The flaky tests of ``history``, most confidently flaky first.

    Args:
        history: what :func:`~pytest_insight.analysis.reading.collect_history` read.
        min_runs: the fewest passing and failing runs a test needs to be judged.
        strip: how many latest outcomes :attr:`FlakyTest.recent` shows.
    """
    found = []
    for test in history.tests.values():
        verdict = flaky_verdict(test, history, min_runs)
        if verdict is not None:
            found.append(_flaky(test, verdict, history, strip))
    found.sort(key=lambda item: (-_rank(item.evidence), -item.confidence, item.sut_name, item.nodeid))
    return found


def flaky_verdict(test: TestHistory, history: History, min_runs: int = 5) -> Verdict | None:
    """The verdict on ``test`` when it is flaky on ``min_runs`` or more passing or failing runs, else None."""
    if test.runs < min_runs:
        return None
    verdict = judge(test, history)
    return verdict if verdict.kind == "flaky" and verdict.runs >= min_runs else None


def flaky_test_ids(
    sessions: Iterable[TestSession], *, min_runs: int = 5, among: Collection[str] | None = None
) -> set[str]:
    """The ids of the tests that :func:`find_flaky` would list for ``sessions`` (in any of their SUTs).

    A test id is a node id, followed by the label for a subtest
    (``TestResult.test_id``).

    Args:
        sessions: the sessions, in any order.
        min_runs: as for :func:`find_flaky`.
        among: judge only these test ids (the others cannot be flaky, say
            because they never failed): their results alone are read.
    """
    history = History()
    for session in sessions:
        if among is not None:
            # a result's test id is its node id but for a subtest's: no property call for the others
            results = session.test_results
            kept = [r for r in results if r.nodeid in among or (r.subtest and r.test_id in among)]
            session = dataclasses.replace(session, test_results=kept, rerun_test_groups=[])
        history.add(session)
    history.finish()
    return {test.nodeid for test in history.tests.values() if flaky_verdict(test, history, min_runs)}


def _rank(evidence: str) -> int:
    return {"rerun": 2, "same commit": 2, "flips": 1}[evidence]


def _flaky(test: TestHistory, verdict: Verdict, history: History, strip: int) -> FlakyTest:
    sessions = history.sessions
    if verdict.recoveries:
        evidence = "rerun"
    elif verdict.mixed_commits:
        evidence = "same commit"
    else:
        evidence = "flips"
    runs = verdict.runs
    return FlakyTest(
        sut_name=test.sut_name,
        nodeid=test.nodeid,
        runs=runs,
        failures=verdict.failures,
        flips=verdict.flips,
        flip_rate=verdict.flips / (runs - 1) if runs > 1 else 0.0,
        rerun_recoveries=verdict.recoveries,
        mixed_commits=verdict.mixed_commits,
        evidence=evidence,
        confidence=wilson_lower_bound(verdict.failures + verdict.recoveries, runs),
        first_seen=sessions[test.sessions[0]].start,
        last_seen=sessions[test.sessions[-1]].start,
        last_failure=test.last_failure,
        recent=outcome_strip(test, strip),
        correlations=correlate(verdict, history) + worker_correlation(test, history),
    )


def correlate(verdict: Verdict, history: History) -> tuple[Correlation, ...]:
    """Context values shared by every failure of a test and by none of its other runs' contexts.

    A key counts when the test failed (or was rerun) at least twice, all
    those runs had one value, and at least two runs with another value passed.
    """
    codes = verdict.outcomes
    positions = list(verdict.recovered)
    position = codes.find(FAIL)
    while position != -1:
        positions.append(position)
        position = codes.find(FAIL, position + 1)
    if len(positions) < _MIN_FAILURES_TO_CORRELATE:
        return ()
    contexts = history.contexts
    failing = [contexts[history.context_ids[verdict.sessions[position]]] for position in positions]
    # sessions share a few contexts: count the runs of each, in C loops
    runs_by_context = Counter(itemgetter(*verdict.sessions)(history.context_ids))
    found = []
    for key, value in failing[0].items():
        if any(context.get(key) != value for context in failing[1:]):
            continue
        elsewhere = sum(count for i, count in runs_by_context.items() if contexts[i].get(key) != value)
        if elsewhere >= 2:
            found.append(Correlation(key, value, len(failing), elsewhere))
    return tuple(found)


def worker_correlation(test: TestHistory, history: History) -> tuple[Correlation, ...]:
    """The pytest-xdist worker that ran every failure of ``test``, when chance hardly explains it.

    Failures are failed runs and rerun recoveries. The worker is named when
    there were at least two, all on it, at least two runs elsewhere passed,
    and the chance that that many failures all land on one worker, drawn from
    the runs as xdist spread them (a hypergeometric draw, times the number of
    workers), is under 5%.
    """
    if not test.workers:
        return ()
    runs: Counter[int] = Counter()
    failures: Counter[int] = Counter()
    for outcome, rerun, worker in zip(test.outcomes, test.reruns, test.workers, strict=True):
        if outcome == SKIP:
            continue
        runs[worker] += 1
        if outcome == FAIL or rerun:
            failures[worker] += 1
    if len(failures) != 1:
        return ()
    ((worker, failed),) = failures.items()
    total, there = runs.total(), runs[worker]
    if not worker or failed < _MIN_FAILURES_TO_CORRELATE or total - there < 2:
        return ()
    named = sum(1 for code in runs if code)
    chance = math.comb(there, failed) / math.comb(total, failed) * named
    if chance >= _WORKER_CHANCE:
        return ()
    return (Correlation("worker", history.worker_names[worker], failed, total - there),)
