"""Where the recorder finds a run's reports: pytest's terminal reporter, or a log of its own."""

from __future__ import annotations

import pytest

from pytest_insight.core.storage import JSONStorage
from pytest_insight.model.sessions import TestSession
from pytest_insight.plugin.recording import logged_reports

SUITE = """
import pytest

@pytest.fixture
def broken_setup():
    raise RuntimeError("setup fails")

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown fails")

def test_a():
    pass

def test_b():
    assert False

def test_c(broken_setup):
    pass

@pytest.mark.skip(reason="not today")
def test_d():
    pass

@pytest.mark.xfail(reason="known")
def test_e():
    assert False

def test_f(broken_teardown):
    pass

def test_g():
    pass
"""

# the run's order, a teardown error after its test's own result
EXPECTED = [
    ("test_suite.py::test_a", "passed"),
    ("test_suite.py::test_b", "failed"),
    ("test_suite.py::test_c", "error"),
    ("test_suite.py::test_d", "skipped"),
    ("test_suite.py::test_e", "xfailed"),
    ("test_suite.py::test_f", "passed"),
    ("test_suite.py::test_f", "error"),
    ("test_suite.py::test_g", "passed"),
]

# a reporter in pytest's place that files only what it shows, as a plugin's own reporter might
PARTIAL_REPORTER = """
import pytest
from _pytest.terminal import TerminalReporter

class Partial(TerminalReporter):
    def _add_stats(self, category, items):
        if category:
            super()._add_stats(category, items)

@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    standard = config.pluginmanager.getplugin("terminalreporter")
    if standard is not None:
        config.pluginmanager.unregister(standard)
        config.pluginmanager.register(Partial(config), "terminalreporter")
"""


def record(pytester: pytest.Pytester, *args: str) -> TestSession:
    pytester.makepyfile(test_suite=SUITE)
    store = pytester.path / "store"
    pytester.runpytest("--insight", "--insight-storage", str(store), *args)
    (session,) = JSONStorage(store).load_sessions()
    return session


def outcomes(session: TestSession) -> list[tuple[str, str]]:
    return [(result.nodeid, result.outcome.value) for result in session.test_results]


def assert_phase_times(session: TestSession) -> None:
    """Every test that ran has its setup's time, and its teardown's unless that failed."""
    ran = [r for r in session.test_results if r.nodeid.split("::")[1] not in ("test_c", "test_d")]
    assert all(r.setup_duration > 0 for r in ran if r.outcome.value != "error")
    assert all(r.teardown_duration > 0 for r in ran if r.nodeid != "test_suite.py::test_f")


def test_reports_come_from_pytests_terminal_reporter_in_run_order(pytester: pytest.Pytester) -> None:
    session = record(pytester)
    assert outcomes(session) == EXPECTED
    assert_phase_times(session)


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(("-p", "no:terminal"), id="no-terminal"),
        pytest.param(("-p", "partial"), id="reporter-replaced"),
    ],
)
def test_without_pytests_terminal_reporter_the_plugin_keeps_its_own_log(
    pytester: pytest.Pytester, setup: tuple[str, ...]
) -> None:
    pytester.makepyfile(partial=PARTIAL_REPORTER)
    pytester.syspathinsert()
    session = record(pytester, *setup)
    assert outcomes(session) == EXPECTED
    assert_phase_times(session)


PHASES_A = (("setup", 1.0), ("call", 2.0), ("teardown", 3.0))


def test_logged_reports_interleave_the_categories_by_stop_time() -> None:
    def report(nodeid: str, when: str, outcome: str, stop: float) -> pytest.TestReport:
        return pytest.TestReport(nodeid, ("x.py", 1, nodeid), {}, outcome, None, when, stop=stop)  # type: ignore[arg-type]

    setup_a, call_a, teardown_a = (report("x.py::a", when, "passed", stop) for when, stop in PHASES_A)
    setup_b, call_b = report("x.py::b", "setup", "passed", 4), report("x.py::b", "call", "failed", 5)
    stats: dict[str, list[object]] = {
        "failed": [call_b],
        "": [setup_a, teardown_a, setup_b],
        "passed": [call_a],
        "warnings": [object()],  # not a test report
    }
    assert logged_reports(stats) == [setup_a, call_a, teardown_a, setup_b, call_b]
