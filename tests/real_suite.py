"""A small pytest suite whose tests behave by run number, and a driver that runs it in CI style.

Run ``n`` (``RUN=n``) is on commit ``n // 2``: two CI runs a commit. The
tests: ``test_steady`` passes; ``test_flaky`` fails on runs 1, 4, 7 and 9
(each time its commit's other run passes); ``test_regressed`` fails from run 6
(commit 3) on; ``test_fixed`` passes from run 4 (commit 2) on;
``test_slowed`` takes 10 ms, then 300 ms from run 6 on; ``test_slow`` takes
300 ms every run (so that a busy machine's delays stay well under half of
it); ``test_retried`` fails its first attempt on runs 3 and 8 and passes
when pytest-rerunfailures runs it again (every run has ``--reruns 1``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["RUNS", "SUITE", "commit_of", "run_suite"]

RUNS = 10
SUITE = """
import os
import time
from pathlib import Path

RUN = int(os.environ["RUN"])


def test_steady():
    assert True


def test_flaky():
    assert RUN not in (1, 4, 7, 9), "the race lost this time"


def test_regressed():
    assert RUN < 6, "checkout total is off by one"


def test_fixed():
    assert RUN >= 4, "not implemented yet"


def test_slowed():
    time.sleep(0.3 if RUN >= 6 else 0.01)  # the workload whose duration is measured


def test_slow():
    time.sleep(0.3)


def test_retried():
    marker = Path(f"retried-{RUN}")  # in the project directory, fresh for each history
    first_attempt = not marker.exists()
    marker.touch()
    assert not (first_attempt and RUN in (3, 8)), "connection reset"
"""


def commit_of(run: int) -> str:
    """The commit sha of run ``run``."""
    return f"{run // 2:02d}" + "c0ffee" * 6 + "ab"


def run_suite(project: Path, store: Path, run: int, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run the suite once, as CI run ``run`` would, recording to ``store``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "GITHUB_"))}
    env.update(
        RUN=str(run),
        GITHUB_ACTIONS="true",
        GITHUB_SHA=commit_of(run),
        GITHUB_REF_NAME="main",
        GITHUB_RUN_ID=str(1000 + run),
        PYTEST_INSIGHT="1",
        PYTEST_INSIGHT_SUT="demo",
        PYTEST_INSIGHT_STORAGE=str(store),
        PYTEST_INSIGHT_HOME=str(project / "home"),
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--reruns", "1", *extra],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
