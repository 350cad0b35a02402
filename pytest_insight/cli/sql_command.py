"""``insight sql``: SQL over the configured storage, through DuckDB views (the ``[sql]`` extra)."""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pytest_insight.cli.options import UsageError
from pytest_insight.cli.output import Console, plural, render_table
from pytest_insight.core.profiles import resolve_storage_uri, storage_from_environment
from pytest_insight.errors import NotFoundError

__all__ = ["add_parser", "cell_value", "run_sql_command"]

_EXAMPLES = """\
examples:
  insight sql "SELECT sut_name, count(*) FROM sessions GROUP BY ALL"
  insight sql "SELECT outcome, count(*) FROM results WHERE sut_name = 'api' GROUP BY outcome" --json
  insight sql --file failure_rate_30_days --storage s3://bucket/team --csv    a shipped query
  insight sql --file my-query.sql

views: sessions (one row a session), results (one row a test result); see the README's
"SQL and scale" for their columns and the named queries shipped in pytest_insight/sql/queries/.
"""


def add_parser(commands: argparse._SubParsersAction[Any], parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``sql`` sub-command to ``commands``."""
    parser = commands.add_parser(
        "sql",
        parents=parents,
        help="run SQL over the stored sessions (views: sessions, results)",
        description="Run a DuckDB SQL query over the storage where it lies: a local store, or an "
        "s3:// bucket prefix read in place (a WHERE on sut_name or session_date reads only those "
        'partitions). Needs pip install "pytest-insight[sql]".',
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("query", metavar="SQL", nargs="?", help="the query (or use --file)")
    parser.add_argument(
        "--file",
        metavar="PATH",
        type=Path,
        help="read the query from this file, or run a shipped query by name: " + ", ".join(_shipped()),
    )
    parser.add_argument("--csv", action="store_true", help="print the rows as CSV with a header line")
    parser.set_defaults(handler=run_sql_command)


_QUERIES = Path(__file__).parents[1] / "sql" / "queries"


def _shipped() -> list[str]:
    return sorted(path.stem for path in _QUERIES.glob("*.sql"))


def cell_value(value: Any) -> Any:
    """A JSON-ready form of a value DuckDB returned (times as ISO 8601, maps as objects)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(key): cell_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [cell_value(item) for item in value]
    return value


def _text(value: Any) -> str:
    value = cell_value(value)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _query_text(args: argparse.Namespace) -> str:
    if (args.query is None) == (args.file is None):
        raise UsageError("give the query as an argument or with --file, one of the two")
    if args.file is None:
        text: str = args.query
    else:
        path: Path = args.file
        shipped = _QUERIES / f"{path.name.removesuffix('.sql')}.sql"
        if not path.exists() and path.name == str(path) and shipped.is_file():
            path = shipped
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFoundError(
                f"{path}: no such file (shipped queries: {', '.join(_shipped())})", uri=str(path)
            ) from None
    if not text.strip():
        raise UsageError("the query is empty")
    return text


def run_sql_command(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight sql``.

    Raises:
        UsageError: no query or two, both ``--csv`` and ``--json``, or ``--storage`` with ``--profile``.
        DependencyError: the ``[sql]`` extra is not installed.
        ConfigurationError: the storage cannot be queried (``memory://``) or the SQL is not valid.
        StorageError: a stored file or object cannot be read.
    """
    query = _query_text(args)
    if args.csv and console.json:
        raise UsageError("--csv and --json cannot be used together")
    uri: str | None = getattr(args, "storage", None)
    profile: str | None = getattr(args, "profile", None)
    if uri and profile:
        raise UsageError("--storage and --profile cannot be used together")
    options: dict[str, Any] = {}
    if not uri:
        uri, options = resolve_storage_uri(profile)
        origin = storage_from_environment() if profile is None else None
        if origin is not None:
            console.note(f"insight: storage {uri} (from {origin})")
    from pytest_insight.sql import resolve_target, run_sql  # after the arguments are checked

    result = run_sql(resolve_target(uri, options), query)
    if args.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([_text(value) for value in row] for row in result.rows)
        console.out.write(buffer.getvalue())
        console.out.flush()
        return 0
    records = [
        {name: cell_value(value) for name, value in zip(result.columns, row, strict=True)}
        for row in result.rows
    ]

    def table() -> str:
        if not result.columns:
            return ""
        cells = [[_text(value) for value in row] for row in result.rows]
        return f"{render_table(result.columns, cells)}\n({plural(len(cells), 'row')})"

    console.result(records, table)
    return 0
