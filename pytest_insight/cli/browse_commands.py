"""``insight sessions`` and ``insight show``: look at what a store holds."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_insight.cli.options import (
    add_session_filters,
    filters_scope,
    open_selected_storage,
    positive_count,
)
from pytest_insight.cli.output import (
    Console,
    format_duration,
    format_time,
    outcome_summary,
    render_table,
    session_summary,
)
from pytest_insight.core.models import TestOutcome, TestSession
from pytest_insight.errors import NotFoundError

__all__ = ["add_parsers", "run_sessions", "run_show"]


def add_parsers(commands: argparse._SubParsersAction[Any], parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``sessions`` and ``show`` sub-commands to ``commands``."""
    listing = commands.add_parser(
        "sessions",
        parents=parents,
        help="list stored sessions, newest first",
        description="List stored sessions, newest first: id, SUT, start (UTC), duration and the "
        "number of tests by outcome.",
        epilog="example:\n  insight sessions --sut api --days 7 --limit 20",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_session_filters(listing, "list")
    listing.add_argument("--limit", metavar="N", type=positive_count, help="show at most the N newest")
    listing.set_defaults(handler=run_sessions)

    show = commands.add_parser(
        "show",
        parents=parents,
        help="show one session in detail",
        description="Show one session: metadata, tags, testing system, every test with its outcome "
        "and duration, and rerun groups.",
        epilog="example:\n  insight show 3f2a9c1e-run-42 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("session_id", metavar="ID", help="the session id (see 'insight sessions')")
    show.set_defaults(handler=run_show)


def run_sessions(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight sessions``; returns the exit code.

    Raises:
        ConfigurationError: the storage is not valid.
        StorageError: the store cannot be read.
    """
    storage = open_selected_storage(args)
    sessions = list(reversed(storage.load_sessions(filters_scope(args))))
    if args.limit is not None:
        sessions = sessions[: args.limit]
    console.result([session_summary(session) for session in sessions], lambda: _sessions_table(sessions))
    return 0


def _sessions_table(sessions: list[TestSession]) -> str:
    if not sessions:
        return "No sessions."
    counted = [session.outcome_counts() for session in sessions]
    outcomes = [outcome for outcome in TestOutcome if any(counts.get(outcome) for counts in counted)]
    headers = ["ID", "SUT", "START (UTC)", "DURATION", "TESTS", *(o.value.upper() for o in outcomes)]
    rows = [
        [
            session.session_id,
            session.sut_name,
            format_time(session.session_start_time),
            format_duration(session.session_duration),
            str(len(session.test_results)),
            *(str(counts.get(outcome, 0)) for outcome in outcomes),
        ]
        for session, counts in zip(sessions, counted, strict=True)
    ]
    return render_table(headers, rows, right=range(3, len(headers)))


def run_show(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight show``; returns the exit code.

    Raises:
        NotFoundError: no session has that id.
        StorageError: the store cannot be read.
    """
    storage = open_selected_storage(args)
    session = storage.get_session_by_id(args.session_id)
    if session is None:
        raise NotFoundError(f"no session {args.session_id!r} in {storage.uri}", uri=storage.uri)
    console.result(session.to_dict(), lambda: _details(session))
    return 0


def _mapping(title: str, values: dict[str, Any]) -> list[str]:
    if not values:
        return [f"{title}: none"]
    width = max(len(key) for key in values)
    return [f"{title}:", *(f"  {key:<{width}}  {value}" for key, value in sorted(values.items()))]


def _details(session: TestSession) -> str:
    lines = [
        f"Session:   {session.session_id}",
        f"SUT:       {session.sut_name}",
        f"Start:     {format_time(session.session_start_time)} UTC",
        f"Stop:      {format_time(session.session_stop_time)} UTC",
        f"Duration:  {format_duration(session.session_duration)}",
        f"Outcomes:  {outcome_summary(session.outcome_counts())}",
        *_mapping("Tags", session.session_tags),
        *_mapping("Testing system", session.testing_system),
        f"Tests ({len(session.test_results)}):",
    ]
    if session.test_results:
        rows = [
            [result.outcome.value, format_duration(result.duration), result.nodeid]
            for result in session.test_results
        ]
        table = render_table(["OUTCOME", "DURATION", "NODE ID"], rows, right=[1])
        lines.extend(f"  {line}" for line in table.splitlines())
    if session.rerun_test_groups:
        lines.append(f"Reruns ({len(session.rerun_test_groups)}):")
        for group in session.rerun_test_groups:
            attempts = " -> ".join(test.outcome.value for test in group.tests)
            final = group.final_outcome.value if group.final_outcome else "none"
            lines.append(f"  {group.nodeid}: {attempts} (final: {final})")
    return "\n".join(lines)
