"""``insight diff``: what changed between two sessions, or two commits or branches."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_insight.analysis.diff import Diff, DiffEntry, diff_sessions
from pytest_insight.analysis.history import SessionInfo
from pytest_insight.analysis.reading import collect_history
from pytest_insight.cli.options import UsageError, add_session_filters, filters_scope, open_selected_storage
from pytest_insight.cli.output import Console, format_duration, render_table
from pytest_insight.errors import NotFoundError
from pytest_insight.model.sessions import TestSession

__all__ = ["add_parser", "run_diff", "select_side"]


def add_parser(commands: argparse._SubParsersAction[Any], parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``diff`` sub-command to ``commands``."""
    parser = commands.add_parser(
        "diff",
        parents=parents,
        help="compare two sessions, commits or branches",
        description="Compare base and head: the tests that newly fail (with their failure text), "
        "the ones fixed, added, removed and markedly slower. Give two session ids, or --base and "
        "--head as a commit (a prefix of the commit tag) or a branch (its latest commit's runs).",
        epilog="examples:\n  insight diff SESSION_A SESSION_B\n  insight diff --base main --head my-branch",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sessions", nargs="*", metavar="SESSION", help="base and head session ids")
    parser.add_argument("--base", metavar="REF", help="the base side: a commit or a branch")
    parser.add_argument("--head", metavar="REF", help="the head side: a commit or a branch")
    add_session_filters(parser, "compare")
    parser.set_defaults(handler=run_diff)


def select_side(sessions: list[SessionInfo], ref: str) -> list[str]:
    """The ids of the sessions a ``--base``/``--head`` reference names.

    A reference is a commit (the ``commit`` tag, or a prefix of it of 4 or
    more characters) or a branch (the ``branch`` tag), of which the runs of
    its latest commit are taken.

    Raises:
        NotFoundError: no session matches ``ref``.
    """
    by_commit = [s.session_id for s in sessions if len(ref) >= 4 and s.commit.startswith(ref)]
    if by_commit:
        return by_commit
    on_branch = [s for s in sessions if s.branch == ref]  # oldest first
    if not on_branch:
        raise NotFoundError(f"no session has a commit or branch {ref!r}")
    latest = on_branch[-1]
    if not latest.commit:
        return [latest.session_id]
    return [s.session_id for s in on_branch if s.commit == latest.commit]


def run_diff(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight diff``; returns the exit code.

    Raises:
        UsageError: neither two session ids nor --base and --head were given.
        NotFoundError: a session id or reference matches nothing.
        StorageError: the store cannot be read.
    """
    by_ref = args.base is not None or args.head is not None
    if by_ref and (args.sessions or args.base is None or args.head is None):
        raise UsageError("give two session ids, or both --base and --head (not both forms)")
    if not by_ref and len(args.sessions) != 2:
        raise UsageError("give two session ids, or --base REF and --head REF")
    storage = open_selected_storage(args, console)
    if by_ref:  # find the sides in the compact history, then read only their sessions
        sessions = collect_history(storage, filters_scope(args)).sessions
        base_ids, head_ids = select_side(sessions, args.base), select_side(sessions, args.head)
    else:
        base_ids, head_ids = [args.sessions[0]], [args.sessions[1]]
    base = [_one(storage.get_session_by_id(i), i) for i in base_ids]
    head = [_one(storage.get_session_by_id(i), i) for i in head_ids]
    found = diff_sessions(base, head)
    console.result(_data(found), lambda: _text(found))
    return 0


def _one(session: TestSession | None, session_id: str) -> TestSession:
    if session is None:
        raise NotFoundError(f"no session with id {session_id!r}")
    return session


_LISTS = (
    ("newly_failing", "Newly failing"),
    ("fixed", "Fixed"),
    ("added", "Added"),
    ("removed", "Removed"),
    ("slower", "Markedly slower"),
)


def _entry(entry: DiffEntry) -> dict[str, Any]:
    return {
        "sut_name": entry.sut_name,
        "nodeid": entry.nodeid,
        "base": entry.base,
        "head": entry.head,
        "base_seconds": entry.base_seconds,
        "head_seconds": entry.head_seconds,
        "failure": entry.failure,
    }


def _data(found: Diff) -> dict[str, Any]:
    data: dict[str, Any] = {"base_sessions": found.base_sessions, "head_sessions": found.head_sessions}
    for name, _ in _LISTS:
        data[name] = [_entry(entry) for entry in getattr(found, name)]
    return data


def _text(found: Diff) -> str:
    lines = [f"base: {found.base_sessions} session(s), head: {found.head_sessions} session(s)"]
    for name, title in _LISTS:
        entries: list[DiffEntry] = getattr(found, name)
        lines.append(f"\n{title} ({len(entries)}):")
        if not entries:
            lines.append("  none")
        elif name == "slower":
            rows = [
                [format_duration(e.base_seconds), format_duration(e.head_seconds), e.nodeid] for e in entries
            ]
            table = render_table(["BASE", "HEAD", "NODE ID"], rows, right=range(2))
            lines += [f"  {line}" for line in table.splitlines()]
        else:
            for entry in entries:
                lines.append(f"  {entry.nodeid}  ({entry.base} -> {entry.head})")
                if name == "newly_failing" and entry.failure:
                    lines += [f"    | {line}" for line in entry.failure.strip().splitlines()[-8:]]
    return "\n".join(lines)
