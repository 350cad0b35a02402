"""``insight clear``: remove the sessions a filter selects, after confirmation."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import Any

from pytest_insight.cli.options import UsageError, now, open_selected_storage, parse_age, parse_date
from pytest_insight.cli.output import Console, format_time, plural, render_table
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.base import ScopeClearer
from pytest_insight.storage.scope import Scope

__all__ = ["add_parser", "run_clear"]

_EXAMPLES = """\
examples:
  insight clear --sut api --older-than 90d --dry-run   list what would go
  insight clear --before 2025-01-01 --yes              no question asked (for scripts)
  insight clear --all                                  everything, after confirmation
"""


def add_parser(commands: argparse._SubParsersAction[Any], parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``clear`` sub-command to ``commands``."""
    parser = commands.add_parser(
        "clear",
        parents=parents,
        help="remove sessions selected by SUT and age",
        description="Remove the sessions the filters select (every session with --all). Asks for "
        "confirmation on a terminal; without a terminal it refuses unless --yes is given.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sut", metavar="NAME", help="only sessions of this SUT")
    age = parser.add_mutually_exclusive_group()
    age.add_argument(
        "--before",
        metavar="DATE",
        type=parse_date,
        help="only sessions that started before DATE (YYYY-MM-DD or ISO 8601, UTC)",
    )
    age.add_argument(
        "--older-than",
        metavar="AGE",
        type=_days,
        help="only sessions of UTC days that ended longer ago than AGE, in days or weeks (90d, 2w): "
        "whole days, so a bucket's partitions are deleted whole and no bundle is rewritten",
    )
    parser.add_argument("--all", action="store_true", help="select every session (needed without filters)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(handler=run_clear)


def _days(text: str) -> timedelta:
    """An age for ``--older-than``: whole days or weeks, since the cut-off is a UTC midnight.

    Raises:
        argparse.ArgumentTypeError: not an age, or one in hours, minutes or seconds.
    """
    age = parse_age(text)
    if age % timedelta(days=1):
        raise argparse.ArgumentTypeError(
            f"{text!r}: --older-than counts whole UTC days; use days or weeks (30d, 2w), "
            "or --before with a time"
        )
    return age


def _scope(args: argparse.Namespace) -> Scope:
    filtered = args.sut is not None or args.before is not None or args.older_than is not None
    if not filtered and not args.all:
        raise UsageError("clear needs a filter (--sut, --before, --older-than) or --all")
    if filtered and args.all:
        raise UsageError("--all selects every session; it cannot be combined with filters")
    until = args.before
    if args.older_than is not None:
        # Whole UTC days: bundles never span days, so a cleanup job deletes
        # objects and never needs to rewrite one (its role has no PutObject).
        cutoff = now() - args.older_than
        until = cutoff.replace(hour=0, minute=0, second=0, microsecond=0)
    return Scope(sut_name=args.sut, until=until)


def _listing(sessions: list[TestSession]) -> list[dict[str, str]]:
    return [
        {
            "session_id": session.session_id,
            "sut_name": session.sut_name,
            "session_start_time": session.session_start_time.isoformat(),
        }
        for session in sessions
    ]


def _table(sessions: list[TestSession]) -> str:
    rows = [[s.session_id, s.sut_name, format_time(s.session_start_time)] for s in sessions]
    return render_table(["ID", "SUT", "START (UTC)"], rows)


def _dry_run_text(selected: list[TestSession], uri: str) -> str:
    if not selected:
        return f"No session in {uri} matches (dry run: nothing removed)"
    would = f"Would remove {plural(len(selected), 'session')} from {uri}"
    return f"{_table(selected)}\n{would} (dry run: nothing removed)"


def _confirm(console: Console, question: str) -> bool:
    console.err.write(f"{question} [y/N] ")
    console.err.flush()
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        console.err.write("\n")  # so the error line that follows starts on a line of its own
        raise
    if not answer.endswith("\n"):  # end of input: take it as "no", on a line of its own
        console.err.write("\n")
    return answer.strip().lower() in {"y", "yes"}


def run_clear(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight clear``; returns the exit code (1 when the user declines).

    Raises:
        UsageError: no filter and no --all, or no --yes while stdin is not a terminal.
        StorageError: the store cannot be read or written.
    """
    scope = _scope(args)
    if args.older_than is not None and scope.until is not None:  # say what whole days made of the age
        console.note(
            f"--older-than {args.older_than.days}d: sessions that started before "
            f"{format_time(scope.until)} UTC"
        )
    if not (args.yes or args.dry_run or (sys.stdin is not None and sys.stdin.isatty())):
        raise UsageError("refusing to clear without confirmation: stdin is not a terminal (add --yes)")
    storage = open_selected_storage(args, console)
    if args.yes and not args.dry_run and isinstance(storage.backend, ScopeClearer):
        # S3: whole partitions are deleted unread, so the sessions are counted, not listed
        cleared = storage.clear_sessions(scope=scope)
        counted = {"storage": storage.uri, "dry_run": False, "matched": cleared, "cleared": cleared}
        console.result(counted, f"Removed {plural(cleared, 'session')} from {storage.uri}")
        return 0
    selected = storage.load_sessions(scope)
    result: dict[str, Any] = {
        "storage": storage.uri,
        "dry_run": args.dry_run,
        "matched": len(selected),
        "cleared": 0,
        "sessions": _listing(selected),
    }
    if args.dry_run:
        console.result(result, lambda: _dry_run_text(selected, storage.uri))
        return 0
    if not selected:
        console.result(result, f"No session in {storage.uri} matches; nothing removed")
        return 0
    if not args.yes and not _confirm(
        console, f"Remove {plural(len(selected), 'session')} from {storage.uri}?"
    ):
        console.note("Aborted: nothing removed")
        return 1
    result["cleared"] = storage.clear_sessions(selected)
    console.result(result, f"Removed {plural(result['cleared'], 'session')} from {storage.uri}")
    return 0
