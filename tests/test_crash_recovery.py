"""``insight import`` and ``insight clear`` SIGKILLed at random moments lose nothing and re-run cleanly.

Each run forks the real CLI (``pytest_insight.cli.main.main``) from a warm
"zygote" process, so a run costs a fork, not an interpreter start. The zygote
waits for the child's exit through a pidfd for a random delay (drawn
uniformly over 1.2 times an uninterrupted run, measured first) and SIGKILLs
it if it is still running, so kills land everywhere: before the first
commit, between batches, inside a commit's roll-forward, after the end. The
test process itself never sleeps. The zygote turns fsync off: it guards
against power loss, not against a killed process (the page cache survives
that), and costs most of a run's time.

Runs are chained on one store: up to ``KILLS_PER_CHAIN`` killed runs (the
first, then killed re-runs), then a re-run that completes. After every run
the store is opened as a reader opens it and must hold whole batches only
(an import commits every ``DEFAULT_BATCH_SIZE`` sessions atomically; a local
clear is one transaction); the completing re-run's statistics must say it
finished the job from the state it found, with no duplicates.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pytest_insight.core.storage import InMemoryStorage, JSONStorage, Storage
from pytest_insight.exchange.operations import DEFAULT_BATCH_SIZE
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.local.store import LocalBackend
from tests.conftest import BASE_TIME, build_session
from tests.s3servers import S3Target

pytestmark = pytest.mark.slow

SESSIONS = 1000
TRIALS = 50
KILLS_PER_CHAIN = 5
REPO = Path(__file__).resolve().parents[1]

ZYGOTE = r"""
import json, os, select, signal, sys, time
from pytest_insight.cli.main import main
import pytest_insight.exchange.operations, pytest_insight.storage.s3
from pytest_insight.storage.local.store import LocalBackend

# fsync guards against power loss, not a killed process (the page cache survives it): skip it for speed
LocalBackend.__init__.__kwdefaults__["durable"] = False

