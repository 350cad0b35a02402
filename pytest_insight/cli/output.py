"""What the CLI writes: results on stdout (text or JSON), messages on stderr.

Every command reports through one :class:`Console`, so ``--json`` and the
split between results (stdout) and chatter (stderr) are decided in one place.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from pytest_insight.cli.progress import ProgressBar
from pytest_insight.model.sessions import TestOutcome, TestSession, to_utc

__all__ = [
    "Console",
    "format_duration",
    "format_time",
    "outcome_summary",
    "plural",
    "render_table",
    "session_summary",
]


def _stdout() -> TextIO:
    return sys.stdout


def _stderr() -> TextIO:
    return sys.stderr


@dataclass
class Console:
    """Where a command's results and messages go.

    Attributes:
        json: print results as JSON instead of text.
        out: the stream for results (stdout).
        err: the stream for messages, prompts and progress bars (stderr).
    """

    json: bool = False
    out: TextIO = field(default_factory=_stdout)
    err: TextIO = field(default_factory=_stderr)

    def result(self, data: Any, text: str | Callable[[], str]) -> None:
        """Print a command's result: ``data`` as JSON, or ``text`` for people."""
        if self.json:
            json.dump(data, self.out, indent=2, sort_keys=True, ensure_ascii=False)
            self.out.write("\n")
        else:
            rendered = text() if callable(text) else text
            if rendered:
                self.out.write(rendered if rendered.endswith("\n") else rendered + "\n")
        self.out.flush()

    def note(self, message: str) -> None:
        """Print a one-line message for people on stderr (never parsed)."""
        self.err.write(f"{message}\n")
        self.err.flush()

    def warn(self, message: str) -> None:
        """Print ``insight: warning: message`` on stderr."""
        self.note(f"insight: warning: {message}")

    @contextmanager
    def progress(self) -> Iterator[ProgressBar | None]:
        """A progress bar on stderr when it is a terminal, else None; erased on exit."""
        bar = ProgressBar(self.err)
        if not bar.enabled:
            yield None
            return
        with bar:
            yield bar


def plural(number: int, noun: str) -> str:
    """``1 session``, ``2 sessions``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def format_time(value: datetime) -> str:
    """``2025-01-31 12:00:05`` in UTC."""
    return to_utc(value).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: float) -> str:
    """A short human duration: ``0.42 s``, ``3m 05s``, ``2h 07m``."""
    if seconds < 60:
        return f"{seconds:.2f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


def outcome_summary(counts: dict[TestOutcome, int], subtests: dict[TestOutcome, int] | None = None) -> str:
    """``10 passed, 1 failed, 4 subtests passed`` as pytest's summary line; ``no tests`` when empty."""
    parts = [f"{counts[outcome]} {outcome.value}" for outcome in TestOutcome if counts.get(outcome)]
    parts += [f"{n} subtests {outcome.value}" for outcome, n in (subtests or {}).items() if n]
    return ", ".join(parts) if parts else "no tests"


def session_summary(session: TestSession) -> dict[str, Any]:
    """The JSON-ready summary of a session that ``insight sessions --json`` lists."""
    counts = session.outcome_counts()
    return {
        "session_id": session.session_id,
        "sut_name": session.sut_name,
        "session_start_time": to_utc(session.session_start_time).isoformat(),
        "session_stop_time": to_utc(session.session_stop_time).isoformat(),
        "session_duration": session.session_duration,
        "tests": len(session.test_results),
        "outcomes": {outcome.value: counts[outcome] for outcome in TestOutcome if outcome in counts},
        "subtests": {outcome.value: n for outcome, n in session.subtest_counts().items()},
        "tags": dict(session.session_tags),
    }


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[int] = ()) -> str:
    """Align ``rows`` under ``headers`` in columns two spaces apart.

    Args:
        headers: the column titles.
        rows: the cells, as strings, one sequence per row.
        right: indexes of the columns to align right (numbers).
    """
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])
