"""``insight export`` and ``insight import``: move sessions between a store and a file or bucket."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_insight.cli.options import UsageError, add_session_filters, open_selected_storage
from pytest_insight.cli.output import Console, plural
from pytest_insight.core.profiles import resolve_storage_uri
from pytest_insight.errors import ConfigurationError
from pytest_insight.exchange.junit_files import JUnitSink, JUnitSource
from pytest_insight.exchange.locations import file_target
from pytest_insight.exchange.merging import MergeStrategy, parse_strategy
from pytest_insight.exchange.redaction import Redactor
from pytest_insight.format.layout import LAYOUT_VERSION
from pytest_insight.storage.uris import split_uri, storage_schemes

__all__ = ["add_parsers", "run_export", "run_import"]

_MAX_ERRORS_SHOWN = 20

_EXPORT_EXAMPLES = """\
examples:
  insight export team.json                      every session, one JSON file
  insight export backup.jsonl.gz --days 7       the last week, one gzipped bundle
  insight export ./bundles --sut api            bundle layout (sut=/date=) in a directory
  insight export s3://bucket/team --profile ci  publish to a bucket prefix
  insight export results.xml --days 1           JUnit XML for a CI's test tab
"""

_IMPORT_EXAMPLES = """\
examples:
  insight import team.json                            add what is new, skip known ids
  insight import ./bundles --strategy replace_existing
  insight import s3://bucket/team/v1/sut=api --days 30 --json
  insight import junit.xml --sut api                  a JUnit report (pytest, Surefire, ...)
  insight import target/surefire-reports --sut api    every report and bundle in a directory
