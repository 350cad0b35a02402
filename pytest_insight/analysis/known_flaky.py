"""The plugin's end-of-run note: which of this run's failures are known to be flaky."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from pytest_insight.analysis.history import History
from pytest_insight.analysis.verdict import judge
from pytest_insight.core.facade import Storage, run_sync
from pytest_insight.errors import InsightError
from pytest_insight.model.sessions import TestOutcome, TestSession
from pytest_insight.storage.base import Scope

__all__ = ["default_since", "known_flaky", "known_flaky_async", "known_flaky_note", "note_for_run"]


def known_flaky(
    storage: Storage, sut_name: str, failed: Collection[str], *, since: datetime, min_runs: int = 5
) -> list[str]:
    """Those of ``failed`` (test ids) that the stored history of ``sut_name`` since ``since`` calls flaky.

    A test id is a node id, followed by the label for a subtest.

    Only the SUT's sessions in the window are read, and only the failed
    tests are judged.

    Raises:
        StorageError: the storage cannot be read.
    """
    return run_sync(known_flaky_async, storage, sut_name, failed, since, min_runs)


async def known_flaky_async(
    storage: Storage, sut_name: str, failed: Collection[str], since: datetime, min_runs: int = 5
) -> list[str]:
    """Async twin of :func:`known_flaky` (the plugin reads it under its publish deadline)."""
    from pytest_insight.analysis.reading import collect_history_async

    wanted = set(failed)
    history: History = await collect_history_async(storage, Scope(sut_name=sut_name, since=since))
    flaky = []
    for nodeid in sorted(wanted):
        test = history.tests.get((sut_name, nodeid))
        if test is None or test.runs < min_runs:
            continue
        if judge(test, history).kind == "flaky":
            flaky.append(nodeid)
    return flaky


def known_flaky_note(failed: Collection[str], flaky: Collection[str], shown: int = 3) -> str | None:
    """``2 of the 3 failures are known flaky: a, b``, or None when none is."""
    if not flaky:
        return None
    names = sorted(flaky)
    listed = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
    total = len(set(failed))
    verb = "is" if len(names) == 1 else "are"
    noun = "failure" if total == 1 else "failures"
    return f"pytest-insight: {len(names)} of the {total} {noun} {verb} known flaky: {listed}"


def default_since(now: datetime, days: int = 30) -> datetime:
    """The start of the window the note reads: ``days`` before ``now``."""
    return now - timedelta(days=days)


def note_for_run(storage: Storage, recorded: TestSession, *, days: int = 30) -> str | None:
    """The plugin's line for a run just recorded: its known flaky failures, read before it is saved.

    None when nothing failed or no failure is known flaky; a line saying so
    when the history cannot be read (the run itself is not affected).
    """
    failing = (TestOutcome.FAILED, TestOutcome.ERROR)
    failed = {r.test_id for r in recorded.test_results if r.outcome in failing}
    if not failed:
        return None
    since = default_since(recorded.session_start_time, days)
    try:
        flaky = known_flaky(storage, recorded.sut_name, failed, since=since)
    except (InsightError, OSError) as exc:
        return f"pytest-insight: could not read the history for known flaky tests: {exc}"
    return known_flaky_note(failed, flaky)
