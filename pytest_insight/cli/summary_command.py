"""``insight summary``: the failing, slowest and flaky tests of what a store holds."""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from pytest_insight.cli.flaky_command import add_min_runs
from pytest_insight.cli.options import (
    add_session_filters,
    add_tag_filters,
    filters_scope,
    open_selected_storage,
    positive_count,
    tag_filter,
)
from pytest_insight.cli.output import Console, format_duration, outcome_summary, plural, render_table
from pytest_insight.model.sessions import TestOutcome, TestSession
from pytest_insight.query.summary import Summary, TestStats, subtest_counts, summarize

__all__ = ["add_parser", "run_summary"]


def add_parser(commands: argparse._SubParsersAction[Any], parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``summary`` sub-command to ``commands``."""
    summary = commands.add_parser(
        "summary",
        parents=parents,
        help="failing, slowest and flaky tests across sessions",
        description="Summarise the selected sessions: outcome counts, the tests that failed, "
        "the slowest tests and the flaky ones (as 'insight flaky' judges them), each per SUT.",
        epilog="example:\n  insight summary --sut api --days 30 --top 5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_session_filters(summary, "summarise")
    add_tag_filters(summary, "summarise")
    add_min_runs(summary)
    summary.add_argument("--top", metavar="N", type=positive_count, default=10, help="rows per list (10)")
    summary.set_defaults(handler=run_summary)


def run_summary(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight summary``; returns the exit code.

    Statistics are kept per SUT: the same node id in two projects is two tests.
    Each ranked test is labelled with its SUT, and the human output gets a SUT
    column when more than one SUT is selected.

    Raises:
        ConfigurationError: the storage is not valid.
        StorageError: the store cannot be read.
    """
    wanted = tag_filter(args)
    by_sut: dict[str, list[TestSession]] = defaultdict(list)
    for session in open_selected_storage(args, console).load_sessions(filters_scope(args)):
        if wanted(session):
            by_sut[session.sut_name].append(session)
    found = {
        sut: summarize(sessions, args.top, min_runs=args.min_runs) for sut, sessions in sorted(by_sut.items())
    }
    outcomes: Counter[TestOutcome] = Counter()
    for summary in found.values():
        outcomes.update(summary.outcomes)
    subtests = subtest_counts(session for sessions in by_sut.values() for session in sessions)
    total = sum(summary.sessions for summary in found.values())
    failing = _ranked(found, lambda s: s.failing, lambda e: (-e.failed_runs, e.nodeid), args.top)
    slowest = _ranked(found, lambda s: s.slowest, lambda e: (-e.mean_duration, e.nodeid), args.top)
    flaky = _ranked(found, lambda s: s.flaky, lambda e: (-(e.failed_runs + e.reruns), e.nodeid), args.top)
    data = {
        "sessions": total,
        "suts": {sut: summary.sessions for sut, summary in found.items()},
        "outcomes": {outcome.value: n for outcome, n in outcomes.items()},
        "subtests": {outcome.value: n for outcome, n in subtests.items()},
        "failing": [_stats(sut, entry) for sut, entry in failing],
        "slowest": [_stats(sut, entry) for sut, entry in slowest],
        "flaky": [_stats(sut, entry) for sut, entry in flaky],
    }

    def text() -> str:
        lines = [f"{plural(total, 'session')}: {outcome_summary(dict(outcomes), subtests)}"]
        if len(found) > 1:
            lines[0] += f" ({', '.join(f'{sut} {n.sessions}' for sut, n in found.items())})"
        for title, entries in (("Failing", failing), ("Slowest", slowest), ("Flaky", flaky)):
            lines.append(f"\n{title} tests:")
            parts = title == "Slowest" and any(
                entry.total_setup or entry.total_teardown for _, entry in entries
            )
            lines.append(_table(entries, with_sut=len(found) > 1, parts=parts) if entries else "  none")
        return "\n".join(lines)

    console.result(data, text)
    return 0


def _ranked(
    found: dict[str, Summary],
    ranking: Callable[[Summary], list[TestStats]],
    key: Callable[[TestStats], Any],
    top: int,
) -> list[tuple[str, TestStats]]:
    """The ``top`` entries of one ranking over every SUT's, each with its SUT."""
    entries = [(sut, entry) for sut, summary in found.items() for entry in ranking(summary)]
    return sorted(entries, key=lambda item: (key(item[1]), item[0]))[:top]


def _stats(sut: str, entry: TestStats) -> dict[str, Any]:
    return {
        "sut_name": sut,
        "nodeid": entry.nodeid,
        "runs": entry.runs,
        "passed_runs": entry.passed_runs,
        "failed_runs": entry.failed_runs,
        "reruns": entry.reruns,
        "mean_duration": entry.mean_duration,
        "mean_setup": entry.mean_setup,
        "mean_teardown": entry.mean_teardown,
        "max_duration": entry.max_duration,
        "last_failure": entry.last_failure.isoformat() if entry.last_failure else None,
        "last_failed_session": entry.last_failed_session or None,
        "last_error": entry.last_error or None,
    }


def _table(entries: list[tuple[str, TestStats]], *, with_sut: bool, parts: bool = False) -> str:
    """Ranked tests; with ``parts``, the mean's setup and teardown shares beside it."""
    rows = [
        [
            *([sut] if with_sut else []),
            str(entry.runs),
            str(entry.failed_runs),
            str(entry.reruns),
            format_duration(entry.mean_duration),
            *([format_duration(entry.mean_setup), format_duration(entry.mean_teardown)] if parts else []),
            entry.nodeid,
        ]
        for sut, entry in entries
    ]
    numbers = ["RUNS", "FAILED", "RERUNS", "MEAN", *(["SETUP", "TEARDOWN"] if parts else [])]
    headers = [*(["SUT"] if with_sut else []), *numbers, "NODE ID"]
    first = 1 if with_sut else 0
    table = render_table(headers, rows, right=range(first, first + len(numbers)))
    return "\n".join(f"  {line}" for line in table.splitlines())
