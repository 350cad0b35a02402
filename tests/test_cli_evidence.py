"""The evidence behind an answer: failure text in ``show``, tags and tag filters, per-SUT summaries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from pytest_insight.core.storage import JSONStorage
from tests.conftest import BASE_TIME, build_session

Run = Callable[..., subprocess.CompletedProcess[str]]
COMMIT = "4f9c2d81aa0e5b7c9d3e1f2a4b6c8d0e1f2a3b4c"


@pytest.fixture
def insight(insight_home: Path) -> Run:
    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTEST_INSIGHT_HOME": str(insight_home)}
        command = [sys.executable, "-m", "pytest_insight", *map(str, args)]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        assert "Traceback" not in result.stderr
        return result

    return run


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Two SUTs with the same test file names, on two branches and commits."""
    path = tmp_path / "store"
    sessions = [
        build_session("api-main", sut_name="api", tags={"branch": "main", "commit": COMMIT}),
        build_session(
            "api-feature",
            sut_name="api",
            start=BASE_TIME + timedelta(hours=1),
            tags={"branch": "feature/x", "commit": "0" * 40, "python": "3.12"},
        ),
        build_session(
            "web-main", sut_name="web", start=BASE_TIME + timedelta(hours=2), tags={"branch": "main"}
        ),
    ]
    JSONStorage(path).save_sessions(sessions)
    return path


def test_show_prints_the_end_of_each_failure(insight: Run, pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(
        """
        def helper(depth):
            if depth:
                return helper(depth - 1)
            lines = [1 + i for i in range(40)]
            assert lines[-1] == 0, f"the last line was {lines[-1]}"

        def test_deep():
            helper(6)

        def test_fine():
            pass
        """
    )
    store = tmp_path / "recorded"
    pytester.runpytest("--insight", "--insight-storage", str(store)).assert_outcomes(passed=1, failed=1)
    (session,) = JSONStorage(store).load_sessions()
    shown = insight("show", session.session_id, "--storage", store)
    assert shown.returncode == 0, shown.stderr
    failures = shown.stdout.split("Failures (1):\n", 1)[1]
    assert failures.startswith("  FAILED test_show_prints_the_end_of_each_failure.py::test_deep\n")
    assert "AssertionError: the last line was 40" in failures
    assert "lines above; all of it with --json" in failures
    full = json.loads(insight("show", session.session_id, "--storage", store, "--json").stdout)
    (failed,) = [result for result in full["test_results"] if result["outcome"] == "failed"]
    assert "def test_deep" in failed["longreprtext"]


def test_sessions_show_tags_and_filter_by_them(insight: Run, store: Path) -> None:
    listing = insight("sessions", "--storage", store)
    assert listing.returncode == 0, listing.stderr
    header, *rows = listing.stdout.splitlines()
    assert header.rstrip().endswith("TAGS")
    assert f"branch=main commit={COMMIT[:12]}" in rows[-1]

    def ids(*filters: str) -> list[str]:
        result = insight("sessions", "--storage", store, "--json", *filters)
        assert result.returncode == 0, result.stderr
        return [entry["session_id"] for entry in json.loads(result.stdout)]

    assert ids("--branch", "main") == ["web-main", "api-main"]
    assert ids("--commit", COMMIT[:7]) == ["api-main"]
    assert ids("--commit", COMMIT.upper()) == ["api-main"]
    assert ids("--tag", "python=3.12") == ["api-feature"]
    assert ids("--tag", "python=3.12", "--branch", "main") == []
    assert json.loads(insight("sessions", "--storage", store, "--json").stdout)[0]["tags"] == {
        "branch": "main"
    }
    short = insight("sessions", "--storage", store, "--commit", "4f9")
    assert (short.returncode, short.stderr.count("\n")) == (2, 1)
    assert "at least 7 characters" in short.stderr


def test_summary_keeps_suts_apart_and_names_the_last_failure(insight: Run, store: Path) -> None:
    result = insight("summary", "--storage", store, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["suts"] == {"api": 2, "web": 1}
    failing = {(entry["sut_name"], entry["nodeid"]): entry for entry in data["failing"]}
    assert set(failing) == {
        ("api", "tests/test_api.py::test_case_1[param-é]"),
        ("web", "tests/test_web.py::test_case_1[param-é]"),
    }
    api = failing["api", "tests/test_api.py::test_case_1[param-é]"]
    assert (api["runs"], api["failed_runs"]) == (2, 2)
    assert api["last_failed_session"] == "api-feature"
    assert api["last_error"] == "AssertionError: 1 != 2"

    text = insight("summary", "--storage", store).stdout
    assert text.startswith("3 sessions: ")
    assert "(api 2, web 1)" in text.splitlines()[0]
    assert "SUT" in text.split("Failing tests:\n", 1)[1].splitlines()[0]
    one = insight("summary", "--storage", store, "--sut", "web").stdout
    assert "SUT" not in one.split("Failing tests:\n", 1)[1].splitlines()[0]
    on_main = json.loads(insight("summary", "--storage", store, "--branch", "main", "--json").stdout)
    assert on_main["suts"] == {"api": 1, "web": 1}
