"""The CLI's parts in process: option values, tables, durations, the progress bar, error mapping."""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_insight.cli.main import main
from pytest_insight.cli.options import parse_age, parse_date, positive_count
from pytest_insight.cli.output import format_duration, render_table
from pytest_insight.cli.progress import ProgressBar
from pytest_insight.core.storage import JSONStorage
from pytest_insight.errors import NotFoundError
from pytest_insight.model.sessions import TestSession


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("2w", timedelta(weeks=2)),
        (" 45S ", timedelta(seconds=45)),
    ],
)
def test_ages(text: str, expected: timedelta) -> None:
    assert parse_age(text) == expected


@pytest.mark.parametrize("text", ["90", "d", "-1d", "0d", "1.5h", "3y", "99999999999999w"])
def test_bad_ages(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_age(text)


def test_dates_are_utc() -> None:
    assert parse_date("2025-01-31") == datetime(2025, 1, 31, tzinfo=UTC)
    assert parse_date("2025-01-31T12:00:00+02:00") == datetime(2025, 1, 31, 10, tzinfo=UTC)
    assert parse_date("2025-01-31T12:00Z") == datetime(2025, 1, 31, 12, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError, match="not a date"):
        parse_date("31/01/2025")


def test_counts() -> None:
    assert positive_count("3") == 3
    for text in ("0", "-2", "many"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_count(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.4249, "0.42 s"), (59.994, "59.99 s"), (185, "3m 05s"), (7620, "2h 07m")],
)
def test_durations(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_tables_align_columns() -> None:
    table = render_table(["ID", "N"], [["a", "1"], ["bbb", "22"]], right=[1])
    assert table.splitlines() == ["ID    N", "a     1", "bbb  22"]


def test_progress_bar_draws_only_on_a_terminal() -> None:
    piped = io.StringIO()
    ProgressBar(piped)("transfer", 1, 2)
    assert piped.getvalue() == ""

    terminal = Terminal()
    with ProgressBar(terminal) as bar:
        bar("transfer", 0, 4)
        bar("transfer", 1, 4)  # too soon after the last draw: skipped
        bar("transfer", 4, 4)  # complete: always drawn
        bar("list", 7, None)  # new phase, no total: a counter
    drawn = terminal.getvalue().split("\r\x1b[K")
    assert drawn[0] == ""
    assert drawn[1].startswith("transfer  [")
    assert drawn[1].endswith("] 0/4")
    assert "#" not in drawn[1]
    assert drawn[2].endswith("] 4/4")
    assert "." not in drawn[2].split("[")[1]
    assert drawn[3] == "list      7"
    assert drawn[4] == ""  # closed: the line is erased
    assert len(drawn) == 5


def test_help_and_version_return_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "usage: insight" in capsys.readouterr().out
    assert main(["profile", "--version"]) == 0
    assert capsys.readouterr().out.startswith("insight ")


def test_an_error_group_of_user_errors_is_one_line() -> None:
    from pytest_insight.cli.main import _first_user_error

    missing = NotFoundError("s3://bucket/key: no such key")
    group = ExceptionGroup("transfers", [ExceptionGroup("inner", [missing]), OSError(5, "I/O error")])
    assert _first_user_error(group) is missing
    assert _first_user_error(ExceptionGroup("bug", [missing, TypeError("bug")])) is None


def test_usage_error_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["clear", "--all", "--sut", "api", "--yes"]) == 2
    assert capsys.readouterr().err == (
        "insight: error: --all selects every session; it cannot be combined with filters\n"
    )


def test_export_draws_progress_on_a_terminal_and_erases_it(
    tmp_path: Path,
    make_session: Callable[..., TestSession],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "store"
    JSONStorage(store).save_sessions([make_session() for _ in range(3)])
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["export", str(tmp_path / "out.json"), "--storage", str(store)]) == 0
    drawn = terminal.getvalue()
    assert drawn.startswith("\r\x1b[K")
    assert drawn.endswith("\r\x1b[K")  # erased before the result is printed
    assert "3" in drawn
    assert capsys.readouterr().out.startswith("Exported 3 sessions from ")


class InterruptedTerminal:
    """A terminal on stdin where the user presses Ctrl-C at the prompt."""

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        raise KeyboardInterrupt


def test_ctrl_c_at_the_prompt_is_exit_130_and_removes_nothing(
    tmp_path: Path,
    make_session: Callable[..., TestSession],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = JSONStorage(tmp_path / "store")
    store.save_sessions([make_session(), make_session()])
    monkeypatch.setattr(sys, "stdin", InterruptedTerminal())
    assert main(["clear", "--all", "--storage", str(tmp_path / "store")]) == 130
    err = capsys.readouterr().err
    assert err.endswith("[y/N] \ninsight: error: interrupted\n")
    assert "Traceback" not in err
    assert len(store.load_sessions()) == 2
