"""Turn pytest's reports into one :class:`TestSession`.

Every report pytest counts in its summary line becomes one
:class:`TestResult`, so the recorded outcome counts equal pytest's own:

- a failed setup or teardown is an ``error`` (a test that passes and then
  fails in teardown gives two results: ``passed`` and ``error``);
- a skip decided at setup (``skip``/``skipif`` marks, fixtures that skip) or
  inside the test is ``skipped``;
- ``xfailed``/``xpassed`` come from pytest's ``wasxfail`` (a strict xpass is
  reported by pytest as ``failed``, and recorded so);
- a report pytest-rerunfailures marks ``rerun`` is a ``rerun`` result; every
  node id that has one becomes a :class:`RerunTestGroup` whose attempts are
  all of that node id's results, in order;
- a collection error is an ``error`` for the collector's node id, a module
  skipped at collection a ``skipped`` one.

- a subtest (pytest 9's ``subtests``, unittest's ``subTest``) is a result of
  its own, labelled (``[msg] (i=2)``) and kept apart from its test's own
  result; the session counts it as pytest does (a failed subtest among the
  failed, the others as ``N subtests passed``);
- under pytest-xdist, each result names the worker that ran it (``gw0``).

Passing setup and teardown reports carry no outcome: their times are added
to the test's result (``setup_duration``, ``teardown_duration``).
This module depends on pytest's report attributes only, not on pytest's
plugin machinery, so it is cheap to import.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pytest_insight import __version__
from pytest_insight.model.session_ids import new_session_id
from pytest_insight.model.sessions import RerunTestGroup, TestOutcome, TestResult, TestSession

__all__ = ["SessionRecorder", "outcome_of", "subtest_label", "testing_system", "worker_of"]


def outcome_of(report: Any) -> TestOutcome | None:
    """Return the outcome pytest counts for ``report``, or None when it counts none.

    Args:
        report: a pytest ``TestReport`` (or ``CollectReport``, which has no
            ``when``).
    """
    if report.outcome == "rerun":
        return TestOutcome.RERUN
    if hasattr(report, "wasxfail"):
        if report.skipped:
            return TestOutcome.XFAILED
        if report.passed:
            return TestOutcome.XPASSED
    when = getattr(report, "when", None)
    if report.skipped:
        return TestOutcome.SKIPPED
    if report.failed:
        return TestOutcome.FAILED if when == "call" else TestOutcome.ERROR
    return TestOutcome.PASSED if when == "call" else None


def subtest_label(report: Any) -> str:
    """``[msg] (k=v, ...)`` of a subtest's report, as pytest shows it; ``""`` for any other report.

    pytest 9's ``subtests`` fixture, unittest's ``subTest`` and the
    pytest-subtests plugin all report a subtest with a ``context`` holding
    its message and keyword arguments.
    """
    context = getattr(report, "context", None)
    kwargs = getattr(context, "kwargs", None)
    if context is None or not isinstance(kwargs, dict):
        return ""
    message = getattr(context, "msg", None)
    parts = [f"[{message}]"] if message else []
    if kwargs:
        parts.append("(" + ", ".join(f"{key}={value}" for key, value in kwargs.items()) + ")")
    return " ".join(parts) or "(subtest)"


def worker_of(report: Any) -> str:
    """The pytest-xdist worker that produced ``report`` (``gw0``), or ``""`` without xdist.

    On the xdist controller a worker's report carries ``worker_id``; the
    report xdist makes up for a test whose worker crashed has only ``node``,
    the worker's controller, whose gateway id is the same name.
    """
    worker = getattr(report, "worker_id", None)
    if isinstance(worker, str):
        return worker
    gateway = getattr(getattr(report, "node", None), "gateway", None)
    worker = getattr(gateway, "id", None)
    return worker if isinstance(worker, str) else ""


def testing_system(pytest_version: str) -> dict[str, Any]:
    """Describe the machine and tools running the tests.

    Args:
        pytest_version: the running pytest's version.
    """
    return {
        "hostname": socket.gethostname(),
        "platform": _platform_name(),
        "system": platform.system(),
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "pytest_version": pytest_version,
        "pytest_insight_version": __version__,
    }


def _platform_name() -> str:
    """``platform.platform()``, without the ``uname -p`` subprocess it starts on Linux.

    On Linux that processor name is ``unknown`` or the machine's name, and
    ``platform.platform()`` leaves out both; starting the subprocess was one
    of the largest fixed costs of a recorded run (see docs/performance.md).
    """
    if sys.platform != "linux":
        return platform.platform()
    system, _, release, _, machine = os.uname()
    libc, version = platform.libc_ver()
    text = "-".join(part.strip() for part in (system, release, machine, "with", libc + version) if part)
    text = text.replace(" ", "_")
    for char in '/\\:;"()':  # the cleaning platform.platform() does
        text = text.replace(char, "-")
    text = text.replace("unknown", "")
    while "--" in text:
        text = text.replace("--", "-")
    return text.rstrip("-")


class SessionRecorder:
    """Collects the reports of one pytest run and builds its session."""

    def __init__(
        self,
        sut_name: str,
        *,
        tags: dict[str, str] | None = None,
        system: dict[str, Any] | None = None,
        start_time: datetime | None = None,
    ) -> None:
        """Start recording.

        Args:
            sut_name: the system under test the session belongs to.
            tags: the session tags.
            system: the ``testing_system`` dict (see :func:`testing_system`).
            start_time: when the run started; now when None.
        """
        self.sut_name = sut_name
        self.tags = dict(tags or {})
        self.system = dict(system or {})
        self.start_time = start_time or datetime.now(UTC)
        self.session_id = new_session_id(sut_name, self.start_time)
        self.results: list[TestResult] = []
        self._warned: set[str] = set()
        self._setup: dict[str, float] = {}  # a passing setup's seconds, until the test's own call report
        self._last: dict[str, TestResult] = {}  # each node id's latest result, for its teardown time

    def add_report(self, report: Any) -> None:
        """Record ``report`` if pytest counts it (see :meth:`add_reports`)."""
        self.add_reports((report,))

    def add_reports(self, reports: Iterable[Any]) -> None:
        """Record, in order, the reports pytest counts among ``reports``.

        A passing setup's time waits for the test's own result (not its
        subtests'); a passing teardown's is added to the result before it
        (the call's). The plugin keeps a run's reports and passes them here at
        its end, in one pass, which costs a run less than a call between
        every two tests.
        """
        setups, last, results = self._setup, self._last, self.results
        for report in reports:
            when = getattr(report, "when", None)
            if report.outcome == "passed":
                # two reports in three are a passing setup or teardown (pytest counts neither): their time
                if when == "setup":
                    setups[report.nodeid] = _seconds(report)
                    continue
                if when == "teardown":
                    if (test := last.get(report.nodeid)) is not None:
                        test.teardown_duration += _seconds(report)
                    continue
                # the commonest result of all: a test that passed
                outcome = TestOutcome.PASSED if not hasattr(report, "wasxfail") else outcome_of(report)
            else:
                outcome = outcome_of(report)
            if outcome is None:
                continue
            result = self._result(report, outcome)
            results.append(result)
            if not result.subtest:
                if when == "call" and (setup := setups.pop(result.nodeid, None)) is not None:
                    result.setup_duration = setup
                last[result.nodeid] = result

    def _result(self, report: Any, outcome: TestOutcome) -> TestResult:
        nodeid = report.nodeid  # a property: read once
        duration = _seconds(report)
        stop = _timestamp(getattr(report, "stop", None)) or datetime.now(UTC)
        start = _timestamp(getattr(report, "start", None)) or stop - timedelta(seconds=duration)
        result = TestResult(nodeid, outcome, start, stop, duration)
        # what most results leave empty is set only when there is some
        if report.sections:  # pytest's joins of captured output, for the tests that captured any
            result.caplog = report.caplog
            result.capstdout = report.capstdout
            result.capstderr = report.capstderr
        if report.longrepr is not None:  # without one pytest's text is empty, or an xdist "[gw0] ..." line
            result.longreprtext = report.longreprtext
        if label := subtest_label(report):
            result.subtest = label
        if worker := worker_of(report):
            result.worker = worker
        return result

    def add_warning(self, nodeid: str) -> None:
        """Note that the test ``nodeid`` emitted a warning (pytest reports them after the test)."""
        if nodeid:
            self._warned.add(nodeid)

    def build(self, stop_time: datetime | None = None) -> TestSession:
        """Return the session recorded so far.

        Args:
            stop_time: when the run ended; now when None.
        """
        stop = stop_time or datetime.now(UTC)
        results = [_with_warning(result, result.nodeid in self._warned) for result in self.results]
        rerun_ids = list(dict.fromkeys(r.nodeid for r in results if r.outcome is TestOutcome.RERUN))
        groups = [
            RerunTestGroup(nodeid=nodeid, tests=[r for r in results if r.nodeid == nodeid])
            for nodeid in rerun_ids
        ]
        return TestSession(
            sut_name=self.sut_name,
            session_id=self.session_id,
            session_start_time=self.start_time,
            session_stop_time=stop,
            session_duration=max((stop - self.start_time).total_seconds(), 0.0),
            session_tags=dict(self.tags),
            testing_system=dict(self.system),
            test_results=results,
            rerun_test_groups=groups,
        )


def _with_warning(result: TestResult, warned: bool) -> TestResult:
    if warned:
        result.has_warning = True
    return result


def _seconds(report: Any) -> float:
    return max(float(getattr(report, "duration", 0.0) or 0.0), 0.0)


def _timestamp(value: object) -> datetime | None:
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    return None
