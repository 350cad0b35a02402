"""Option values shared by the commands: dates, ages, counts, and the storage to use."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pytest_insight.cli.output import Console
from pytest_insight.core.profiles import storage_from_environment
from pytest_insight.core.storage import Storage, get_storage_instance, open_storage
from pytest_insight.errors import ConfigurationError
from pytest_insight.model.sessions import TestSession, to_utc
from pytest_insight.storage.scope import Scope

__all__ = [
    "UsageError",
    "add_session_filters",
    "add_tag_filters",
    "count",
    "filters_scope",
    "now",
    "open_selected_storage",
    "parse_age",
    "parse_date",
    "positive_count",
    "tag_filter",
]

_AGE = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class UsageError(ConfigurationError):
    """The command line asks for something that cannot be done as written (exit code 2)."""


def parse_date(text: str) -> datetime:
    """Parse ``YYYY-MM-DD`` or an ISO 8601 time; a time without zone is UTC.

    Raises:
        argparse.ArgumentTypeError: ``text`` is not a date.
    """
    try:
        return to_utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date: {text!r} (use YYYY-MM-DD or an ISO 8601 time such as 2025-01-31T12:00Z)"
        ) from None


def parse_age(text: str) -> timedelta:
    """Parse an age such as ``90d``, ``12h``, ``30m``, ``2w`` or ``45s``.

    Raises:
        argparse.ArgumentTypeError: ``text`` is not a positive age with a unit.
    """
    match = _AGE.fullmatch(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"not an age: {text!r} (use a number and a unit: 90d, 12h, 30m, 2w)")
    amount, unit = int(match[1]), match[2]
    if amount == 0:
        raise argparse.ArgumentTypeError(f"age must be more than zero: {text!r}")
    try:
        return timedelta(**{_UNITS[unit]: amount})
    except OverflowError:
        raise argparse.ArgumentTypeError(f"age too large: {text!r}") from None


def count(text: str) -> int:
    """Parse a whole number >= 0.

    Raises:
        argparse.ArgumentTypeError: ``text`` is not one.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def positive_count(text: str) -> int:
    """Parse a whole number >= 1.

    Raises:
        argparse.ArgumentTypeError: ``text`` is not one.
    """
    value = count(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def now() -> datetime:
    """The current time in UTC (one place, so every filter agrees on it)."""
    return datetime.now(UTC)


def add_session_filters(parser: argparse.ArgumentParser, verb: str) -> None:
    """Add ``--sut``, ``--days`` and ``--since``, the filters every reading command shares."""
    filters = parser.add_argument_group("filters")
    filters.add_argument("--sut", metavar="NAME", help=f"only {verb} sessions of this SUT")
    filters.add_argument(
        "--days", metavar="N", type=count, help=f"only {verb} sessions that started in the last N days"
    )
    filters.add_argument(
        "--since",
        metavar="DATE",
        type=parse_date,
        help=f"only {verb} sessions that started at or after DATE (YYYY-MM-DD or ISO 8601, UTC)",
    )


def add_tag_filters(parser: argparse.ArgumentParser, verb: str) -> None:
    """Add ``--tag``, ``--branch`` and ``--commit``: filters on the tags a session was recorded with."""
    tags = parser.add_argument_group("tag filters")
    tags.add_argument(
        "--tag",
        metavar="KEY=VALUE",
        action="append",
        type=_tag,
        default=[],
        help=f"only {verb} sessions tagged KEY=VALUE (repeat to require several)",
    )
    tags.add_argument("--branch", metavar="NAME", help=f"only {verb} sessions of this branch (CI tag)")
    tags.add_argument(
        "--commit",
        metavar="SHA",
        help=f"only {verb} sessions of this commit (CI tag; 7 or more leading hex digits)",
    )


def _tag(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"not KEY=VALUE: {text!r}")
    return key.strip(), value.strip()


def tag_filter(args: argparse.Namespace) -> Callable[[TestSession], bool]:
    """Whether a session has every tag ``--tag``, ``--branch`` and ``--commit`` ask for.

    Raises:
        UsageError: ``--commit`` is shorter than 7 characters (it would match by chance).
    """
    wanted: dict[str, str] = dict(args.tag)
    if args.branch is not None:
        wanted["branch"] = args.branch
    commit: str | None = args.commit
    if commit is not None and len(commit) < 7:
        raise UsageError(f"--commit {commit!r}: give at least 7 characters of the commit")

    def matches(session: TestSession) -> bool:
        tags = session.session_tags
        if any(tags.get(key) != value for key, value in wanted.items()):
            return False
        return commit is None or tags.get("commit", "").lower().startswith(commit.lower())

    return matches


def filters_scope(args: argparse.Namespace) -> Scope:
    """The :class:`Scope` that ``--sut``, ``--days`` and ``--since`` select (the later bound wins)."""
    since: datetime | None = args.since
    if args.days is not None:
        recent = now() - timedelta(days=args.days)
        since = recent if since is None else max(since, recent)
    return Scope(sut_name=args.sut, since=since)


def open_selected_storage(args: argparse.Namespace, console: Console) -> Storage:
    """Open the storage named by ``--storage`` or ``--profile``, else the configured one.

    When the environment chose it, ``console`` gets a note that says so.

    Raises:
        UsageError: both ``--storage`` and ``--profile`` were given.
        ConfigurationError: the URI is not supported or the profile is unknown.
    """
    uri: str | None = getattr(args, "storage", None)
    profile: str | None = getattr(args, "profile", None)
    if uri and profile:
        raise UsageError("--storage and --profile cannot be used together")
    if uri:
        return open_storage(uri)
    storage = get_storage_instance(profile)
    origin = storage_from_environment() if profile is None else None
    if origin is not None:
        console.note(f"insight: storage {storage.uri} (from {origin})")
    return storage
