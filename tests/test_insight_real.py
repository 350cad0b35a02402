"""The real plugin records a suite run ten times in CI style; the real CLI tells its tests apart."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.real_suite import RUNS, SUITE, commit_of, run_suite

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("real-suite")]


class Recorded:
    """The project, its store and the output of each run."""

    def __init__(self, project: Path, store: Path, outputs: list[str]) -> None:
        self.project = project
        self.store = store
        self.outputs = outputs

    def insight(self, *args: str) -> Any:
        """Run ``insight ARGS --json --storage STORE``; return the parsed output."""
        return insight_json(self.store, *args)


def insight_json(store: Path, *args: str) -> Any:
    """Run ``insight ARGS --json --storage STORE`` as a user does; return the parsed output."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest_insight", *args, "--json", "--storage", str(store)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    project = tmp_path_factory.mktemp("project")
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_app.py").write_text(SUITE)
    store = project / "store"
    outputs = []
    for run in range(RUNS):
        done = run_suite(project, store, run)
        assert done.returncode in (0, 1), done.stdout + done.stderr
        assert "pytest-insight: saved session" in done.stdout
        outputs.append(done.stdout)
    return Recorded(project, store, outputs)


def test_flaky_is_found_with_the_same_commits_mixed_outcomes_and_rerun_recoveries(recorded: Recorded) -> None:
    found = recorded.insight("flaky")
    by_name = {test["nodeid"]: test for test in found["flaky"]}
    assert set(by_name) == {"test_app.py::test_flaky", "test_app.py::test_retried"}
    retried = by_name["test_app.py::test_retried"]
    assert (retried["evidence"], retried["rerun_recoveries"], retried["failures"]) == ("rerun", 2, 0)
    assert retried["recent"] == "P" * RUNS
    flaky = by_name["test_app.py::test_flaky"]
    assert flaky["evidence"] == "same commit"
    assert set(flaky["mixed_commits"]) == {commit_of(run) for run in (1, 4, 7, 9)}
    assert (flaky["runs"], flaky["failures"]) == (RUNS, 4)
    assert flaky["recent"] == "PFPPFPPFPF"


def test_regressions_fixes_and_a_duration_jump_are_told_apart(recorded: Recorded) -> None:
    found = recorded.insight("regressions")
    regressions = {change["nodeid"]: change for change in found["regressions"]}
    assert set(regressions) == {"test_app.py::test_regressed"}
    change = regressions["test_app.py::test_regressed"]
    assert (change["before"]["commit"], change["after"]["commit"]) == (commit_of(5), commit_of(6))
    assert change["still"] is True
    assert "off by one" in change["failure"]
    assert [fix["nodeid"] for fix in found["fixes"]] == ["test_app.py::test_fixed"]
    assert found["fixes"][0]["after"]["commit"] == commit_of(4)
    slower = {test["nodeid"]: test for test in found["slower"]}
    assert set(slower) == {"test_app.py::test_slowed"}  # test_slow was always slow
    assert slower["test_app.py::test_slowed"]["first_slow"]["commit"] == commit_of(6)


def test_diff_of_two_commits_shows_the_new_failure_with_its_text(recorded: Recorded) -> None:
    found = recorded.insight("diff", "--base", commit_of(4)[:8], "--head", commit_of(6)[:8])
    newly = {entry["nodeid"]: entry for entry in found["newly_failing"]}
    assert "test_app.py::test_regressed" in newly
    assert "off by one" in newly["test_app.py::test_regressed"]["failure"]
    slower = [entry["nodeid"] for entry in found["slower"]]
    # two runs a side: only the jump is asserted, a loaded machine may stretch a steady test's two runs
    assert "test_app.py::test_slowed" in slower


def test_the_plugin_names_the_known_flaky_failure_at_the_end_of_a_run(recorded: Recorded) -> None:
    last = recorded.outputs[-1]
    assert "pytest-insight: 1 of the 2 failures is known flaky: test_app.py::test_flaky" in last
    # run 1 had no history yet: no note
    assert "known flaky" not in recorded.outputs[1]


def test_the_note_is_off_with_its_option(recorded: Recorded, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(recorded.store, store)
    done = run_suite(recorded.project, store, RUNS - 1, "--no-insight-flaky-note")
    assert "pytest-insight: saved session" in done.stdout
    assert "known flaky" not in done.stdout
