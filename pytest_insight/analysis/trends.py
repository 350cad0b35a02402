"""Trends: per SUT and UTC day, the pass rate, the suite's duration, failing and flaky tests."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from statistics import median

from pytest_insight.analysis.history import FAIL, PASS, History

__all__ = ["DayTrend", "daily_trends"]


@dataclass(frozen=True, slots=True)
class DayTrend:
    """One SUT's day.

    Attributes:
        sut_name: the SUT.
        day: the UTC day.
        sessions: sessions that started that day.
        passed: test runs that passed.
        failed: test runs that failed or erred.
        pass_rate: ``passed / (passed + failed)``, or 1.0 when none ran.
        median_duration: the median suite duration in seconds.
        failing_tests: distinct tests that failed at least once.
        flaky_tests: those of them among ``flaky`` (the flaky tests' keys).
    """

    sut_name: str
    day: date
    sessions: int
    passed: int
    failed: int
    pass_rate: float
    median_duration: float
    failing_tests: int
    flaky_tests: int


def daily_trends(history: History, flaky: Collection[tuple[str, str]] = ()) -> list[DayTrend]:
    """The trend of each SUT and day, by SUT then day.

    Args:
        history: what :func:`~pytest_insight.analysis.reading.collect_history` read.
        flaky: ``(sut_name, nodeid)`` of the tests known to be flaky.
    """
    days = [session.start.date() for session in history.sessions]
    durations: dict[tuple[str, date], list[float]] = {}
    for session, day in zip(history.sessions, days, strict=True):
        durations.setdefault((session.sut_name, day), []).append(session.duration)
    passed = dict.fromkeys(durations, 0)
    failed = dict.fromkeys(durations, 0)
    failing = dict.fromkeys(durations, 0)
    flaky_set = set(flaky)
    flaky_failing = dict.fromkeys(durations, 0)
    # sessions are ordered by start, so each day is one range of session indexes
    bounds: list[tuple[date, int, int]] = []
    for index, day in enumerate(days):
        if bounds and bounds[-1][0] == day:
            bounds[-1] = (day, bounds[-1][1], index + 1)
        else:
            bounds.append((day, index, index + 1))
    for (sut, nodeid), test in history.tests.items():
        runs, outcomes = test.sessions, test.outcomes
        for day, low, high in bounds:
            first, end = bisect_left(runs, low), bisect_left(runs, high)
            if first == end:
                continue
            key = (sut, day)
            passed[key] += outcomes.count(PASS, first, end)
            failures = outcomes.count(FAIL, first, end)
            if failures:
                failed[key] += failures
                failing[key] += 1
                flaky_failing[key] += (sut, nodeid) in flaky_set
    trends = []
    for key in sorted(durations):
        counted = passed[key] + failed[key]
        trends.append(
            DayTrend(
                sut_name=key[0],
                day=key[1],
                sessions=len(durations[key]),
                passed=passed[key],
                failed=failed[key],
                pass_rate=passed[key] / counted if counted else 1.0,
                median_duration=median(durations[key]),
                failing_tests=failing[key],
                flaky_tests=flaky_failing[key],
            )
        )
    return trends
