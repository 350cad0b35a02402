"""Compare two runs (or two sets of runs): what newly fails, what was fixed, added, removed, slower.

Each side is one or more sessions, say the runs of a pull request's head
commit against those of its base. Per test and side the runs are summed up:
``failed`` when every passing or failing run failed, ``passed`` when every
one passed, ``mixed`` otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from statistics import median

from pytest_insight.analysis.history import FAIL, PASS, History
from pytest_insight.model.sessions import TestSession

__all__ = ["Diff", "DiffEntry", "diff_sessions"]


@dataclass(frozen=True, slots=True)
class DiffEntry:
    """One test on both sides.

    Attributes:
        sut_name: its SUT.
        nodeid: its node id.
        base: ``passed``, ``failed``, ``mixed``, ``skipped`` or ``absent``.
        head: the same on the head side.
        base_seconds: its median passing duration on the base side (0 when none).
        head_seconds: the same on the head side.
        failure: the failure text of its latest head failure.
    """

    sut_name: str
    nodeid: str
    base: str
    head: str
    base_seconds: float
    head_seconds: float
    failure: str


@dataclass(frozen=True, slots=True)
class Diff:
    """What changed from base to head; each list sorted by SUT and node id."""

    base_sessions: int
    head_sessions: int
    newly_failing: list[DiffEntry]
    fixed: list[DiffEntry]
    added: list[DiffEntry]
    removed: list[DiffEntry]
    slower: list[DiffEntry]


@dataclass
class _Side:
    passes: int = 0
    failures: int = 0
    seconds: tuple[float, ...] = ()
    failure: str = ""

    @property
    def state(self) -> str:
        if self.failures and self.passes:
            return "mixed"
        if self.failures:
            return "failed"
        return "passed" if self.passes else "skipped"


def _sides(history: History) -> dict[tuple[str, str], _Side]:
    sides = {}
    for key, test in history.tests.items():
        side = _Side()
        passing = [test.durations[i] for i, code in enumerate(test.outcomes) if code == PASS]
        side.passes, side.seconds = len(passing), tuple(passing)
        side.failures = test.outcomes.count(FAIL)
        side.failure = test.last_failure
        sides[key] = side
    return sides


def diff_sessions(
    base: Iterable[TestSession],
    head: Iterable[TestSession],
    *,
    slower_ratio: float = 1.5,
    slower_seconds: float = 0.1,
) -> Diff:
    """Compare the ``head`` sessions to the ``base`` sessions.

    Args:
        base: sessions (``TestSession``) of the old side.
        head: sessions of the new side.
        slower_ratio: how many times slower a test's median must be to count as slower.
        slower_seconds: and by how many seconds at least.
    """
    before = History.from_sessions(base)
    after = History.from_sessions(head)
    old, new = _sides(before), _sides(after)
    lists: dict[str, list[DiffEntry]] = {
        name: [] for name in ("newly", "fixed", "added", "removed", "slower")
    }
    for key in sorted(old.keys() | new.keys()):
        was, now = old.get(key), new.get(key)
        entry = DiffEntry(
            sut_name=key[0],
            nodeid=key[1],
            base=was.state if was else "absent",
            head=now.state if now else "absent",
            base_seconds=median(was.seconds) if was and was.seconds else 0.0,
            head_seconds=median(now.seconds) if now and now.seconds else 0.0,
            failure=now.failure if now and now.failures else "",
        )
        if was is None:
            lists["added"].append(entry)
        elif now is None:
            lists["removed"].append(entry)
        if now is not None and now.failures and (was is None or was.state == "passed"):
            lists["newly"].append(entry)
        if was is not None and was.failures and now is not None and now.state == "passed":
            lists["fixed"].append(entry)
        if (
            entry.base_seconds > 0
            and entry.head_seconds >= entry.base_seconds * slower_ratio
            and entry.head_seconds - entry.base_seconds >= slower_seconds
        ):
            lists["slower"].append(entry)
    return Diff(
        base_sessions=len(before.sessions),
        head_sessions=len(after.sessions),
        newly_failing=lists["newly"],
        fixed=lists["fixed"],
        added=lists["added"],
        removed=lists["removed"],
        slower=lists["slower"],
    )
