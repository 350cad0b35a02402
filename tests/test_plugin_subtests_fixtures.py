"""Subtests and fixture time, recorded by the real plugin: counts as pytest's, times with their parts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_insight.core.storage import JSONStorage
from pytest_insight.model.sessions import TestOutcome, TestSession

SUBTESTS = """
import unittest

def test_parts(subtests):
    for i in range(5):
        with subtests.test(msg="part", i=i):
            assert i != 2

def test_plain():
    pass

class Legacy(unittest.TestCase):
    def test_each(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertNotEqual(i, 1)
"""

FIXTURES = """
import time
import pytest

@pytest.fixture
def slow_resource():
    time.sleep(0.3)
    yield
    time.sleep(0.2)

def test_fixture_heavy(slow_resource):
    pass

def test_quick():
    pass
"""


def record(pytester: pytest.Pytester, source: str) -> tuple[TestSession, dict[str, int]]:
    pytester.makepyfile(test_suite=source)
    store = pytester.path / "store"
    # -q: pytest 9 counts "N subtests passed" in its summary line only when not at default verbosity
    result = pytester.runpytest("-q", "--insight", "--insight-storage", str(store))
    (session,) = JSONStorage(store).load_sessions()
    line = result.stdout.lines[-1]
    counted = {name: int(n) for n, name in re.findall(r"(\d+) (subtests passed|failed|passed)", line)}
    return session, counted


def by_value(counts: dict[TestOutcome, int]) -> dict[str, int]:
    return {outcome.value: n for outcome, n in counts.items()}


def test_subtests_are_results_of_their_own_counted_as_pytest_counts_them(pytester: pytest.Pytester) -> None:
    session, pytests = record(pytester, SUBTESTS)
    assert pytests == {"failed": 3, "passed": 2, "subtests passed": 6}
    assert by_value(session.outcome_counts()) == {"failed": 3, "passed": 2}
    assert by_value(session.subtest_counts()) == {"passed": 6}
    labels = [(r.test_id, r.outcome.value) for r in session.test_results if r.subtest]
    assert ("test_suite.py::test_parts [part] (i=2)", "failed") in labels
    assert ("test_suite.py::Legacy::test_each (i=1)", "failed") in labels
    assert len(labels) == 8
    parents = [r for r in session.test_results if r.nodeid == "test_suite.py::test_parts" and not r.subtest]
    assert [r.outcome for r in parents] == [TestOutcome.FAILED]  # "contains 1 failed subtest", kept apart


def test_show_and_summary_display_subtests(pytester: pytest.Pytester, insight_home: Path) -> None:
    session, _ = record(pytester, SUBTESTS)
    env = {**os.environ, "PYTEST_INSIGHT_HOME": str(insight_home)}
    store = str(pytester.path / "store")

    def insight(*args: str) -> str:
        command = [sys.executable, "-m", "pytest_insight", *args, "--storage", store]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    shown = insight("show", session.session_id)
    assert "Outcomes:  2 passed, 3 failed, 6 subtests passed" in shown
    assert "test_suite.py::test_parts [part] (i=2)" in shown
    summary = json.loads(insight("summary", "--json"))
    assert summary["subtests"] == {"passed": 6}
    failing = {entry["nodeid"] for entry in summary["failing"]}
    assert failing == {
        "test_suite.py::test_parts",
        "test_suite.py::test_parts [part] (i=2)",
        "test_suite.py::Legacy::test_each (i=1)",
    }
    listing = json.loads(insight("sessions", "--json"))
    assert listing[0]["subtests"] == {"passed": 6}


def test_setup_and_teardown_time_is_recorded_ranked_and_shown(
    pytester: pytest.Pytester, insight_home: Path
) -> None:
    session, _ = record(pytester, FIXTURES)
    (heavy,) = [r for r in session.test_results if r.nodeid.endswith("test_fixture_heavy")]
    assert heavy.setup_duration >= 0.3
    assert heavy.teardown_duration >= 0.2
    assert heavy.duration < 0.1
    assert heavy.total_duration >= 0.5
    env = {**os.environ, "PYTEST_INSIGHT_HOME": str(insight_home)}
    command = [sys.executable, "-m", "pytest_insight", "summary", "--storage", str(pytester.path / "store")]
    text = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    slowest = text.split("Slowest tests:\n", 1)[1].splitlines()
    assert slowest[0].split() == ["RUNS", "FAILED", "RERUNS", "MEAN", "SETUP", "TEARDOWN", "NODE", "ID"]
    assert slowest[1].endswith("test_suite.py::test_fixture_heavy")  # ranked first by setup + call + teardown
    as_json = json.loads(
        subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, check=True).stdout
    )
    first = as_json["slowest"][0]
    assert first["mean_setup"] >= 0.3
    assert first["mean_teardown"] >= 0.2
    assert first["mean_duration"] >= first["mean_setup"] + first["mean_teardown"]


SUBTESTS_WITH_FIXTURE = """
import pytest

@pytest.fixture
def resource():
    yield

def test_parts(subtests, resource):
    for i in range(3):
        with subtests.test(msg="part", i=i):
            assert i != 1
"""


def test_a_tests_setup_and_teardown_time_are_its_own_not_its_subtests(pytester: pytest.Pytester) -> None:
    session, _ = record(pytester, SUBTESTS_WITH_FIXTURE)
    (own,) = [r for r in session.test_results if not r.subtest]
    parts = [r for r in session.test_results if r.subtest]
    assert len(parts) == 3
    assert own.setup_duration > 0
    assert own.teardown_duration > 0
    assert all(part.setup_duration == 0 and part.teardown_duration == 0 for part in parts)
