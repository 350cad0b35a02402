"""A writer SIGKILLed at a random moment loses nothing it committed and leaves a usable store.

Each trial starts a worker that saves sessions (single saves and batches,
as session files or packs) and prints each batch's ids once its save has
returned; the test kills it after reading a random number of lines. Trials
run in chains on one store, so a later worker may itself be killed while
recovering what an earlier one left behind.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from pytest_insight.core.storage import JSONStorage
from pytest_insight.model.sessions import TestSession
from tests.conftest import BASE_TIME, build_session

CHAINS = 3
TRIALS_PER_CHAIN = 9
STORES_PER_TRIAL = 2
REPO = Path(__file__).resolve().parents[1]

WORKER = """
import random, sys
import anyio
from pytest_insight.core.storage import Storage
from pytest_insight.storage.local.store import LocalBackend
from tests.test_local_crash import session_for

store = Storage(LocalBackend(sys.argv[1], pack_from=int(sys.argv[4])))
prefix, rng = sys.argv[2], random.Random(sys.argv[3])

def batch(number):
    size = 1 if rng.random() < 0.5 else rng.randint(2, 12)
    return [session_for(f"{prefix}-b{number}-{n}of{size}") for n in range(size)]

async def main():
    # Each batch is built before the previous one is announced, so that a kill
    # sent on reading a line lands inside the next save, not in session building.
    sessions = batch(0)
    for number in range(1, 10_000):
        if len(sessions) == 1:
            await store.save_session_async(sessions[0])
        else:
            await store.save_sessions_async(sessions)
        saved, sessions = sessions, batch(number)
        print(" ".join(s.session_id for s in saved), flush=True)

anyio.run(main)
"""


def session_for(session_id: str) -> TestSession:
    """The session a worker saves under this id (the parent rebuilds it to compare)."""
    number = sum(session_id.encode())
    return build_session(
        session_id,
        sut_name=f"sut-{number % 3}",
        start=BASE_TIME + timedelta(seconds=number),
        tests=number % 25,
        reruns=number % 2 == 0,
    )


def start_worker(root: Path, prefix: str, seed: int) -> subprocess.Popen[str]:
    pack_from = (2, 6, 1000)[seed % 3]  # batches of 2-12: packs, some of each, session files only
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(root), prefix, str(seed), str(pack_from)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def run_trial(roots: Sequence[Path], prefix: str, seed: int) -> list[list[str]]:
    """Run one worker per store; SIGKILL them all after a random number of lines from any of them.

    A line from one worker says nothing about where the others are, so each
    kill lands at a random point of the others' saves (the worker whose line
    triggered the kill is just past a commit).

    Returns:
        For each store, every id its worker announced as committed.
    """
    rng = random.Random(seed)
    announced: queue.SimpleQueue[str] = queue.SimpleQueue()
    lines: list[list[str]] = [[] for _ in roots]
    workers = [start_worker(root, f"{prefix}w{n}", seed * 10 + n) for n, root in enumerate(roots)]

    def read(worker: subprocess.Popen[str], into: list[str]) -> None:
        assert worker.stdout is not None
        for line in worker.stdout:
            into.append(line)
            announced.put(line)

    readers = [
        threading.Thread(target=read, args=pair, daemon=True) for pair in zip(workers, lines, strict=True)
    ]
    try:
        for reader in readers:
            reader.start()
        for _ in range(rng.randint(0, 12)):
            announced.get(timeout=60)
    finally:
        for worker in workers:
            worker.kill()
        for worker, reader in zip(workers, readers, strict=True):
            worker.wait()
            reader.join()  # the pipe drains what was printed before the kill landed
            assert worker.stdout is not None
            worker.stdout.close()
    codes = [worker.returncode for worker in workers]
    assert codes == [-signal.SIGKILL] * len(workers), f"a worker ended on its own: {codes}"
    return [[sid for line in got if line.endswith("\n") for sid in line.split()] for got in lines]


def check_store(root: Path, committed: set[str]) -> list[TestSession]:
    """The store opens, holds every committed session intact, and no partial batch."""
    sessions = JSONStorage(root).load_sessions()
    by_id = {session.session_id: session for session in sessions}
    assert len(by_id) == len(sessions)
    assert committed <= by_id.keys(), f"lost: {sorted(committed - by_id.keys())[:5]}"
    batches: dict[str, set[str]] = defaultdict(set)
    for session_id, session in by_id.items():
        assert session == session_for(session_id), f"{session_id} differs from what was saved"
        batch, _, part = session_id.rpartition("-")
        batches[batch].add(part)
    for batch, parts in batches.items():
        size = int(next(iter(parts)).partition("of")[2])
        assert len(parts) == size, f"batch {batch} stored {len(parts)} of {size} sessions"
    return sessions


def run_chain(roots: Sequence[Path], chain: int) -> int:
    committed: list[set[str]] = [set() for _ in roots]
    for trial in range(TRIALS_PER_CHAIN):
        announced = run_trial(roots, f"c{chain}t{trial}", seed=chain * 1000 + trial)
        for root, done, new in zip(roots, committed, announced, strict=True):
            done.update(new)
            check_store(root, done)
    for n, (root, done) in enumerate(zip(roots, committed, strict=True)):
        store = JSONStorage(root)
        follow_up = session_for(f"c{chain}s{n}-follow-up-0of1")
        store.save_session(follow_up)
        assert store.get_session_by_id(follow_up.session_id) == follow_up
        check_store(root, done | {follow_up.session_id})
        assert list((root / "staging").iterdir()) == []
        assert (root / ".lock").is_file()
    return sum(len(done) for done in committed)


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    def chain(number: int) -> int:
        return run_chain([tmp_path / f"chain{number}-store{n}" for n in range(STORES_PER_TRIAL)], number)

    with ThreadPoolExecutor(max_workers=CHAINS) as pool:
        counts = list(pool.map(chain, range(CHAINS)))
    assert CHAINS * TRIALS_PER_CHAIN * STORES_PER_TRIAL >= 50  # killed workers
    assert sum(counts) > 0  # some trials did commit before their kill
