"""``insight compact``: merge the small bundles of each SUT and day in a bucket into one."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_insight.cli.options import UsageError, count, open_selected_storage
from pytest_insight.cli.output import Console, plural
from pytest_insight.core.storage import S3Storage, open_storage

__all__ = ["add_parser", "run_compact"]

_EXAMPLES = """\
examples:
  insight compact s3://bucket/team               every SUT and day
  insight compact s3://bucket/team --sut api     one SUT
  insight compact --profile ci --days 2 --json   the last two days, as JSON
"""


def add_parser(commands: argparse._SubParsersAction[Any], parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``compact`` sub-command to ``commands``."""
    parser = commands.add_parser(
        "compact",
        parents=parents,
        help="merge the many small bundles of each SUT and day in a bucket into one",
        description="Rewrite each SUT-and-day partition of an s3:// store that holds several bundles "
        "(one per CI run) as one deduplicated bundle, so imports make fewer requests. Safe while "
        "agents keep publishing: only the bundles merged are deleted.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "location", metavar="URI", nargs="?", help="the s3:// store (default: --storage / --profile)"
    )
    parser.add_argument("--sut", metavar="NAME", help="only this SUT's partitions")
    parser.add_argument("--days", metavar="N", type=count, help="only the partitions of the last N days")
    parser.set_defaults(handler=run_compact)


def run_compact(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight compact``; returns 1 when some partitions could not be compacted.

    Raises:
        UsageError: the storage is not an s3:// store, or two storages were named.
        StorageError: the bucket cannot be listed or written.
    """
    if args.location and (getattr(args, "storage", None) or getattr(args, "profile", None)):
        raise UsageError("give the store either as URI or with --storage / --profile, not both")
    storage = open_storage(args.location) if args.location else open_selected_storage(args, console)
    if not isinstance(storage, S3Storage):
        raise UsageError(f"{storage.uri}: compact works on s3:// stores only")
    stats = storage.compact(sut_name=args.sut, days=args.days)
    for message in stats["error_messages"]:
        console.warn(message)
    console.result(
        {"storage": storage.uri, **stats},
        f"Compacted {plural(stats['partitions'], 'partition')} of {storage.uri}: "
        f"{plural(stats['bundles_before'], 'bundle')} into {stats['bundles_after']}, "
        f"{plural(stats['sessions'], 'session')}, {stats['duplicates']} duplicates dropped, "
        f"errors {stats['errors']}",
    )
    return 1 if stats["errors"] else 0
