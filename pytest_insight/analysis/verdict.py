"""What a test's history says it is: steady, broken, flaky, or regressed and fixed.

One place decides, so that ``insight flaky`` and ``insight regressions`` never
both claim a test. Only passing and failing runs count (skips are left out).

- Flaky, with evidence: it failed and then passed on a rerun
  (pytest-rerunfailures), or it both passed and failed on one commit (the
  ``commit`` tag), or its outcome flipped at least twice and some stretch
  between two flips is short (one run, or one commit).
- A regression: it passed and then failed, and the failures held for at
  least two commits (two runs without commit tags) or are still going on. A
  fix is the reverse. A test that broke for a few commits and was then
  fixed is a regression followed by a fix, not flaky.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_insight.analysis.history import FAIL, PASS, SessionInfo, TestHistory

__all__ = ["Run", "Verdict", "judge", "runs_of"]


@dataclass(frozen=True, slots=True)
class Run:
    """One passing or failing run of a test."""

    session: int  # index in History.sessions
    failed: bool
    recovered: bool  # failed, was rerun, and passed


@dataclass(frozen=True, slots=True)
class Verdict:
    """The kind of a test and the facts it rests on.

    Attributes:
        kind: ``steady``, ``broken``, ``flaky``, ``changed`` (regressed and/or
            fixed) or ``unknown`` (no passing or failing run).
        runs: its passing and failing runs, oldest first.
        flips: how often the outcome changed between consecutive runs.
        recoveries: runs that failed and passed on a rerun.
        mixed_commits: commits on which it both passed and failed.
        blocks: maximal stretches of one outcome, as ``(failed, first, last)``
            indexes into ``runs``.
        passes: how many runs passed.
        failures: how many runs failed.

    ``runs`` is empty for a test that only passed (with no rerun) or only
    failed: nothing else needs them.
    """

    kind: str
    runs: tuple[Run, ...]
    flips: int
    recoveries: int
    mixed_commits: tuple[str, ...]
    blocks: tuple[tuple[bool, int, int], ...]
    passes: int
    failures: int


def runs_of(test: TestHistory) -> list[Run]:
    """The passing and failing runs of ``test``, oldest first."""
    runs = []
    for position, outcome in enumerate(test.outcomes):
        if outcome in (PASS, FAIL):
            recovered = outcome == PASS and test.reruns[position] == 1
            runs.append(Run(test.sessions[position], outcome == FAIL, recovered))
    return runs


def judge(test: TestHistory, sessions: list[SessionInfo]) -> Verdict:
    """Decide what ``test`` is from its history."""
    outcomes = test.outcomes
    failures, passes = outcomes.count(FAIL), outcomes.count(PASS)
    if not (failures and passes):  # most tests: decided by two counts, without a loop over runs
        kind = "unknown" if not passes + failures else "broken" if failures else "steady"
        if passes and test.reruns.count(1) == 0:
            return Verdict(kind, (), 0, 0, (), ((False, 0, passes - 1),), passes, failures)
        if not passes:
            return Verdict(
                kind, (), 0, 0, (), ((True, 0, failures - 1),) if failures else (), passes, failures
            )
    runs = runs_of(test)
    recoveries = sum(run.recovered for run in runs)
    outcomes_by_commit: dict[str, set[bool]] = {}
    for run in runs:
        commit = sessions[run.session].commit
        if commit:
            outcomes_by_commit.setdefault(commit, set()).add(run.failed)
    mixed = tuple(commit for commit, seen in outcomes_by_commit.items() if len(seen) == 2)
    blocks = _blocks(runs)
    flips = len(blocks) - 1
    if recoveries or mixed:
        kind = "flaky"
    elif failures == 0:
        kind = "steady"
    elif flips >= 2 and any(not _solid(runs, sessions, block) for block in blocks[1:-1]):
        kind = "flaky"
    else:
        kind = "changed"
    return Verdict(kind, tuple(runs), flips, recoveries, mixed, tuple(blocks), passes, failures)


def _blocks(runs: list[Run]) -> list[tuple[bool, int, int]]:
    blocks: list[tuple[bool, int, int]] = []
    for index, run in enumerate(runs):
        if blocks and blocks[-1][0] == run.failed:
            blocks[-1] = (run.failed, blocks[-1][1], index)
        else:
            blocks.append((run.failed, index, index))
    return blocks


def _solid(runs: list[Run], sessions: list[SessionInfo], block: tuple[bool, int, int]) -> bool:
    """Whether a stretch between two flips is long enough to be a real state (two commits)."""
    _, first, last = block
    commits = {sessions[runs[index].session].commit for index in range(first, last + 1)}
    commits.discard("")
    if commits:
        return len(commits) >= 2
    return last - first + 1 >= 2
