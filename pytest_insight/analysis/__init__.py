"""Insight into a test history: flaky tests, regressions and fixes, slower tests, trends, diffs.

::

    from pytest_insight.analysis import collect_history, find_flaky
    from pytest_insight.core.storage import get_storage_instance
    from pytest_insight.storage.scope import Scope

    history = collect_history(get_storage_instance(), Scope(sut_name="api"))
    for test in find_flaky(history, min_runs=5):
        print(test.nodeid, test.evidence, test.mixed_commits)

:func:`collect_history` streams any storage (local store or bucket prefix)
into a compact :class:`History`; every analysis reads that, so one read
answers them all. The records returned are frozen dataclasses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_insight.analysis.diff import Diff, DiffEntry, diff_sessions
    from pytest_insight.analysis.durations import SlowerTest, find_slower
    from pytest_insight.analysis.flaky import Correlation, FlakyTest, find_flaky, wilson_lower_bound
    from pytest_insight.analysis.history import History, SessionInfo, TestHistory
    from pytest_insight.analysis.reading import collect_history
    from pytest_insight.analysis.regressions import Change, RunRef, find_changes
    from pytest_insight.analysis.trends import DayTrend, daily_trends
    from pytest_insight.analysis.verdict import Verdict, judge

__all__ = [
    "collect_history",
    "History",
    "SessionInfo",
    "TestHistory",
    "find_flaky",
    "FlakyTest",
    "Correlation",
    "wilson_lower_bound",
    "find_changes",
    "Change",
    "RunRef",
    "find_slower",
    "SlowerTest",
    "daily_trends",
    "DayTrend",
    "diff_sessions",
    "Diff",
    "DiffEntry",
    "judge",
    "Verdict",
]

# Where each name lives: a submodule is imported on first use, so that the plugin's known-flaky
# note, which needs the history and the verdict only, does not load every analysis.
_HOMES = {
    "Diff": "diff",
    "DiffEntry": "diff",
    "diff_sessions": "diff",
    "SlowerTest": "durations",
    "find_slower": "durations",
    "Correlation": "flaky",
    "FlakyTest": "flaky",
    "find_flaky": "flaky",
    "wilson_lower_bound": "flaky",
    "History": "history",
    "SessionInfo": "history",
    "TestHistory": "history",
    "collect_history": "reading",
    "Change": "regressions",
    "RunRef": "regressions",
    "find_changes": "regressions",
    "DayTrend": "trends",
    "daily_trends": "trends",
    "Verdict": "verdict",
    "judge": "verdict",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