for line in sys.stdin:
    job = json.loads(line)
    started = time.perf_counter()
    # opened before the fork: a child killed at once still leaves its (empty) output file
    out = os.open(job["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.dup2(out, 1)
            os.dup2(out, 2)
            code = main(job["argv"])
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    os.close(out)
    if job["delay"] is not None:
        # wait for the child's exit, at most the delay, then kill it wherever it is
        child = os.pidfd_open(pid)
        if not select.select([child], [], [], job["delay"])[0]:
            os.kill(pid, signal.SIGKILL)
        os.close(child)
    _, status = os.waitpid(pid, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    seconds = time.perf_counter() - started
    result = {"killed": killed, "code": os.waitstatus_to_exitcode(status), "seconds": seconds}
    print(json.dumps(result), flush=True)
"""


class Zygote:
    """A warm interpreter that forks the CLI on request."""

    def __init__(self, workdir: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.workdir = workdir
        self.process = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.runs = 0

    def run(self, argv: list[str], delay: float | None) -> tuple[dict[str, Any], str]:
        """Run ``insight argv`` in a forked child, SIGKILLed after ``delay`` seconds (None: never)."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.runs += 1
        out = self.workdir / f"run-{self.runs}.out"
        self.process.stdin.write(json.dumps({"argv": argv, "delay": delay, "out": str(out)}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, "the zygote died"
        return json.loads(line), out.read_text()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(timeout=30) == 0
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def zygote(tmp_path: Path) -> Iterator[Zygote]:
    logs = tmp_path / "runs"
    logs.mkdir()
    process = Zygote(logs)
    try:
        yield process
    finally:
        process.close()


def make_sessions(tag: str, count: int = SESSIONS) -> list[TestSession]:
    return [
        build_session(
            f"{tag}-{n:04d}",
            sut_name=f"svc-{n % 3}",
            start=BASE_TIME + timedelta(days=n % 10, minutes=n),
            tests=2,
            reruns=n % 2 == 0,
        )
        for n in range(count)
    ]


def by_id(sessions: list[TestSession]) -> dict[str, TestSession]:
    found = {session.session_id: session for session in sessions}
    assert len(found) == len(sessions), "duplicate session ids in the store"
    return found


def run_trials(
    zygote: Zygote,
    prepare: Callable[[], list[str]],
    check: Callable[[str, Any], Any],
    check_completed: Callable[[Any, dict[str, Any]], None],
    seed: int,
) -> dict[str, Any]:
    """Kill ``TRIALS`` runs at random moments, in chains on one store, each chain ending in a complete run.

    ``prepare()`` sets up a fresh store and returns the command.
    ``check(when, before)`` inspects the store (after a kill, or after a run
    that ended on its own; ``before`` is the state the run started from, None
    for a fresh store) and returns its state. ``check_completed(state_before,
    result)`` checks the JSON result of a run that completed against the state
    it started from: so each chain checks that a re-run after up to
    ``KILLS_PER_CHAIN`` kills (of the first run or of earlier re-runs)
    finishes the job. Delays are drawn over 1.2 times the longest
    uninterrupted run seen, widened if the kills all land at one point.
    """
    argv = prepare()
    before = check("before calibration", None)
    result, output = zygote.run(argv, None)  # calibration: how long an uninterrupted run takes
    assert result["code"] == 0, output
    check_completed(before, json.loads(output))
    full = span = result["seconds"]
    rng = random.Random(seed)
    kills = completed = chains = 0
    states: Counter[Any] = Counter()
    state: Any = None
    in_a_row = KILLS_PER_CHAIN  # start with a fresh store
    while kills < TRIALS or in_a_row:
        if state is None:
            argv = prepare()
            state, in_a_row, chains = check("fresh", None), 0, chains + 1
        fresh = in_a_row == 0
        delay = rng.uniform(0, 1.2 * span) if in_a_row < KILLS_PER_CHAIN and kills < TRIALS else None
        result, output = zygote.run(argv, delay)
        after = check(f"chain {chains}, run {in_a_row + 1}", state)
        if result["killed"]:
            kills += 1
            in_a_row += 1
            states[after] += 1
            if kills % 10 == 0 and len(states) == 1:
                span *= 1.5  # the machine got slower than when calibrated: kills land too early
        else:
            assert result["code"] == 0, output
            check_completed(state, json.loads(output))
            completed += delay is not None
            if fresh:
                span = max(span, result["seconds"])
            after, in_a_row = None, 0
        state = after
    assert len(states) >= 2, f"every kill landed at the same point: {states}"
    return {
        "kills": kills,
        "chains": chains,
        "ended_before_the_kill": completed,
        "uninterrupted_seconds": round(full, 3),
        "kill_window_seconds": round(1.2 * span, 3),
        "states_after_kills": dict(states),
    }


def test_local_import_killed_at_random(tmp_path: Path, zygote: Zygote) -> None:
    sessions = make_sessions("imp")
    source = tmp_path / "source.jsonl.gz"
    InMemoryStorage(sessions).export_sessions(source)
    everything = by_id(sessions)
    with gzip.open(source, "rt", encoding="utf-8") as lines:  # the export orders by SUT and day
        order = [json.loads(line)["session_id"] for line in lines]
    assert sorted(order) == sorted(everything)
    whole_batches = {
        k: {sid: everything[sid] for sid in order[:k]} for k in range(0, SESSIONS + 1, DEFAULT_BATCH_SIZE)
    }
    store = tmp_path / "store"

    def prepare() -> list[str]:
        shutil.rmtree(store, ignore_errors=True)
        return ["import", str(source), "--storage", str(store), "--json"]

    def check(when: str, before: int | None) -> int:
        stored = by_id(JSONStorage(store).load_sessions())
        # batches commit in source order, so even after a killed re-run the store holds the first k
        # whole batches
        assert len(stored) in whole_batches, f"{when}: {len(stored)} sessions is not whole batches"
        assert stored == whole_batches[len(stored)], f"{when}: not the first {len(stored)} sessions"
        return len(stored)

    def check_completed(had: int, stats: dict[str, Any]) -> None:
        assert (stats["added"], stats["skipped"], stats["errors"]) == (SESSIONS - had, had, 0), stats
        assert check("completed", had) == SESSIONS

    figures = run_trials(zygote, prepare, check, check_completed, seed=61)
    print(figures)


def test_s3_import_into_local_store_killed_at_random(
    tmp_path: Path, zygote_s3: Zygote, seaweedfs_s3: S3Target
) -> None:
    # 2,500 sessions (5 batches): the download is quick enough that with 2 batches both commits
    # fell in the last 20 ms of a 0.4 s run, and random kills all landed before the first
    total = 2500
    sessions = make_sessions("s3i", total)
    uri = f"s3://{seaweedfs_s3.bucket}/team"
    assert InMemoryStorage(sessions).export_sessions(uri) == total
    bundles = len(seaweedfs_s3.keys("team/"))
    everything = by_id(sessions)
    store = tmp_path / "store"

    def prepare() -> list[str]:
        shutil.rmtree(store, ignore_errors=True)
        return ["import", uri, "--storage", str(store), "--json"]

    def check(when: str, before: int | None) -> int:
        stored = by_id(JSONStorage(store).load_sessions())
        assert all(everything[sid] == session for sid, session in stored.items()), when
        if not before:
            # from an empty store every batch adds 500 sessions (bundles arrive in completion order,
            # so which ones varies); a re-run's batches also hold sessions already stored
            assert len(stored) % DEFAULT_BATCH_SIZE == 0 or len(stored) == total, f"{when}: {len(stored)}"
        assert len(stored) >= (before or 0), f"{when}: {len(stored)} after {before}"
        return len(stored)

    def check_completed(had: int, stats: dict[str, Any]) -> None:
        assert (stats["added"], stats["skipped"], stats["errors"]) == (total - had, had, 0), stats
        assert check("completed", had) == total

    figures = run_trials(zygote_s3, prepare, check, check_completed, seed=62)
    print({"bundles": bundles, **figures})


def test_local_clear_killed_at_random(tmp_path: Path, zygote: Zygote) -> None:
    sessions = make_sessions("clr")
    template = tmp_path / "template"
    JSONStorage(template).save_sessions(sessions)
    doomed = {s.session_id for s in sessions if s.sut_name == "svc-1"}
    kept = {sid: s for sid, s in by_id(sessions).items() if sid not in doomed}
    store = tmp_path / "store"

    def prepare() -> list[str]:
        if not store.exists():
            shutil.copytree(template, store)
        else:  # after a completed clear: put the cleared sessions back (cheaper than a fresh copy)
            assert check("before restoring", None) == 0
            Storage(LocalBackend(store, durable=False)).save_sessions(
                s for s in sessions if s.sut_name == "svc-1"
            )
        return ["clear", "--sut", "svc-1", "--storage", str(store), "--yes", "--json"]

    def check(when: str, before: int | None) -> int:
        stored = by_id(JSONStorage(store).load_sessions())
        left = stored.keys() & doomed
        assert {sid: s for sid, s in stored.items() if sid not in doomed} == kept, f"{when}: lost a session"
        assert left in (set(), doomed), f"{when}: a partial clear is visible ({len(left)} left)"
        return len(left)

    def check_completed(left: int, result: dict[str, Any]) -> None:
        assert result["cleared"] == left, result["cleared"]
        assert check("completed", left) == 0

    figures = run_trials(zygote, prepare, check, check_completed, seed=63)
    print(figures)


@pytest.fixture
def zygote_s3(tmp_path: Path, seaweedfs_s3: S3Target) -> Iterator[Zygote]:
    """A zygote started after ``seaweedfs_s3`` put the server's endpoint and keys in the environment."""
    logs = tmp_path / "runs-s3"
    logs.mkdir()
    process = Zygote(logs)
    try:
        yield process
    finally:
        process.close()
