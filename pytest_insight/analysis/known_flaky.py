"""The plugin's end-of-run note: which of this run's failures are known to be flaky."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from pytest_insight.analysis.history import History
from pytest_insight.analysis.verdict import judge
from pytest_insight.core.facade import Storage, run_sync
from pytest_insight.storage.scope import Scope

__all__ = ["default_since", "known_flaky", "known_flaky_async", "known_flaky_note"]


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

    wanted = frozenset(failed)
    scope = Scope(sut_name=sut_name, since=since)
    history: History = await collect_history_async(storage, scope, only=wanted)
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
