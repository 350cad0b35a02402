"""Fixtures shared by the whole suite."""

from __future__ import annotations

import itertools
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import pytest

from pytest_insight.core.storage import InMemoryStorage, JSONStorage, Storage
from pytest_insight.model.sessions import RerunTestGroup, TestOutcome, TestResult, TestSession
from pytest_insight.storage.local.store import LocalBackend

pytest_plugins = ["tests.faultproxy", "tests.s3servers"]

BASE_TIME = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


class MakeSession(Protocol):
    """Builds a realistic :class:`TestSession`; every call gets a fresh id unless one is given."""

    def __call__(
        self,
        session_id: str | None = None,
        *,
        sut_name: str = "checkout-api",
        start: datetime | None = None,
        tests: int = 4,
        reruns: bool = True,
        tags: dict[str, str] | None = None,
    ) -> TestSession: ...


def build_session(
    session_id: str,
    *,
    sut_name: str = "checkout-api",
    start: datetime = BASE_TIME,
    tests: int = 4,
    reruns: bool = True,
    tags: dict[str, str] | None = None,
) -> TestSession:
    """Build a session with varied outcomes, captured output and (optionally) a rerun group.

    Deterministic in its arguments, so subprocess workers and the parent can
    build the same session independently.
    """
    outcomes = [TestOutcome.PASSED, TestOutcome.FAILED, TestOutcome.SKIPPED, TestOutcome.XFAILED]
    results: list[TestResult] = []
    clock = start
    for index in range(tests):
        duration = 0.125 * (index + 1)
        outcome = outcomes[index % len(outcomes)]
        results.append(
            TestResult(
                nodeid=f"tests/test_{sut_name}.py::test_case_{index}[param-é]",
                outcome=outcome,
                start_time=clock,
                stop_time=clock + timedelta(seconds=duration),
                duration=duration,
                capstdout=f"stdout of case {index}\n",
                capstderr="warning: slow\n" if index % 3 == 0 else "",
                caplog="INFO starting" if index % 2 else "",
                longreprtext="AssertionError: 1 != 2" if outcome is TestOutcome.FAILED else "",
                has_warning=index % 3 == 0,
            )
        )
        clock += timedelta(seconds=duration)
    groups: list[RerunTestGroup] = []
    if reruns:
        nodeid = f"tests/test_{sut_name}.py::test_flaky"
        for outcome in (TestOutcome.RERUN, TestOutcome.PASSED):
            results.append(
                TestResult(nodeid, outcome, clock, clock + timedelta(seconds=0.5), 0.5, capstdout="try\n")
            )
            clock += timedelta(seconds=0.5)
        groups.append(RerunTestGroup(nodeid, [r for r in results if r.nodeid == nodeid]))
    return TestSession(
        sut_name=sut_name,
        session_id=session_id,
        session_start_time=start,
        session_stop_time=clock,
        session_duration=(clock - start).total_seconds(),
        session_tags=dict(tags) if tags is not None else {"branch": "main", "ci": "true"},
        testing_system={"hostname": "ci-runner-7", "python": "3.11.7", "cpus": 4},
        test_results=results,
        rerun_test_groups=groups,
    )


@pytest.fixture(scope="session", autouse=True)
def interruptible_children() -> Iterator[None]:
    """Let the processes tests start and interrupt (SIGINT, as Ctrl-C) receive it.

    A job started in the background without job control (``cmd &`` in a
    script) ignores SIGINT, and so does every process it starts: an import
    the test interrupts would then run to its end. The test run takes
    SIGINT's usual handler back for its duration.
    """
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if not ignored or threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(autouse=True)
def insight_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``PYTEST_INSIGHT_HOME`` at a fresh directory, so no test touches ~/.pytest_insight."""
    home = tmp_path_factory.mktemp("insight-home")
    monkeypatch.setenv("PYTEST_INSIGHT_HOME", str(home))
    for name in ("PYTEST_INSIGHT_PROFILE", "PYTEST_INSIGHT_STORAGE"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def make_session() -> MakeSession:
    """A factory of realistic sessions, one minute apart, with distinct ids."""
    counter = itertools.count()

    def make(
        session_id: str | None = None,
        *,
        sut_name: str = "checkout-api",
        start: datetime | None = None,
        tests: int = 4,
        reruns: bool = True,
        tags: dict[str, str] | None = None,
    ) -> TestSession:
        number = next(counter)
        return build_session(
            session_id if session_id is not None else f"session-{number:05d}",
            sut_name=sut_name,
            start=start if start is not None else BASE_TIME + timedelta(minutes=number),
            tests=tests,
            reruns=reruns,
            tags=tags,
        )

    return make


@pytest.fixture
def memory_storage() -> Storage:
    """An empty in-memory storage."""
    return InMemoryStorage(name="tests")


@pytest.fixture
def local_storage(tmp_path: Path) -> Storage:
    """An empty local JSON store in a temporary directory."""
    return JSONStorage(tmp_path / "store")


@pytest.fixture
def packed_storage(tmp_path: Path) -> Storage:
    """An empty local store that writes every commit of two sessions or more as a pack."""
    return Storage(LocalBackend(tmp_path / "store", pack_from=2))
