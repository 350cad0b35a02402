"""``insight regressions`` and ``insight trends``: what changed over time."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_insight.analysis.durations import SlowerTest, find_slower
from pytest_insight.analysis.flaky import find_flaky
from pytest_insight.analysis.reading import collect_history
from pytest_insight.analysis.regressions import Change, RunRef, find_changes
from pytest_insight.analysis.trends import daily_trends
from pytest_insight.cli.flaky_command import add_analysis_options
from pytest_insight.cli.options import add_session_filters, filters_scope, open_selected_storage
from pytest_insight.cli.output import Console, format_duration, format_time, plural, render_table

__all__ = ["add_parsers", "run_regressions", "run_trends"]


def add_parsers(commands: argparse._SubParsersAction[Any], parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``regressions`` and ``trends`` sub-commands to ``commands``."""
    parser = commands.add_parser(
        "regressions",
        parents=parents,
        help="tests that started failing or got slower, and tests that were fixed",
        description="Outcome regressions (last good and first bad run and commit), duration "
        "regressions (a lasting jump of the median), and fixes, listed apart. Flaky tests are "
        "left out (see 'insight flaky').",
        epilog="example:\n  insight regressions --sut api --days 14",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_analysis_options(parser, "look at")
    parser.set_defaults(handler=run_regressions)
    trends = commands.add_parser(
        "trends",
        parents=parents,
        help="pass rate, suite duration, failing and flaky tests per SUT and day",
        description="Per SUT and UTC day: sessions, pass rate, median suite duration, and how many "
        "tests failed (and how many of those are known flaky).",
        epilog="example:\n  insight trends --sut api --days 30",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_session_filters(trends, "count")
    trends.set_defaults(handler=run_trends)


def _ref(ref: RunRef) -> dict[str, str]:
    return {"session_id": ref.session_id, "commit": ref.commit, "start": ref.start.isoformat()}


def _where(ref: RunRef) -> str:
    return f"{ref.commit[:12] or ref.session_id} ({format_time(ref.start)})"


def _change(change: Change) -> dict[str, Any]:
    return {
        "sut_name": change.sut_name,
        "nodeid": change.nodeid,
        "before": _ref(change.before),
        "after": _ref(change.after),
        "still": change.still,
        "runs_since": change.runs_since,
        "failure": change.failure,
    }


def _slower(test: SlowerTest) -> dict[str, Any]:
    return {
        "sut_name": test.sut_name,
        "nodeid": test.nodeid,
        "baseline_seconds": test.baseline,
        "recent_seconds": test.recent,
        "ratio": test.ratio,
        "score": test.score,
        "last_fast": _ref(test.last_fast),
        "first_slow": _ref(test.first_slow),
        "runs_since": test.runs_since,
    }


def run_regressions(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight regressions``; returns the exit code.

    Raises:
        ConfigurationError: the storage is not valid.
        StorageError: the store cannot be read.
    """
    history = collect_history(open_selected_storage(args, console), filters_scope(args))
    regressions, fixes = find_changes(history, min_runs=args.min_runs)
    slower = find_slower(history)
    data = {
        "sessions": len(history.sessions),
        "regressions": [_change(change) for change in regressions],
        "slower": [_slower(test) for test in slower],
        "fixes": [_change(change) for change in fixes],
    }

    def changes(title: str, found: list[Change], state: str) -> list[str]:
        lines = [f"\n{title} ({len(found)}):"]
        if not found:
            return [*lines, "  none"]
        rows = [
            [_where(c.before), _where(c.after), "yes" if c.still else "no", str(c.runs_since), c.nodeid]
            for c in found
        ]
        table = render_table(
            [
                "LAST GOOD" if state == "failing" else "LAST BAD",
                "FIRST BAD" if state == "failing" else "FIRST GOOD",
                f"STILL {state.upper()}",
                "RUNS",
                "NODE ID",
            ],
            rows,
            right=[3],
        )
        return lines + [f"  {line}" for line in table.splitlines()]

    def text() -> str:
        lines = [f"{plural(len(history.sessions), 'session')}"]
        lines += changes("Outcome regressions", regressions, "failing")
        lines.append(f"\nDuration regressions ({len(slower)}):")
        if not slower:
            lines.append("  none")
        else:
            rows = [
                [
                    format_duration(t.baseline),
                    format_duration(t.recent),
                    f"{t.ratio:.1f}x",
                    _where(t.first_slow),
                    t.nodeid,
                ]
                for t in slower
            ]
            table = render_table(["BEFORE", "NOW", "RATIO", "FIRST SLOW", "NODE ID"], rows, right=range(3))
            lines += [f"  {line}" for line in table.splitlines()]
        lines += changes("Fixes", fixes, "passing")
        return "\n".join(lines)

    console.result(data, text)
    return 0


def run_trends(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight trends``; returns the exit code.

    Raises:
        ConfigurationError: the storage is not valid.
        StorageError: the store cannot be read.
    """
    history = collect_history(open_selected_storage(args, console), filters_scope(args))
    flaky = {(test.sut_name, test.nodeid) for test in find_flaky(history)}
    trends = daily_trends(history, flaky)
    data = {
        "days": [
            {
                "sut_name": t.sut_name,
                "day": t.day.isoformat(),
                "sessions": t.sessions,
                "passed": t.passed,
                "failed": t.failed,
                "pass_rate": t.pass_rate,
                "median_duration": t.median_duration,
                "failing_tests": t.failing_tests,
                "flaky_tests": t.flaky_tests,
            }
            for t in trends
        ]
    }
    rows = [
        [
            t.sut_name,
            t.day.isoformat(),
            str(t.sessions),
            f"{100 * t.pass_rate:.1f}%",
            format_duration(t.median_duration),
            str(t.failing_tests),
            str(t.flaky_tests),
        ]
        for t in trends
    ]
    headers = ["SUT", "DAY", "SESSIONS", "PASS RATE", "SUITE", "FAILING", "FLAKY"]
    console.result(data, render_table(headers, rows, right=range(2, 7)) if rows else "no sessions")
    return 0
