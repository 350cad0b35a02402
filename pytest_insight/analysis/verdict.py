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

A test that only passed or only failed is decided from two counts; the
others are read with byte searches over their outcomes, so a test with a
hundred thousand runs costs milliseconds.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from itertools import compress
from operator import itemgetter

from pytest_insight.analysis.history import FAIL, PASS, SKIP, History, TestHistory

__all__ = ["Verdict", "judge"]

Block = tuple[bool, int, int]
_FAILED_MASK = bytes(1 if code == FAIL else 0 for code in range(256))
_PASSED_MASK = bytes(1 if code == PASS else 0 for code in range(256))


@dataclass(frozen=True, slots=True)
class Verdict:
    """The kind of a test and the facts it rests on.

    Attributes:
        kind: ``steady``, ``broken``, ``flaky``, ``changed`` (regressed and/or
            fixed) or ``unknown`` (no passing or failing run).
        passes: how many runs passed.
        failures: how many runs failed.
        flips: how often the outcome changed between consecutive runs.
        recoveries: runs that failed and passed on a rerun.
        mixed_commits: commits on which it both passed and failed.
        sessions: per passing or failing run, oldest first, its index in
            ``History.sessions`` (empty for a test that only passed or only failed).
        outcomes: per such run, :data:`PASS` or :data:`FAIL`.
        recovered: the positions (in ``sessions``) of the rerun recoveries.
        blocks: maximal stretches of one outcome, as ``(failed, first, last)``
            positions in ``sessions``.
    """

    kind: str
    passes: int
    failures: int
    flips: int = 0
    recoveries: int = 0
    mixed_commits: tuple[str, ...] = ()
    sessions: tuple[int, ...] = ()
    outcomes: bytes = b""
    recovered: tuple[int, ...] = ()
    blocks: tuple[Block, ...] = ()

    @property
    def runs(self) -> int:
        """Passing and failing runs."""
        return self.passes + self.failures


def judge(test: TestHistory, history: History) -> Verdict:
    """Decide what ``test`` (one of ``history``'s tests) is from its runs."""
    outcomes = test.outcomes
    failures, passes = outcomes.count(FAIL), outcomes.count(PASS)
    reran = test.reruns.count(1)
    if not (failures and passes) and not (passes and reran):  # most tests: two counts decide
        kind = "unknown" if not passes + failures else "broken" if failures else "steady"
        return Verdict(kind, passes, failures)
    runs, codes, recovered = _passing_and_failing(test, reran)
    commits = _gather(history.commit_ids, runs)
    failed = codes.translate(_FAILED_MASK)  # 1 where the run failed, else 0
    passed_on = set(compress(commits, codes.translate(_PASSED_MASK)))
    mixed = set(compress(commits, failed)) & passed_on
    mixed.discard(0)
    blocks = _blocks(codes)
    if recovered or mixed:
        kind = "flaky"
    elif failures == 0:
        kind = "steady"
    elif len(blocks) >= 3 and any(not _solid(commits, block) for block in blocks[1:-1]):
        kind = "flaky"
    else:
        kind = "changed"
    names = history.commit_names
    ordered_mixed = tuple(names[commit] for commit in dict.fromkeys(commits) if commit in mixed)
    return Verdict(
        kind, passes, failures, len(blocks) - 1, len(recovered), ordered_mixed, tuple(runs), codes,
        tuple(recovered), tuple(blocks),
    )  # fmt: skip


def _passing_and_failing(test: TestHistory, reran: int) -> tuple[list[int], bytes, list[int]]:
    """The session indexes and outcomes of the passing and failing runs, and the recoveries' positions."""
    outcomes, reruns = test.outcomes, test.reruns
    if outcomes.count(SKIP) == 0:
        runs, codes, flags = test.sessions.tolist(), bytes(outcomes), reruns
    else:
        keep = [position for position, code in enumerate(outcomes) if code != SKIP]
        runs = [test.sessions[position] for position in keep]
        codes = bytes(outcomes[position] for position in keep)
        flags = bytearray(reruns[position] for position in keep)
    recovered = []
    if reran:
        position = flags.find(1)
        while position != -1:
            if codes[position] == PASS:
                recovered.append(position)
            position = flags.find(1, position + 1)
    return runs, codes, recovered


def _blocks(codes: bytes) -> list[Block]:
    blocks: list[Block] = []
    first = 0
    while first < len(codes):
        code = codes[first]
        other = FAIL if code == PASS else PASS
        end = codes.find(other, first)
        end = len(codes) if end == -1 else end
        blocks.append((code == FAIL, first, end - 1))
        first = end
    return blocks


def _gather(values: array[int], positions: list[int]) -> tuple[int, ...]:
    if len(positions) == 1:
        return (values[positions[0]],)
    return tuple(itemgetter(*positions)(values)) if positions else ()


def _solid(commits: tuple[int, ...], block: Block) -> bool:
    """Whether a stretch between two flips is long enough to be a real state (two commits)."""
    _, first, last = block
    named = set(commits[first : last + 1])
    named.discard(0)
    if named:
        return len(named) >= 2
    return last - first + 1 >= 2
