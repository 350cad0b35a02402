"""The ``insight`` command: parse the command line, run one command, turn errors into exit codes.

Exit codes:

=====  ===================================================================
0      done
1      done with errors: some sessions could not be imported (each is named
       on stderr and listed in ``error_messages``), or the user answered
       "no" to the ``clear`` confirmation
2      usage or configuration error: unknown option or bad value (date, age,
       strategy), unknown profile, unsupported storage URI, missing optional
       dependency, ``clear`` without a filter or ``--all``, ``clear``
       without ``--yes`` when stdin is not a terminal
3      storage or data error: a store, file, bucket or object that cannot be
       read or written (not found, access denied, unreachable, corrupt), a
       source that is not an export, or a session id that is not stored
130    interrupted (Ctrl-C)
141    stdout was closed early (for example piped into ``head``)
=====  ===================================================================

An error is one line on stderr, ``insight: error: <message>``; ``--debug``
prints the traceback before it. Errors that are not ours (bugs) keep their
traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from pytest_insight import tasks
from pytest_insight.cli.output import Console
from pytest_insight.cli.parser import build_parser
from pytest_insight.core.collections_policy import rare_full_collections
from pytest_insight.errors import ConfigurationError, DependencyError, InsightError

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_DATA",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "console_main",
    "EXIT_USAGE",
    "main",
    "rare_full_collections",
]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

_USER_ERRORS = (InsightError, OSError)


def console_main() -> None:
    """The ``insight`` command's entry point: :func:`main`, then exit with its code.

    After Ctrl-C the process exits at once, without waiting for the worker
    threads of transfers under way (each would block until its request times
    out); what was committed is already on disk.

    Raises:
        SystemExit: always, with the exit code.
    """
    code = main()
    if code == EXIT_INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``insight`` with ``argv`` (``sys.argv[1:]`` when None) and return its exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    # Known before parsing, so that a parse error also honours it.
    debug = "--debug" in arguments
    try:
        with rare_full_collections():
            return _run(arguments, debug)
    except KeyboardInterrupt as exc:
        return _report(exc, "interrupted", EXIT_INTERRUPTED, debug)
    except BrokenPipeError:
        # The reader went away: stop writing, and keep Python's shutdown flush quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except _USER_ERRORS as exc:
        return _report(exc, _message(exc), _exit_code(exc), debug)
    except BaseExceptionGroup as group:
        leaf = _first_user_error(group)
        if leaf is None:
            raise
        return _report(group, _message(leaf), _exit_code(leaf), debug)


def _run(arguments: list[str], debug: bool) -> int:
    try:
        args = build_parser().parse_args(arguments)
    except SystemExit as exc:  # --help and --version print and stop
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    if debug:
        logging.basicConfig(stream=sys.stderr, format="%(name)s: %(message)s")
        logging.getLogger("pytest_insight").setLevel(logging.DEBUG)
    console = Console(json=getattr(args, "json", False))
    handler: Callable[..., int] = args.handler
    return handler(args, console)


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, ConfigurationError | DependencyError):
        return EXIT_USAGE
    return EXIT_DATA


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, OSError) and not isinstance(exc, InsightError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename is not None else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _first_user_error(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The first leaf of ``group`` when every leaf is a user error or an interrupt, else None."""
    leaves = list(tasks.leaves(group))
    if leaves and all(isinstance(leaf, (*_USER_ERRORS, KeyboardInterrupt)) for leaf in leaves):
        return leaves[0]
    return None


def _report(exc: BaseException, message: str, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.write(f"insight: error: {message}\n")
    sys.stderr.flush()
    return code
