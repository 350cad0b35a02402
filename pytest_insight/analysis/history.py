"""Every test's outcomes over time, kept compact so a year of sessions fits in memory.

:func:`collect_history` streams the sessions of a storage (local store or
bucket prefix alike, through the backend's ``scan``) and keeps, per session,
one small :class:`SessionInfo`, and per test and session one outcome byte, one
duration and one session index. No session object outlives its turn in the
loop, so memory grows with the number of test runs (about 13 bytes each), not
with what the sessions hold.

The outcome of a test in one session is its final one: ``fail`` when any of
its reports failed or erred (a pass followed by a teardown error is a
failure), ``pass`` when it passed (or xpassed), ``skip`` otherwise (skipped,
xfailed). A test that pytest-rerunfailures reran and that passed in the end
is a *rerun recovery*.

A subtest is a test of its own, keyed by its node id and label
(``test_x.py::test_a [part] (i=2)``, as ``TestResult.test_id``). pytest 9
fails a test whose subtest failed ("contains 1 failed subtest"): in a
session where one of its subtests failed, the test's own ``failed`` result
is taken as that echo and counted as a skip, so a subtest that flips does
not make its parent look flaky too.

Under pytest-xdist each run also keeps the worker that ran it
(:attr:`TestHistory.workers`).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, Protocol

from pytest_insight.model.sessions import TestSession, to_utc

if TYPE_CHECKING:
    from pytest_insight.analysis.reading import SessionView

__all__ = ["FAIL", "PASS", "SKIP", "History", "ResultLike", "SessionInfo", "TestHistory"]

PASS, FAIL, SKIP = 0, 1, 2
"""Outcome codes of :attr:`TestHistory.outcomes`."""

_RERUN = 3  # an attempt pytest-rerunfailures made before the final one
# keyed by string, so that both TestOutcome (a StrEnum) and the raw outcomes of SessionView match
_CODES = {"passed": PASS, "xpassed": PASS, "failed": FAIL, "error": FAIL, "rerun": _RERUN}
# tags that name one run, not a context runs share: they say nothing about where failures happen
_RUN_TAGS = frozenset({"commit", "ci_run_id", "ci_run_url", "ci_job_url"})
_FAILURE_TEXT_LIMIT = 2000
_SUBTEST = attrgetter("subtest")
_FAILING = frozenset({"failed", "error"})
_NONE: frozenset[str] = frozenset()


class ResultLike(Protocol):
    """What :meth:`History.add` reads of a result: a ``TestResult`` or a ``ResultView``."""

    @property
    def nodeid(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def duration(self) -> float: ...
    @property
    def longreprtext(self) -> str: ...
    @property
    def subtest(self) -> str: ...
    @property
    def worker(self) -> str: ...
    @property
    def test_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What the analyses need of one session.

    Attributes:
        session_id: the session's id.
        sut_name: its SUT.
        start: when it started (UTC).
        duration: the suite's duration in seconds.
        commit: its ``commit`` tag, or "" when it has none.
        context: where it ran: ``host`` and ``python`` from its testing
            system, and its tags other than the per-run ones (``commit``,
            ``ci_run_id``, ``ci_run_url``, ``ci_job_url``).
    """

    session_id: str
    sut_name: str
    start: datetime
    duration: float
    commit: str
    context: Mapping[str, str]

    @property
    def branch(self) -> str:
        """The ``branch`` tag, or ""."""
        return self.context.get("branch", "")


@dataclass(slots=True, repr=False)
class TestHistory:
    """One test's runs, oldest first once :meth:`History.finish` has run.

    Attributes:
        sut_name: the SUT the test belongs to.
        nodeid: its pytest node id, followed by the label for a subtest
            (``test_x.py::test_a [part] (i=2)``).
        sessions: per run, the index of its session in :attr:`History.sessions`.
        outcomes: per run, :data:`PASS`, :data:`FAIL` or :data:`SKIP`.
        durations: per run, the seconds its reports took.
        reruns: per run, 1 when pytest-rerunfailures reran it (a pass then is a rerun recovery).
        workers: per run, the pytest-xdist worker that ran it, an index into
            :attr:`History.worker_names` (0: none); empty when no run had one.
        last_failure: the failure text of its latest failing run.
    """

    __test__ = False

    sut_name: str
    nodeid: str
    sessions: array[int] = field(default_factory=lambda: array("i"))
    outcomes: bytearray = field(default_factory=bytearray)
    durations: array[float] = field(default_factory=lambda: array("d"))
    reruns: bytearray = field(default_factory=bytearray)
    workers: array[int] = field(default_factory=lambda: array("H"))
    last_failure: str = ""
    _last_failure_index: int = -1

    def __repr__(self) -> str:
        return f"<TestHistory {self.sut_name} {self.nodeid}: {len(self.outcomes)} runs>"

    @property
    def runs(self) -> int:
        """How many sessions ran it."""
        return len(self.outcomes)

    def latest_passing(self, count: int) -> list[int]:
        """The positions of its latest ``count`` passing runs, oldest first."""
        found: list[int] = []
        outcomes = self.outcomes
        position = len(outcomes)
        while len(found) < count:
            position = outcomes.rfind(PASS, 0, position)
            if position == -1:
                break
            found.append(position)
        found.reverse()
        return found


