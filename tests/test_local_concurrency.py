"""Many processes saving into one local store at once lose nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_insight.core.storage import JSONStorage
from tests.conftest import build_session

PROCESSES = 16
SAVES = 200
REPO = Path(__file__).resolve().parents[1]

WORKER = """
import sys
from datetime import timedelta
from pytest_insight.core.storage import JSONStorage
from tests.conftest import BASE_TIME, build_session

store, worker, saves = JSONStorage(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()  # every worker starts saving at the same moment
for n in range(saves):
    store.save_session(build_session(f"w{worker}-{n}", start=BASE_TIME + timedelta(seconds=n), tests=2))
"""


def expected_session_ids() -> set[str]:
    return {f"w{worker}-{n}" for worker in range(PROCESSES) for n in range(SAVES)}


@pytest.mark.slow
def test_sixteen_processes_saving_at_once(tmp_path: Path) -> None:
    root = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(root), str(worker), str(SAVES)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for worker in range(PROCESSES)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline() == "ready\n"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.close()
        codes = [worker.wait(timeout=300) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            if worker.stdout is not None:
                worker.stdout.close()
    assert codes == [0] * PROCESSES
    sessions = JSONStorage(root).load_sessions()
    ids = [session.session_id for session in sessions]
    assert len(ids) == PROCESSES * SAVES
    assert set(ids) == expected_session_ids()
    probe = next(s for s in sessions if s.session_id == "w7-123")
    assert probe == build_session("w7-123", start=probe.session_start_time, tests=2)
    assert (root / ".lock").is_file()
    assert list((root / "staging").iterdir()) == []
