"""A suite run eight times under ``-n 2`` by the real plugin: a test that fails only on one xdist
worker, and a subtest that flips while its test's other subtests pass. The real CLI names the worker
and judges the subtest as a test of its own, without calling its parent flaky.

Run ``n`` is on commit ``n // 2``. The suite's conftest makes the scheduling fixed: xdist's load
scheduler deals fewer than two tests a worker round robin, here over the workers in name order, and
``test_on_one_worker`` is dealt first on even runs (to ``gw0``) and second on odd ones (to ``gw1``),
where it fails. The subtest ``[part] (i=2)`` of ``test_parts`` fails on runs 1, 4 and 7, each time
its commit's other run passes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_insight.core.storage import JSONStorage
from tests.test_insight_real import insight_json

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("workers-subtests")]

RUNS = 8
SUBTEST_FAILS = (1, 4, 7)
PARTS = "test_suite.py::test_parts"
ONE_WORKER = "test_suite.py::test_on_one_worker"

SUITE = """
import os

RUN = int(os.environ["RUN"])


def test_on_one_worker():
    assert os.environ["PYTEST_XDIST_WORKER"] != "gw1", "port already in use"


def test_parts(subtests):
    for i in range(4):
        with subtests.test(msg="part", i=i):
            assert not (i == 2 and RUN in (1, 4, 7)), "the race lost this time"


def test_steady():
    assert True
"""

CONFTEST = """
import os

from xdist.scheduler import LoadScheduling

RUN = int(os.environ["RUN"])


def pytest_collection_modifyitems(items):
    target = next(item for item in items if item.name == "test_on_one_worker")
    items.remove(target)
    items.insert(RUN % 2, target)


class InNameOrder(LoadScheduling):
    def schedule(self):
        self.node2pending = dict(sorted(self.node2pending.items(), key=lambda item: item[0].gateway.id))
        super().schedule()


def pytest_xdist_make_scheduler(config, log):
    return InNameOrder(config, log)
"""


def commit_of(run: int) -> str:
    """The commit sha of run ``run``."""
    return f"{run // 2:02d}" + "5eed" * 9 + "ab"


class Recorded:
    """The project and its store, written by the runs."""

    def __init__(self, project: Path, store: Path) -> None:
        self.project = project
        self.store = store
        self.sessions = sorted(JSONStorage(store).load_sessions(), key=lambda s: s.session_start_time)
        # the flipping subtest's id, as pytest labels it: ``[part] (i=2)``, and ``[part] (i='2')`` when
        # the report came from an xdist worker (pytest 9.2 applies saferepr to the kwargs once more
        # when it rebuilds the report on the controller)
        (self.flipping,) = (
            r.test_id for r in self.sessions[1].test_results if r.subtest and r.outcome == "failed"
        )

    def insight(self, *args: str) -> Any:
        """Run ``insight ARGS --json --storage STORE``; return the parsed output."""
        return insight_json(self.store, *args)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    project = tmp_path_factory.mktemp("project")
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "conftest.py").write_text(CONFTEST)
    (project / "test_suite.py").write_text(SUITE)
    store = project / "store"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "GITHUB_"))}
    env.update(PYTEST_INSIGHT_HOME=str(project / "home"))
    for run in range(RUNS):
        done = subprocess.run(
            [
                sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2",
                "--insight", "--insight-sut", "demo", "--insight-storage", str(store),
                "--insight-tag", f"commit={commit_of(run)}", "--no-insight-flaky-note",
            ],
            cwd=project,
            env={**env, "RUN": str(run)},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == (1 if run % 2 or run in SUBTEST_FAILS else 0), done.stdout + done.stderr
        assert "pytest-insight: saved session" in done.stdout
    return Recorded(project, store)


def test_each_result_names_the_worker_that_ran_it(recorded: Recorded) -> None:
    assert len(recorded.sessions) == RUNS
    assert recorded.flipping.startswith(f"{PARTS} [part] (i=")
    for run, session in enumerate(recorded.sessions):
        workers = {result.test_id: result.worker for result in session.test_results}
        assert set(workers.values()) == {"gw0", "gw1"}
        assert workers[ONE_WORKER] == ("gw1" if run % 2 else "gw0")
        assert workers[recorded.flipping] == workers[PARTS]  # a subtest runs where its test does


def test_flaky_names_the_worker_and_judges_the_subtest_apart_from_its_test(recorded: Recorded) -> None:
    found = recorded.insight("flaky")
    by_name = {test["nodeid"]: test for test in found["flaky"]}
    assert set(by_name) == {ONE_WORKER, recorded.flipping}  # neither test_parts nor its steady subtests
    worker = by_name[ONE_WORKER]
    assert (worker["runs"], worker["failures"], worker["evidence"]) == (RUNS, RUNS // 2, "same commit")
    assert worker["correlations"] == [{"key": "worker", "value": "gw1", "failures": 4, "runs_elsewhere": 4}]
    subtest = by_name[recorded.flipping]
    assert (subtest["runs"], subtest["failures"], subtest["recent"]) == (RUNS, 3, "PFPPFPPF")
    assert set(subtest["mixed_commits"]) == {commit_of(run) for run in SUBTEST_FAILS}
    assert subtest["correlations"] == []  # its failures were on both workers


def test_the_text_output_says_which_worker_the_failures_ran_on(recorded: Recorded) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_insight", "flaky", "--storage", str(recorded.store)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert f"{ONE_WORKER}:\n" in done.stdout
    assert "fails only with worker=gw1 (4 runs elsewhere all passed)" in done.stdout
    assert recorded.flipping in done.stdout


def test_summary_lists_the_same_flaky_tests(recorded: Recorded) -> None:
    found = recorded.insight("summary")
    assert {entry["nodeid"] for entry in found["flaky"]} == {ONE_WORKER, recorded.flipping}


def test_the_parent_of_a_flipping_subtest_is_neither_regressed_nor_newly_failing(recorded: Recorded) -> None:
    changes = recorded.insight("regressions")
    assert changes["regressions"] == changes["fixes"] == []
    diff = recorded.insight("diff", "--base", commit_of(2)[:8], "--head", commit_of(6)[:8])
    # commit 1 passed the subtest twice, commit 3's second run failed it: newly failing, its test not
    assert [entry["nodeid"] for entry in diff["newly_failing"]] == [recorded.flipping]
