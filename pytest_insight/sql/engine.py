"""Run SQL over a target with DuckDB: connect offline, load the extensions, make the views, query.

DuckDB and its extensions come from the ``[sql]`` extra. Extensions are
loaded from the files their PyPI packages ship (``duckdb-extension-httpfs``,
``duckdb-extension-json``); automatic installing and loading are switched
off, so nothing is ever downloaded at run time.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from pytest_insight.errors import ConfigurationError, DependencyError, NotFoundError, StorageError
from pytest_insight.sql.credentials import resolve_s3_settings, secret_statement
from pytest_insight.sql.target import BucketTarget, LocalTarget, Target, finish_commits
from pytest_insight.sql.views import view_statements

__all__ = ["INSTALL_HINT", "SqlResult", "connect", "run_sql"]

INSTALL_HINT = 'insight sql needs DuckDB: pip install "pytest-insight[sql]"'


@dataclass(frozen=True)
class SqlResult:
    """A query's answer: its column names and rows (Python values)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


def _duckdb() -> Any:
    try:
        return importlib.import_module("duckdb")
    except ImportError as exc:
        raise DependencyError(INSTALL_HINT) from exc


def _extension_file(name: str, version: str) -> Path:
    try:
        package = importlib.import_module(f"duckdb_extension_{name}")
    except ImportError as exc:
        raise DependencyError(INSTALL_HINT) from exc
    folder = Path(str(package.__file__)).parent / "extensions" / f"v{version}"
    path = folder / f"{name}.duckdb_extension"
    if not path.is_file():
        raise DependencyError(
            f"duckdb-extension-{name} does not match duckdb {version}: "
            f'pip install --force-reinstall "pytest-insight[sql]"'
        )
    return path


def connect(target: Target) -> Any:
    """A DuckDB connection with the ``sessions`` and ``results`` views over ``target``.

    Raises:
        DependencyError: DuckDB or an extension package is missing or of another version.
        ConfigurationError: the S3 settings cannot be resolved.
        NotFoundError: a bucket prefix holds no bundle.
    """
    duckdb = _duckdb()
    # Nothing is fetched from the network, and no progress bar is drawn on stdout,
    # where it would land in the middle of --json and --csv output.
    config = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    connection = duckdb.connect(config=config)
    connection.execute("SET enable_progress_bar = false")  # a session setting only
    connection.execute("SET TimeZone = 'UTC'")
    version = duckdb.__version__
    query = "SELECT extension_name FROM duckdb_extensions() WHERE loaded"
    loaded = {row[0] for row in connection.execute(query).fetchall()}
    needed = ["json", "httpfs"] if isinstance(target, BucketTarget) else ["json"]
    for name in needed:
        if name not in loaded:
            connection.execute(f"LOAD '{_extension_file(name, version).as_posix()}'")
    if isinstance(target, LocalTarget):
        finish_commits(target)
    if isinstance(target, BucketTarget):
        settings = resolve_s3_settings(target.endpoint_url, target.region)
        connection.execute(secret_statement(settings, f"s3://{target.bucket}"))
    bundles: list[str] = []
    if not isinstance(target, LocalTarget):  # list the prefix once; the views read this list
        rows = connection.execute("SELECT file FROM glob(?) ORDER BY file", [target.glob]).fetchall()
        bundles = [row[0] for row in rows]
        if not bundles and isinstance(target, BucketTarget):
            raise NotFoundError(f"{target.uri}: no bundles to query", uri=target.uri)
    for statement in view_statements(target, bundles):
        connection.execute(statement)
    return connection


def run_sql(target: Target, query: str) -> SqlResult:
    """Run ``query`` over ``target`` and return its columns and rows.

    Raises:
        DependencyError: DuckDB or an extension package is missing.
        ConfigurationError: the query is not valid SQL, names an unknown
            table or column, or has no statement.
        NotFoundError: the bucket prefix holds no bundle.
        StorageError: a file or object cannot be read (message from DuckDB).
    """
    duckdb = _duckdb()
    connection = None
    try:
        connection = connect(target)
        relation = connection.sql(query)
        if relation is None:  # a statement that returns nothing (SET, CREATE ...)
            return SqlResult([], [])
        return _fetch(relation)
    except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException) as exc:
        raise ConfigurationError(f"SQL: {_first_line(exc)}") from exc
    except duckdb.Error as exc:
        raise StorageError(f"{target.uri}: {_first_line(exc)}", uri=target.uri) from exc
    finally:
        if connection is not None:
            connection.close()


def _fetch(relation: Any) -> SqlResult:
    """Fetch every row; TIMESTAMPTZ comes back as an aware UTC datetime, JSON as Python values.

    DuckDB would need pytz for those; the connection's zone is UTC, so the
    naive timestamp is the UTC time.
    """
    columns: list[str] = list(relation.columns)
    zoned = [str(kind) == "TIMESTAMP WITH TIME ZONE" for kind in relation.types]
    if any(zoned):
        names = [_quoted(name) for name in columns]
        relation = relation.project(
            ", ".join(f"CAST({n} AS TIMESTAMP) AS {n}" if z else n for n, z in zip(names, zoned, strict=True))
        )
    texts = [str(kind) == "JSON" for kind in relation.types]
    rows = relation.fetchall()
    if any(zoned) or any(texts):
        rows = [tuple(_value(v, z, t) for v, z, t in zip(row, zoned, texts, strict=True)) for row in rows]
    return SqlResult(columns, rows)


def _value(value: Any, zoned: bool, text: bool) -> Any:
    if value is None:
        return None
    if zoned:
        return value.replace(tzinfo=UTC)
    return json.loads(value) if text else value


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
