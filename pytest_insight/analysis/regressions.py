"""Outcome regressions and fixes: where a test's outcome changed and stayed changed.

Tests that :func:`~pytest_insight.analysis.verdict.judge` calls flaky are
left out: their changes are noise, and ``insight flaky`` reports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pytest_insight.analysis.history import History, SessionInfo
from pytest_insight.analysis.verdict import judge

__all__ = ["Change", "RunRef", "find_changes"]


@dataclass(frozen=True, slots=True)
class RunRef:
    """One session a test ran in: its id, commit and start."""

    session_id: str
    commit: str
    start: datetime

    @classmethod
    def of(cls, session: SessionInfo) -> RunRef:
        """The reference to ``session``."""
        return cls(session.session_id, session.commit, session.start)


@dataclass(frozen=True, slots=True)
class Change:
    """A test that started failing (a regression) or started passing (a fix).

    Attributes:
        kind: ``regression`` or ``fix``.
        sut_name: its SUT.
        nodeid: its node id.
        before: the last run with the old outcome (last good for a regression).
        after: the first run with the new outcome (first bad for a regression).
        still: whether the new outcome holds in the latest run (still failing,
            or still passing).
        runs_since: runs from ``after`` on that had the new outcome.
        failure: for a regression, the failure text of its latest failure.
    """

    kind: str
    sut_name: str
    nodeid: str
    before: RunRef
    after: RunRef
    still: bool
    runs_since: int
    failure: str


def find_changes(history: History, *, min_runs: int = 2) -> tuple[list[Change], list[Change]]:
    """Return the regressions and the fixes of ``history``, newest first.

    Each test gives at most one of each: its latest change to failing and its
    latest change to passing.

    Args:
        history: what :func:`~pytest_insight.analysis.reading.collect_history` read.
        min_runs: the fewest passing and failing runs a test needs.
    """
    regressions: list[Change] = []
    fixes: list[Change] = []
    sessions = history.sessions
    for test in history.tests.values():
        verdict = judge(test, history)
        if verdict.kind != "changed" or verdict.runs < min_runs:
            continue
        runs = verdict.sessions
        blocks = verdict.blocks
        seen: set[bool] = set()
        for position in range(len(blocks) - 1, 0, -1):
            failed, first, last = blocks[position]
            if failed in seen:
                continue
            seen.add(failed)
            change = Change(
                kind="regression" if failed else "fix",
                sut_name=test.sut_name,
                nodeid=test.nodeid,
                before=RunRef.of(sessions[runs[first - 1]]),
                after=RunRef.of(sessions[runs[first]]),
                still=position == len(blocks) - 1,
                runs_since=last - first + 1,
                failure=test.last_failure if failed else "",
            )
            (regressions if failed else fixes).append(change)
    for found in (regressions, fixes):
        found.sort(key=lambda change: (change.after.start, change.sut_name, change.nodeid), reverse=True)
    return regressions, fixes