@dataclass(repr=False)
class History:
    """Sessions and per-test runs, built by :meth:`add` and ordered by :meth:`finish`.

    After :meth:`finish`, ``commit_ids`` and ``context_ids`` give each
    session's commit (an index into ``commit_names``; 0 is "no commit") and
    context (an index into ``contexts``). ``worker_names`` names the xdist
    workers that :attr:`TestHistory.workers` count (``""`` first, for none).
    With ``only`` set, the runs of only those tests (test ids, as
    :attr:`TestHistory.nodeid`) are kept: a question about a few tests
    spends nothing on the rest of a session's results.
    """

    only: frozenset[str] | None = None
    sessions: list[SessionInfo] = field(default_factory=list)
    tests: dict[tuple[str, str], TestHistory] = field(default_factory=dict)
    _by_sut: dict[str, dict[str, TestHistory]] = field(default_factory=dict)
    _layouts: dict[str, tuple[list[str], list[TestHistory]]] = field(default_factory=dict)
    _contexts: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = field(default_factory=dict)
    commit_ids: array[int] = field(default_factory=lambda: array("i"))
    commit_names: list[str] = field(default_factory=list)
    context_ids: array[int] = field(default_factory=lambda: array("i"))
    contexts: list[Mapping[str, str]] = field(default_factory=list)
    worker_names: list[str] = field(default_factory=lambda: [""])
    _worker_codes: dict[str, int] = field(default_factory=lambda: {"": 0})

    def __repr__(self) -> str:
        # asyncio formats a finished task's result with repr: the default one would list every run
        return f"<History of {len(self.sessions)} sessions, {len(self.tests)} tests>"

    def add(self, session: TestSession | SessionView) -> None:
        """Fold one session in (a decoded session, or the light view :mod:`.reading` makes)."""
        index = len(self.sessions)
        sut = session.sut_name
        results: Sequence[ResultLike] = session.test_results
        echoes = _NONE
        if any(map(_SUBTEST, results)):
            keys = [result.test_id for result in results]
            echoes = frozenset(r.nodeid for r in results if r.subtest and r.outcome in _FAILING)
        else:
            keys = [result.nodeid for result in results]
        if self.only is not None:  # after the echoes: an echo may come from a subtest not asked for
            only = self.only
            kept = [position for position, key in enumerate(keys) if key in only]
            results, keys = [results[position] for position in kept], [keys[position] for position in kept]
        layout = self._layouts.get(sut)
        if layout is not None and layout[0] == keys:
            self._add_same_tests(index, results, layout[1], echoes)
        else:
            self._add_any_tests(index, sut, results, keys, echoes)
            if len(set(keys)) == len(keys):
                tests = self._by_sut[sut]
                self._layouts[sut] = (keys, [tests[key] for key in keys])
        tags = session.session_tags
        self.sessions.append(
            SessionInfo(
                session.session_id,
                sut,
                to_utc(session.session_start_time),
                session.session_duration,
                tags.get("commit", ""),
                self._context(tags, session.testing_system),
            )
        )

    def _add_same_tests(
        self, index: int, results: Sequence[ResultLike], tests: list[TestHistory], echoes: frozenset[str]
    ) -> None:
        """The common case: the same tests, in the same order, as the SUT's previous session."""
        codes = _CODES
        for history, result in zip(tests, results, strict=True):
            code = codes.get(result.outcome, SKIP)
            if code == FAIL and echoes and _echo(result, echoes):
                code = SKIP
            history.sessions.append(index)
            history.durations.append(result.duration)
            if code == _RERUN:
                history.outcomes.append(SKIP)
                history.reruns.append(1)
            else:
                history.outcomes.append(code)
                history.reruns.append(0)
            worker = result.worker
            if worker or history.workers:
                self._note_worker(history, worker)
            if code == FAIL and result.longreprtext and index >= history._last_failure_index:
                history._last_failure_index = index
                history.last_failure = result.longreprtext[:_FAILURE_TEXT_LIMIT]

    def _add_any_tests(
        self, index: int, sut: str, results: Sequence[ResultLike], keys: list[str], echoes: frozenset[str]
    ) -> None:
        tests = self._by_sut.get(sut)
        if tests is None:
            tests = self._by_sut[sut] = {}
        codes = _CODES
        for result, key in zip(results, keys, strict=True):
            code = codes.get(result.outcome, SKIP)
            if code == FAIL and echoes and _echo(result, echoes):
                code = SKIP
            history = tests.get(key)
            if history is None:
                history = tests[key] = self.tests[(sut, key)] = TestHistory(sut, key)
            runs = history.sessions
            decided = True  # whether this report set the run's outcome (its worker is the run's)
            if runs and runs[-1] == index:  # another report of a test this session already ran
                history.durations[-1] += result.duration
                if code == _RERUN:
                    history.reruns[-1] = 1
                elif code == FAIL or (code == PASS and history.outcomes[-1] != FAIL):
                    history.outcomes[-1] = code
                else:
                    decided = False
            else:
                runs.append(index)
                history.durations.append(result.duration)
                history.outcomes.append(SKIP if code == _RERUN else code)
                history.reruns.append(1 if code == _RERUN else 0)
            worker = result.worker
            if (worker and decided) or history.workers:
                self._note_worker(history, worker if decided else "")
            if code == FAIL and result.longreprtext and index >= history._last_failure_index:
                history._last_failure_index = index
                history.last_failure = result.longreprtext[:_FAILURE_TEXT_LIMIT]

    def _note_worker(self, history: TestHistory, worker: str) -> None:
        """Set the worker of ``history``'s latest run (none: leave it), after padding earlier runs."""
        code = self._worker_codes.get(worker)
        if code is None:
            code = self._worker_codes[worker] = len(self.worker_names)
            self.worker_names.append(worker)
        workers = history.workers
        missing = len(history.outcomes) - len(workers)
        if missing:
            workers.extend(array("H", bytes(2 * missing)))
        if code:
            workers[-1] = code

    def _context(self, tags: Mapping[str, str], system: Mapping[str, Any]) -> Mapping[str, str]:
        pairs = [(key, value) for key, value in tags.items() if key not in _RUN_TAGS]
        for key, name in (("hostname", "host"), ("python_version", "python")):
            value = system.get(key)
            if isinstance(value, str) and value:
                pairs.append((name, value))
        shape = tuple(sorted(pairs))
        known = self._contexts.get(shape)
        if known is None:  # a few distinct contexts, shared by thousands of sessions
            known = self._contexts[shape] = dict(shape)
        return known

    def finish(self) -> History:
        """Order the sessions oldest first and every test's runs with them; return self."""
        self._order()
        # per session, small numbers for its commit and its context, so that per-test
        # questions gather them with C loops (operator.itemgetter) instead of Python ones
        commits: dict[str, int] = {"": 0}
        self.commit_ids = array("i", (commits.setdefault(s.commit, len(commits)) for s in self.sessions))
        self.commit_names = list(commits)
        contexts: dict[int, int] = {}
        self.context_ids = array(
            "i", (contexts.setdefault(id(s.context), len(contexts)) for s in self.sessions)
        )
        by_id = {id(s.context): s.context for s in self.sessions}
        self.contexts = [by_id[key] for key in contexts]
        return self

    def _order(self) -> None:
        sessions = self.sessions
        order = sorted(range(len(sessions)), key=lambda i: (sessions[i].start, sessions[i].session_id))
        if all(new == old for new, old in enumerate(order)):
            return
        rank = array("i", bytes(4 * len(order)))
        for new, old in enumerate(order):
            rank[old] = new
        self.sessions = [sessions[old] for old in order]
        # the tests of one SUT mostly ran in the same sessions: sort each distinct set once
        permutations: dict[bytes, tuple[array[int], list[int] | None]] = {}
        for history in self.tests.values():
            key = history.sessions.tobytes()
            known = permutations.get(key)
            if known is None:
                ranks = [rank[old] for old in history.sessions]
                runs = sorted(range(len(ranks)), key=ranks.__getitem__)
                ordered = all(new == old for new, old in enumerate(runs))
                known = permutations[key] = (array("i", sorted(ranks)), None if ordered else runs)
            history.sessions, moves = array("i", known[0]), known[1]
            if moves is not None and len(moves) > 1:
                gather = itemgetter(*moves)  # a C loop: a test may have a hundred thousand runs
                history.outcomes = bytearray(gather(history.outcomes))
                history.durations = array("d", gather(history.durations))
                history.reruns = bytearray(gather(history.reruns))
                if history.workers:
                    history.workers = array("H", gather(history.workers))

    @classmethod
    def from_sessions(cls, sessions: Iterable[TestSession], only: Iterable[str] | None = None) -> History:
        """Build the history of ``sessions`` (any order), of the tests ``only`` names when given."""
        history = cls(None if only is None else frozenset(only))
        for session in sessions:
            history.add(session)
        return history.finish()


def _echo(result: ResultLike, echoes: frozenset[str]) -> bool:
    """Whether ``result`` is a test's own failure that only repeats a failed subtest's (pytest 9)."""
    return not result.subtest and result.outcome == "failed" and result.nodeid in echoes
