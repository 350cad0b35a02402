"""``insight flaky``: the flaky tests, with their evidence, confidence and where they fail."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_insight.analysis.flaky import FlakyTest, find_flaky
from pytest_insight.analysis.reading import collect_history
from pytest_insight.cli.options import (
    add_session_filters,
    filters_scope,
    open_selected_storage,
    positive_count,
)
from pytest_insight.cli.output import Console, format_time, plural, render_table

__all__ = ["add_analysis_options", "add_min_runs", "add_parser", "flaky_record", "run_flaky"]


def add_analysis_options(parser: argparse.ArgumentParser, verb: str) -> None:
    """Add the session filters and ``--min-runs``."""
    add_session_filters(parser, verb)
    add_min_runs(parser)


def add_min_runs(parser: argparse.ArgumentParser) -> None:
    """Add ``--min-runs``: how many runs a test needs before it is judged flaky."""
    parser.add_argument(
        "--min-runs",
        metavar="N",
        type=positive_count,
        default=5,
        help="judge only tests with at least N passing or failing runs (5)",
    )


def add_parser(commands: argparse._SubParsersAction[Any], parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``flaky`` sub-command to ``commands``."""
    parser = commands.add_parser(
        "flaky",
        parents=parents,
        help="flaky tests, with evidence and confidence",
        description="List the tests that both pass and fail on the same code: recovered on a rerun, "
        "both outcomes on one commit, or flipping back and forth. A test that broke and stayed "
        "broken, or was fixed, is not flaky (see 'insight regressions').",
        epilog="example:\n  insight flaky --sut api --days 30 --min-runs 10",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_analysis_options(parser, "look at")
    parser.set_defaults(handler=run_flaky)


def run_flaky(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight flaky``; returns the exit code.

    Raises:
        ConfigurationError: the storage is not valid.
        StorageError: the store cannot be read.
    """
    history = collect_history(open_selected_storage(args, console), filters_scope(args))
    found = find_flaky(history, min_runs=args.min_runs)
    data = {"sessions": len(history.sessions), "flaky": [flaky_record(test) for test in found]}

    def text() -> str:
        head = f"{plural(len(found), 'flaky test')} in {plural(len(history.sessions), 'session')}"
        if not found:
            return head
        rows = [
            [
                f"{test.failures}/{test.runs}",
                f"{test.flip_rate:.2f}",
                f"{test.confidence:.2f}",
                test.evidence,
                test.recent,
                test.nodeid,
            ]
            for test in found
        ]
        table = render_table(
            ["FAILED", "FLIPS", "CONF", "EVIDENCE", "RECENT", "NODE ID"], rows, right=range(3)
        )
        lines = [head + ":", table, ""]
        for test in found:
            notes = _notes(test)
            if notes:
                lines.append(f"{test.nodeid}:")
                lines.extend(f"  {note}" for note in notes)
        return "\n".join(lines).rstrip()

    console.result(data, text)
    return 0


def _notes(test: FlakyTest) -> list[str]:
    notes = []
    if test.rerun_recoveries:
        notes.append(f"passed on a rerun {plural(test.rerun_recoveries, 'time')}")
    if test.mixed_commits:
        shown = ", ".join(commit[:12] for commit in test.mixed_commits[-3:])
        notes.append(f"passed and failed on {plural(len(test.mixed_commits), 'commit')}: {shown}")
    notes.extend(str(correlation) for correlation in test.correlations)
    return notes


def flaky_record(test: FlakyTest) -> dict[str, Any]:
    """The JSON form of one flaky test."""
    return {
        "sut_name": test.sut_name,
        "nodeid": test.nodeid,
        "runs": test.runs,
        "failures": test.failures,
        "flips": test.flips,
        "flip_rate": test.flip_rate,
        "rerun_recoveries": test.rerun_recoveries,
        "mixed_commits": list(test.mixed_commits),
        "evidence": test.evidence,
        "confidence": test.confidence,
        "first_seen": test.first_seen.isoformat(),
        "last_seen": test.last_seen.isoformat(),
        "first_seen_text": format_time(test.first_seen),
        "recent": test.recent,
        "last_failure": test.last_failure,
        "correlations": [
            {"key": c.key, "value": c.value, "failures": c.failures, "runs_elsewhere": c.runs_elsewhere}
            for c in test.correlations
        ],
    }
