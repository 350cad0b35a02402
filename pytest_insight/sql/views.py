"""The SQL that defines the ``sessions`` and ``results`` views over a target.

Both views read one relation, ``insight_lines``: every stored session line
with its ``session_date``. Over the bucket layout, ``sut_name`` and
``session_date`` come from the ``sut=`` and ``date=`` segments of each
object's key, so that DuckDB prunes objects by them (a ``WHERE sut_name = 'api'`` lists and
reads ``sut=api/`` only). Only a SUT whose name was too long for a key
segment (cut and suffixed with ``~`` and a hash, see
:func:`pytest_insight.format.layout.encode_sut`) takes its name from the line.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_insight.sql.schema import (
    LINE_FIELDS,
    RESULTS_COLUMNS,
    SESSIONS_COLUMNS,
    ViewColumn,
    duckdb_columns,
)
from pytest_insight.sql.target import LocalTarget, Target

__all__ = ["VIEWS", "view_statements"]

VIEWS = ("sessions", "results")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _columns_argument() -> str:
    pairs = ", ".join(f"{_literal(name)}: {_literal(kind)}" for name, kind in duckdb_columns().items())
    return "{" + pairs + "}"


def _line_names(*, except_sut: bool = False) -> str:
    return ", ".join(f.name for f in LINE_FIELDS if not (except_sut and f.name == "sut_name"))


def _empty_lines() -> str:
    casts = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in duckdb_columns().items())
    return f"SELECT {casts}, CAST(NULL AS DATE) AS session_date WHERE false"


def _store_lines(target: LocalTarget) -> str:
    """A local store's session files and packs.

    A pack ends with lines that are no session (its index, its names, two
    offsets), so packs are read with ``ignore_errors`` and the index line,
    a JSON object without ``session_id``, is dropped; session files are read
    strictly.
    """
    root = target.root.resolve()
    by_day = "CAST(session_start_time AS DATE) AS session_date"
    parts = []
    sessions = root / "sessions"
    if sessions.is_dir() and any(sessions.glob("*/*.json")):
        glob = _literal(f"{sessions.as_posix()}/*/*.json")
        parts.append(
            f"SELECT {_line_names()}, {by_day} FROM read_json({glob}, format='newline_delimited', "
            f"columns={_columns_argument()})"
        )
    packs = root / "packs"
    if packs.is_dir() and any(packs.glob("*.pack")):
        glob = _literal(f"{packs.as_posix()}/*.pack")
        parts.append(
            f"SELECT {_line_names()}, {by_day} FROM read_json({glob}, format='newline_delimited', "
            f"ignore_errors=true, columns={_columns_argument()}) WHERE session_id IS NOT NULL"
        )
    return "\nUNION ALL\n".join(parts) if parts else _empty_lines()


# The SUT and day from an object's key, computed from ``filename`` alone so
# that DuckDB prunes files with them. DuckDB's own hive partitioning would
# URL-decode every segment and fail on the cut form of a long SUT name,
# which may end inside a UTF-8 sequence: the bundles of such a SUT are read
# apart, their SUT taken from the lines.
_KEY_SUT = "url_decode(regexp_extract(filename, '/sut=([^/]*)/date=[^/]*/[^/]*$', 1))"
_KEY_DAY = "CAST(regexp_extract(filename, '/date=([0-9]{4}-[0-9]{2}-[0-9]{2})/[^/]*$', 1) AS DATE)"


def _layout_lines(files: Sequence[str]) -> str:
    """The bundles ``files`` (listed once, so DuckDB never lists the prefix again), by key segment."""
    whole = [file for file in files if "~" not in file.rsplit("/sut=", 1)[-1].split("/", 1)[0]]
    cut = [file for file in files if file not in set(whole)]
    names = _line_names(except_sut=True)
    parts = []
    for group, sut in ((whole, _KEY_SUT), (cut, "sut_name")):
        if group:
            listed = "[" + ", ".join(_literal(file) for file in group) + "]"
            source = (
                f"read_json({listed}, format='newline_delimited', hive_partitioning=false, filename=true, "
                f"columns={_columns_argument()})"
            )
            parts.append(f"SELECT {names}, {sut} AS sut_name, {_KEY_DAY} AS session_date FROM {source}")
    return "\nUNION ALL\n".join(parts) if parts else _empty_lines()


def _select(columns: tuple[ViewColumn, ...]) -> str:
    return ", ".join(f"CAST({c.expression} AS {c.sql_type}) AS {c.name}" for c in columns)


def view_statements(target: Target, bundles: Sequence[str] = ()) -> list[str]:
    """The statements that create ``insight_lines``, ``sessions`` and ``results`` for ``target``.

    Args:
        target: what to read.
        bundles: for the bucket layout, every bundle's path or URL, as listed once.
    """
    lines = _store_lines(target) if isinstance(target, LocalTarget) else _layout_lines(bundles)
    return [
        f"CREATE OR REPLACE TEMP VIEW insight_lines AS\n{lines}",
        f"CREATE OR REPLACE TEMP VIEW sessions AS SELECT {_select(SESSIONS_COLUMNS)} FROM insight_lines s",
        f"CREATE OR REPLACE TEMP VIEW results AS SELECT {_select(RESULTS_COLUMNS)} "
        # unnest in a select list, not a lateral join: DuckDB pushes a filter on the
        # session's columns through it down to the partitions, and not through the join
        "FROM (SELECT *, unnest(test_results) AS r FROM insight_lines) s",
    ]
