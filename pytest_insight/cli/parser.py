"""The ``insight`` argument parser: global options and one sub-command per job.

Each command module adds its own sub-parser (``add_parser``) and sets
``handler`` to the function that runs it; this module only assembles them.
The options ``--json``, ``--debug`` and ``--version`` (and, for commands that
open a storage, ``--storage`` / ``--profile``) work before or after the
command name.
"""

from __future__ import annotations

import argparse
import re
from typing import NoReturn

from pytest_insight import __version__
from pytest_insight.cli import (
    browse_commands,
    clear_command,
    compact_command,
    devs3_command,
    diff_command,
    exchange_commands,
    flaky_command,
    profile_commands,
    regressions_command,
    report_command,
    sql_command,
    summary_command,
)
from pytest_insight.cli.options import UsageError
from pytest_insight.errors import did_you_mean

__all__ = ["InsightArgumentParser", "build_parser"]

_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<value>[^']*)' \(choose from (?P<choices>.*)\)")
_UNRECOGNIZED = "unrecognized arguments:"
_OPTION = re.compile(r"--[a-z][a-z0-9-]*")


class InsightArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`UsageError` instead of exiting.

    ``main`` turns the error into one ``insight: error: ...`` line and exit
    code 2, the same way as every other usage error.
    """

    #: every option of every command, for "did you mean" on an unknown one (set by build_parser)
    known_options: frozenset[str] = frozenset()

    def error(self, message: str) -> NoReturn:
        """Raise the parse error as a :class:`UsageError`, with the closest valid word when one is close.

        Raises:
            UsageError: always.
        """
        raise UsageError(f"{message}{self._hint(message)} (see '{self.prog} --help')")

    def _hint(self, message: str) -> str:
        choice = _INVALID_CHOICE.search(message)
        if choice is not None:
            choices = [item.strip().strip("'") for item in choice["choices"].split(",")]
            return did_you_mean(choice["value"], choices)
        if message.startswith(_UNRECOGNIZED):
            for word in message.removeprefix(_UNRECOGNIZED).split():
                if word.startswith("--") and (hint := did_you_mean(word.split("=")[0], self.known_options)):
                    return hint
        return ""


def _output_options() -> argparse.ArgumentParser:
    # Defaults are SUPPRESS so that a sub-parser does not reset a value the
    # top-level parser already set ("insight --json sessions").
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("output")
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the result as JSON on stdout",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an error",
    )
    group.add_argument("--version", action="version", version=f"insight {__version__}")
    return options


def _storage_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("storage").add_mutually_exclusive_group()
    group.add_argument(
        "--storage",
        metavar="URI",
        default=argparse.SUPPRESS,
        help="the store to use: a path, file://..., s3://bucket/prefix or memory://",
    )
    group.add_argument(
        "--profile",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="use the storage of this profile (see 'insight profile list')",
    )
    return options


def build_parser() -> InsightArgumentParser:
    """Return the parser for the whole ``insight`` command line."""
    output = _output_options()
    storage = _storage_options()
    parser = InsightArgumentParser(
        prog="insight",
        description="Keep, share and question your pytest history.",
        epilog="Run 'insight COMMAND --help' for a command's options and examples.",
        parents=[output, storage],
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=InsightArgumentParser
    )
    exchange_commands.add_parsers(commands, parents=[output, storage])
    clear_command.add_parser(commands, parents=[output, storage])
    compact_command.add_parser(commands, parents=[output, storage])
    browse_commands.add_parsers(commands, parents=[output, storage])
    summary_command.add_parser(commands, parents=[output, storage])
    flaky_command.add_parser(commands, parents=[output, storage])
    regressions_command.add_parsers(commands, parents=[output, storage])
    diff_command.add_parser(commands, parents=[output, storage])
    report_command.add_parser(commands, parents=[output, storage])
    sql_command.add_parser(commands, parents=[output, storage])
    profile_commands.add_parsers(commands, parents=[output])
    devs3_command.add_parser(commands, parents=[output])
    usages = [parser.format_usage(), *(command.format_usage() for command in commands.choices.values())]
    parser.known_options = frozenset(_OPTION.findall(" ".join(usages)))
    return parser
