"""``insight summary``: the failing, slowest and flaky tests of what a store holds."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_insight.cli.options import (
    add_session_filters,
    filters_scope,
    open_selected_storage,
    positive_count,
)
from pytest_insight.cli.output import Console, format_duration, outcome_summary, plural, render_table
from pytest_insight.core.summary import TestStats, summarize

__all__ = ["add_parser", "run_summary"]


def add_parser(commands: argparse._SubParsersAction[Any], parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``summary`` sub-command to ``commands``."""
    summary = commands.add_parser(
        "summary",
        parents=parents,
        help="failing, slowest and flaky tests across sessions",
        description="Summarise the selected sessions: outcome counts, the tests that failed, "
        "the slowest tests and the flaky ones (rerun, or both passed and failed).",
        epilog="example:\n  insight summary --sut api --days 30 --top 5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_session_filters(summary, "summarise")
    summary.add_argument("--top", metavar="N", type=positive_count, default=10, help="rows per list (10)")
    summary.set_defaults(handler=run_summary)


def run_summary(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight summary``; returns the exit code.

    Raises:
        ConfigurationError: the storage is not valid.
        StorageError: the store cannot be read.
    """
    found = summarize(open_selected_storage(args).load_sessions(filters_scope(args)), args.top)
    data = {
        "sessions": found.sessions,
        "outcomes": {outcome.value: n for outcome, n in found.outcomes.items()},
        "failing": [_stats(entry) for entry in found.failing],
        "slowest": [_stats(entry) for entry in found.slowest],
        "flaky": [_stats(entry) for entry in found.flaky],
    }

    def text() -> str:
        lines = [f"{plural(found.sessions, 'session')}: {outcome_summary(found.outcomes)}"]
        for title, entries in (
            ("Failing", found.failing),
            ("Slowest", found.slowest),
            ("Flaky", found.flaky),
        ):
            lines.append(f"\n{title} tests:")
            lines.append(_table(entries) if entries else "  none")
        return "\n".join(lines)

    console.result(data, text)
    return 0


def _stats(entry: TestStats) -> dict[str, Any]:
    return {
        "nodeid": entry.nodeid,
        "runs": entry.runs,
        "passed_runs": entry.passed_runs,
        "failed_runs": entry.failed_runs,
        "reruns": entry.reruns,
        "mean_duration": entry.mean_duration,
        "max_duration": entry.max_duration,
    }


def _table(entries: list[TestStats]) -> str:
    rows = [
        [
            str(entry.runs),
            str(entry.failed_runs),
            str(entry.reruns),
            format_duration(entry.mean_duration),
            entry.nodeid,
        ]
        for entry in entries
    ]
    table = render_table(["RUNS", "FAILED", "RERUNS", "MEAN", "NODE ID"], rows, right=range(4))
    return "\n".join(f"  {line}" for line in table.splitlines())
