"""``insight sessions`` and ``insight show``: look at what a store holds."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_insight.cli.options import (
    add_session_filters,
    add_tag_filters,
    filters_scope,
    open_selected_storage,
    positive_count,
    tag_filter,
)
from pytest_insight.cli.output import (
    Console,
    format_duration,
    format_time,
    outcome_summary,
    render_table,
    session_summary,
)
from pytest_insight.errors import NotFoundError
from pytest_insight.model.sessions import TestOutcome, TestResult, TestSession

__all__ = ["add_parsers", "run_sessions", "run_show"]

_FAILING = frozenset({TestOutcome.FAILED, TestOutcome.ERROR})
_FAILURE_LINES = 15


def add_parsers(commands: argparse._SubParsersAction[Any], parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``sessions`` and ``show`` sub-commands to ``commands``."""
    listing = commands.add_parser(
        "sessions",
        parents=parents,
        help="list stored sessions, newest first",
        description="List stored sessions, newest first: id, SUT, start (UTC), duration, the "
        "number of tests by outcome, and the session's tags.",
        epilog="examples:\n  insight sessions --sut api --days 7 --limit 20\n"
        "  insight sessions --branch main --tag python=3.12",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_session_filters(listing, "list")
    add_tag_filters(listing, "list")
    listing.add_argument("--limit", metavar="N", type=positive_count, help="show at most the N newest")
    listing.set_defaults(handler=run_sessions)

    show = commands.add_parser(
        "show",
        parents=parents,
        help="show one session in detail",
        description="Show one session: metadata, tags, testing system, every test with its outcome "
        "and duration, the end of each failure's text, and rerun groups.",
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
    storage = open_selected_storage(args, console)
    wanted = tag_filter(args)
    scope = filters_scope(args)
    tagged = args.tag or args.branch is not None or args.commit is not None
    if args.limit is not None and not tagged:  # the newest N, without reading the others
        sessions = storage.newest_sessions(args.limit, scope)
    else:
        sessions = [session for session in reversed(storage.load_sessions(scope)) if wanted(session)]
        sessions = sessions[: args.limit] if args.limit is not None else sessions
    console.result([session_summary(session) for session in sessions], lambda: _sessions_table(sessions))
    return 0


def _sessions_table(sessions: list[TestSession]) -> str:
    if not sessions:
        return "No sessions."
    counted = [session.outcome_counts() for session in sessions]
    outcomes = [outcome for outcome in TestOutcome if any(counts.get(outcome) for counts in counted)]
    subtests = [sum(session.subtest_counts().values()) for session in sessions]
    extra = ["SUBTESTS"] if any(subtests) else []
    headers = [
        "ID",
        "SUT",
        "START (UTC)",
        "DURATION",
        "TESTS",
        *(o.value.upper() for o in outcomes),
        *extra,
        "TAGS",
    ]
    rows = [
        [
            session.session_id,
            session.sut_name,
            format_time(session.session_start_time),
            format_duration(session.session_duration),
            str(len(session.test_results)),
            *(str(counts.get(outcome, 0)) for outcome in outcomes),
            *([str(passed)] if extra else []),
            _tags_cell(session.session_tags),
        ]
        for session, counts, passed in zip(sessions, counted, subtests, strict=True)
    ]
    return render_table(headers, rows, right=range(3, len(headers) - 1))


def _tags_cell(tags: dict[str, str], width: int = 60) -> str:
    """The tags as ``key=value`` pairs, the CI run's branch and commit first, cut to ``width``."""
    first = [key for key in ("branch", "commit") if key in tags]
    pairs = [f"{key}={tags[key][:12] if key == 'commit' else tags[key]}" for key in first]
    pairs += [f"{key}={value}" for key, value in sorted(tags.items()) if key not in first]
    text = " ".join(pairs)
    return text if len(text) <= width else text[: width - 3] + "..."


def run_show(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight show``; returns the exit code.

    Raises:
        NotFoundError: no session has that id.
        StorageError: the store cannot be read.
    """
    storage = open_selected_storage(args, console)
    session = storage.get_session_by_id(args.session_id)
    if session is None:
        raise NotFoundError(f"no session {args.session_id!r} in {storage.uri}", uri=storage.uri)
    console.result(session.to_dict(), lambda: _details(session))
    return 0


def _tests_table(results: list[TestResult]) -> str:
    """Every result; setup, call and teardown columns when a fixture took time."""
    parts = any(result.setup_duration or result.teardown_duration for result in results)
    headers = ["OUTCOME", "DURATION", *(["SETUP", "CALL", "TEARDOWN"] if parts else []), "NODE ID"]
    rows = [
        [
            result.outcome.value,
            format_duration(result.total_duration),
            *(
                [
                    format_duration(d)
                    for d in (result.setup_duration, result.duration, result.teardown_duration)
                ]
                if parts
                else []
            ),
            result.test_id,
        ]
        for result in results
    ]
    return render_table(headers, rows, right=range(1, len(headers) - 1))


def _tail(text: str, keep: int = _FAILURE_LINES) -> list[str]:
    """The last ``keep`` lines of a failure's text: pytest ends it with the error itself."""
    lines = text.rstrip().splitlines()
    if len(lines) <= keep:
        return lines
    return [f"... ({len(lines) - keep} lines above; all of it with --json)", *lines[-keep:]]


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
        f"Outcomes:  {outcome_summary(session.outcome_counts(), session.subtest_counts())}",
        *_mapping("Tags", session.session_tags),
        *_mapping("Testing system", session.testing_system),
        f"Tests ({len(session.test_results)}):",
    ]
    if session.test_results:
        lines.extend(f"  {line}" for line in _tests_table(session.test_results).splitlines())
    failures = [r for r in session.test_results if r.outcome in _FAILING and r.longreprtext.strip()]
    if failures:
        lines.append(f"Failures ({len(failures)}):")
        for result in failures:
            lines.append(f"  {result.outcome.value.upper()} {result.test_id}")
            lines.extend(f"    {line}" for line in _tail(result.longreprtext))
    if session.rerun_test_groups:
        lines.append(f"Reruns ({len(session.rerun_test_groups)}):")
        for group in session.rerun_test_groups:
            attempts = " -> ".join(test.outcome.value for test in group.tests)
            final = group.final_outcome.value if group.final_outcome else "none"
            lines.append(f"  {group.nodeid}: {attempts} (final: {final})")
    return "\n".join(lines)
