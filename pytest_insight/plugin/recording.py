"""The object registered for a recorded run: its hooks feed the recorder and publish the session.

It exists only in runs that record (and not on xdist workers); pytest calls
its hooks like a plugin module's.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import attrgetter
from typing import Any

import pytest

from pytest_insight.plugin import unrewritten_imports
from pytest_insight.plugin.publish import Published, publish
from pytest_insight.plugin.recorder import SessionRecorder, testing_system
from pytest_insight.plugin.settings import InsightSettings

__all__ = ["InsightPlugin"]


class InsightPlugin:
    """Records the run and saves it at the end; registered only when recording."""

    def __init__(self, config: pytest.Config, settings: InsightSettings) -> None:
        self.config = config
        self.settings = settings
        self.recorder: SessionRecorder | None = None
        self.published: Published | None = None
        self.terminal: pytest.TerminalReporter | None = None
        self.log: ReportLog | None = None

    @property
    def saved(self) -> bool:
        """Whether the session was saved."""
        return self.published is not None and self.published.saved

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Start the session clock, and keep the run's reports unless pytest's terminal reporter does."""
        self.recorder = SessionRecorder(
            self.settings.sut_name, tags=self.settings.tags, system=testing_system(pytest.__version__)
        )
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if type(terminal) is pytest.TerminalReporter:
            self.terminal = terminal
        else:  # -p no:terminal, or a plugin's reporter in its place: it may not keep them all
            self.log = ReportLog()
            self.config.pluginmanager.register(self.log, "insight-report-log")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """Record collection errors and modules skipped at collection."""
        if self.recorder is not None and not report.passed:
            self.recorder.add_report(report)

    def pytest_warning_recorded(self, warning_message: Any, when: str, nodeid: str, location: Any) -> None:
        """Mark the test that emitted a warning."""
        if self.recorder is not None:
            self.recorder.add_warning(nodeid)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Save the session; on failure note it and, if strict, fail the run."""
        if self.recorder is None or self.config.option.collectonly:
            return
        with _collector_paused(), unrewritten_imports(self.config):  # saving imports the storage layer
            self.recorder.add_reports(self._reports())
            recorded = self.recorder.build()
            redactor = self.settings.redactor()
            if self.settings.redact:
                redactor.session(recorded)
            redacted = f"; {redactor.summary()}" if redactor.total else ""
            self.published = publish(recorded, self.settings, redacted)
        if not self.published.saved and self.settings.strict and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def _reports(self) -> Sequence[pytest.TestReport]:
        if self.log is not None:
            return self.log.reports
        return logged_reports(self.terminal.stats) if self.terminal is not None else ()

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Print the one line saying where the session went, or why it did not."""
        if self.published is None:
            return
        if self.published.flaky_note is not None:
            terminalreporter.write_line(self.published.flaky_note, yellow=True)
        terminalreporter.write_line(self.published.line, red=not self.saved, green=self.saved)


class ReportLog:
    """Keeps every test report of a run whose terminal reporter is not pytest's own."""

    def __init__(self) -> None:
        self.reports: list[pytest.TestReport] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep one test report."""
        self.reports.append(report)


def logged_reports(stats: Mapping[str, Sequence[object]]) -> list[pytest.TestReport]:
    """The test reports among pytest's terminal reporter's ``stats``, in the order they were logged.

    pytest's reporter files every report it is given under its category
    (``""`` for a passing setup or teardown), in order; a report is logged
    right after it stops, so ordering by stop restores the run's order.
    Reading them at the end spares each test a hook call of ours, which in a
    suite of tests that take no time was a measurable share of the plugin's
    cost.
    """
    reports = [report for kept in stats.values() for report in kept if isinstance(report, pytest.TestReport)]
    reports.sort(key=_STOP)
    return reports


_STOP = attrgetter("stop")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the end of the run, as it was before.

    By then the process holds every item and report of the run; the objects
    made here (the results, and for the known-flaky note the tests' history)
    would set off full collections that walk all of them, 50 to 100 ms each
    in a run of 5,000 tests, to free nothing: none of these objects is in a
    reference cycle. What cycles there are are collected once it resumes.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
