"""Duration regressions: tests that became markedly slower and stayed so.

For each test, over its latest ``window`` passing runs, every split into a
baseline (before) and a recent part (from the split on, to the latest run)
is costed by the total absolute deviation of each part from its median
(a robust change point: a run put on the wrong side costs its whole jump).
The cheapest split is scored by the gap between the two medians in units of
their pooled median absolute deviation, and is a regression when the recent
median is at least ``ratio`` times the baseline's and ``min_seconds`` more,
and the gap is at least ``min_score`` deviations: noise moves the median
little, and a test that was always slow has no split where it got slower.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from pytest_insight.analysis.history import History
from pytest_insight.analysis.regressions import RunRef

__all__ = ["SlowerTest", "find_slower"]

_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class SlowerTest:
    """A test whose duration jumped and stayed up.

    Attributes:
        sut_name: its SUT.
        nodeid: its node id.
        baseline: median seconds before the jump.
        recent: median seconds from the jump on.
        ratio: ``recent / baseline``.
        score: the gap between the medians in pooled robust standard deviations.
        last_fast: the last run before the jump.
        first_slow: the first run of the slower stretch.
        runs_since: passing runs from ``first_slow`` on.
    """

    sut_name: str
    nodeid: str
    baseline: float
    recent: float
    ratio: float
    score: float
    last_fast: RunRef
    first_slow: RunRef
    runs_since: int


def find_slower(
    history: History,
    *,
    window: int = 200,
    min_side: int = 3,
    ratio: float = 1.5,
    min_seconds: float = 0.05,
    min_score: float = 5.0,
) -> list[SlowerTest]:
    """The tests of ``history`` that got markedly slower, largest ratio first.

    Args:
        history: what :func:`~pytest_insight.analysis.reading.collect_history` read.
        window: how many latest passing runs of a test are looked at.
        min_side: the fewest runs on each side of a split.
        ratio: how many times slower the recent median must be.
        min_seconds: how many seconds slower it must be.
        min_score: how many pooled robust deviations apart the medians must be.
    """
    found = []
    sessions = history.sessions
    for test in history.tests.values():
        passing = test.latest_passing(window)
        if len(passing) < 2 * min_side:
            continue
        durations = [test.durations[i] for i in passing]
        best = _best_split(durations, min_side)
        if best is None:
            continue
        split, before, after, score = best
        if after >= before * ratio and after - before >= min_seconds and score >= min_score:
            found.append(
                SlowerTest(
                    sut_name=test.sut_name,
                    nodeid=test.nodeid,
                    baseline=before,
                    recent=after,
                    ratio=after / before if before > 0 else float("inf"),
                    score=score,
                    last_fast=RunRef.of(sessions[test.sessions[passing[split - 1]]]),
                    first_slow=RunRef.of(sessions[test.sessions[passing[split]]]),
                    runs_since=len(durations) - split,
                )
            )
    found.sort(key=lambda item: (-item.ratio, item.sut_name, item.nodeid))
    return found


def _best_split(durations: list[float], min_side: int) -> tuple[int, float, float, float] | None:
    """The split with the least total absolute deviation from its two medians, and its score."""
    best: tuple[float, int, float, float] | None = None
    for split in range(min_side, len(durations) - min_side + 1):
        head, tail = durations[:split], durations[split:]
        before, after = median(head), median(tail)
        if after <= before:
            continue
        cost = sum(abs(x - before) for x in head) + sum(abs(x - after) for x in tail)
        if best is None or cost < best[0]:
            best = (cost, split, before, after)
    if best is None:
        return None
    _, split, before, after = best
    head, tail = durations[:split], durations[split:]
    spread = median([abs(x - before) for x in head] + [abs(x - after) for x in tail]) * _MAD_TO_SIGMA
    # a floor of 1% of the baseline, so perfectly even timings do not divide by zero
    return split, before, after, (after - before) / max(spread, before * 0.01, 1e-6)
