"""``insight report --html FILE``: write the history as one self-contained HTML page.

``FILE`` is a local path (written atomically) or ``s3://bucket/key``, uploaded
with ``Content-Type: text/html`` so the bucket can serve it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_insight.analysis.reading import collect_history
from pytest_insight.analysis.report_page import render_report
from pytest_insight.cli.flaky_command import add_analysis_options
from pytest_insight.cli.options import UsageError, filters_scope, open_selected_storage
from pytest_insight.cli.output import Console
from pytest_insight.files import write_atomic

__all__ = ["add_parser", "publish", "run_report"]


def add_parser(commands: argparse._SubParsersAction[Any], parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``report`` sub-command to ``commands``."""
    parser = commands.add_parser(
        "report",
        parents=parents,
        help="write an HTML report: trends, flaky tests, regressions, slowest tests",
        description="Write one self-contained HTML page (charts inline as SVG, nothing fetched when "
        "opened) to a file or an s3:// key. Needs the report extra: pip install 'pytest-insight[report]'.",
        epilog="examples:\n  insight report --html report.html --days 90\n"
        "  insight report --html s3://my-bucket/reports/api.html --sut api",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--html", metavar="FILE", required=True, help="where to write: a path or s3://bucket/key"
    )
    parser.add_argument("--title", default="", help="the page's title")
    add_analysis_options(parser, "report on")
    parser.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight report``; returns the exit code.

    Raises:
        DependencyError: vl-convert-python is not installed.
        StorageError: the store cannot be read, or the page cannot be written.
    """
    history = collect_history(open_selected_storage(args, console), filters_scope(args))
    page = render_report(history, min_runs=args.min_runs, title=args.title).encode()
    publish(args.html, page)
    console.result(
        {"html": args.html, "bytes": len(page), "sessions": len(history.sessions)},
        f"wrote {args.html} ({len(page) // 1024} KB, {len(history.sessions)} sessions)",
    )
    return 0


def publish(target: str, page: bytes) -> None:
    """Write ``page`` to a local path or an ``s3://bucket/key``.

    Raises:
        UsageError: an s3:// target without a key.
        StorageError: the object cannot be written.
    """
    if not target.startswith("s3://"):
        write_atomic(Path(target).expanduser(), page)
        return
    bucket, _, key = target.removeprefix("s3://").partition("/")
    if not bucket or not key or key.endswith("/"):
        raise UsageError(f"{target}: give the object's full key, such as s3://bucket/reports/index.html")
    import anyio

    from pytest_insight.storage.s3 import S3Backend
    from pytest_insight.storage.s3.objects import put_object

    backend = S3Backend(bucket)  # the configured store: endpoint, credentials, retries
    anyio.run(put_object, backend.bucket, key, page, "text/html; charset=utf-8")