"""


def add_parsers(commands: argparse._SubParsersAction[Any], parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``export`` and ``import`` sub-commands to ``commands``."""
    export = commands.add_parser(
        "export",
        parents=parents,
        help="write sessions to a file, a directory of bundles or a bucket prefix",
        description="Write the store's sessions to DEST. The format follows DEST: .json (one JSON "
        "document), .jsonl.gz or .json.gz (a gzipped bundle), a directory or file:// URI, or "
        "s3://bucket/prefix (bundles per SUT and day).",
        epilog=_EXPORT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("destination", metavar="DEST", help="file, directory, file:// or s3:// URI")
    export.add_argument(
        "--no-redact",
        action="store_true",
        help="export secrets found in output and tags as they are (by default they become [REDACTED:<kind>])",
    )
    export.add_argument(
        "--format",
        choices=["junit"],
        help="junit: write DEST as JUnit XML whatever its name (a .xml DEST is JUnit anyway)",
    )
    add_session_filters(export, "export")
    export.set_defaults(handler=run_export)

    imports = commands.add_parser(
        "import",
        parents=parents,
        help="merge sessions from a file, a directory of bundles or a bucket prefix",
        description="Merge the sessions found at SOURCE into the store. Exit code 1 when some "
        "sessions could not be imported (each is named on stderr).",
        epilog=_IMPORT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imports.add_argument("source", metavar="SOURCE", help="file, directory, file:// or s3:// URI")
    imports.add_argument(
        "--junit-sessions",
        choices=["file", "testsuite"],
        help="JUnit XML: one session per file or per <testsuite> (default: per file, per suite for "
        "pytest-insight's own exports); the SUT is --sut, else the suite's name",
    )
    imports.add_argument(
        "--strategy",
        type=_strategy,
        default=MergeStrategy.SKIP_EXISTING.value,
        help="what to do with a session whose id is already stored: "
        f"{', '.join(strategy.value for strategy in MergeStrategy)} (default: %(default)s)",
    )
    add_session_filters(imports, "import")
    imports.set_defaults(handler=run_import)


def _refuse_own_storage(args: argparse.Namespace, location: str, verb: str) -> None:
    """Exporting a store into itself (or importing it from itself) moves nothing, or worse.

    Checked on the URIs, before the storage is opened (opening a bucket looks
    up credentials, which a user who mistyped the target may not have).
    """
    storage_uri = getattr(args, "storage", None) or resolve_storage_uri(getattr(args, "profile", None))[0]
    place, own = _place(location), _place(storage_uri).rstrip("/")
    if place == own or f"{place}/".startswith(f"{own}/{LAYOUT_VERSION}/"):  # the storage or its layout
        raise UsageError(
            f"{location} is the storage itself ({storage_uri}): {verb} moves sessions between a "
            "storage and another place; name the storage with --storage or --profile"
        )


def _place(location: str) -> str:
    scheme, rest = split_uri(location, storage_schemes())
    if scheme in ("", "file"):
        return Path(rest).expanduser().resolve().as_uri()
    return f"{scheme}://{rest.strip('/')}"


def _strategy(text: str) -> str:
    try:
        return parse_strategy(text).value
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run_export(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight export``; returns the exit code.

    Raises:
        ConfigurationError: the storage or destination is not valid.
        StorageError: the store or destination cannot be read or written.
    """
    _refuse_own_storage(args, args.destination, "export")
    storage = open_selected_storage(args, console)
    bundles: dict[str, int] = {}  # from the "new bundles" report of a directory or bucket export
    redactor = Redactor()

    with console.progress() as bar:

        def progress(phase: str, done: int, total: int | None) -> None:
            if phase == "new bundles" and total is not None:
                bundles.update(bundles=total, new_bundles=done)
            if bar is not None:
                bar(phase, done, total)

        target = (
            JUnitSink(file_target(Path(args.destination).expanduser()))
            if args.format == "junit"
            else args.destination
        )
        exported = storage.export_sessions(
            target,
            days=args.days,
            sut_name=args.sut,
            since=args.since,
            progress=progress,
            redact=False if args.no_redact else redactor,
        )
    text = f"Exported {plural(exported, 'session')} from {storage.uri} to {args.destination}"
    if redactor.total:
        text += f"; {redactor.summary()}"
    if bundles:  # so that a log tells a re-export that changed nothing from a real upload
        text += f" ({bundles['new_bundles']} of {plural(bundles['bundles'], 'bundle')} new)"
    console.result(
        {
            "exported": exported,
            "destination": args.destination,
            "storage": storage.uri,
            "redacted": None if args.no_redact else dict(redactor.counts),
            **bundles,
        },
        text,
    )
    return 0


def run_import(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight import``; returns 1 when some sessions could not be imported.

    Raises:
        ConfigurationError: the storage or strategy is not valid.
        StorageError: the source or the store cannot be read or written.
        InvalidDataError: the source as a whole is not an export.
    """
    _refuse_own_storage(args, args.source, "import")
    storage = open_selected_storage(args, console)
    listed: list[int] = []  # bundles found, when the source is a directory or a bucket prefix
    with console.progress() as bar:

        def progress(phase: str, done: int, total: int | None) -> None:
            if phase == "list":
                listed.append(done)
            if bar is not None:
                bar(phase, done, total)

        source = args.source
        if args.junit_sessions is not None:
            if not Path(source).expanduser().is_file():
                raise UsageError(f"--junit-sessions: {source} is not a file (it applies to one JUnit report)")
            source = JUnitSource(Path(source).expanduser(), grouping=args.junit_sessions, whole=True)
        stats = storage.import_sessions(
            source,
            args.strategy,
            sut_name=args.sut,
            days=args.days,
            since=args.since,
            progress=progress,
        )
    if listed and listed[-1] == 0:
        filtered = any(value is not None for value in (args.sut, args.days, args.since))
        console.warn(f"no bundles found at {args.source}{' for these filters' if filtered else ''}")
    messages = stats["error_messages"]
    for message in messages[:_MAX_ERRORS_SHOWN]:
        console.warn(message)
    if len(messages) > _MAX_ERRORS_SHOWN:
        console.warn(f"... and {len(messages) - _MAX_ERRORS_SHOWN} more (see --json)")
    console.result(
        dict(stats),
        f"Imported {plural(stats['imported'], 'session')} "
        f"(added {stats['added']}, updated {stats['updated']}), "
        f"skipped {stats['skipped']}, errors {stats['errors']}",
    )
    return 1 if stats["errors"] else 0
