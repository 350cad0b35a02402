"""The one description of what SQL sees: the stored session line, and the views over it.

Everything else is derived from the two tuples here: the columns DuckDB reads
a session line with (:func:`duckdb_columns`), the Glue table's columns
(:func:`glue_columns`), the ``sessions`` and ``results`` views
(:mod:`pytest_insight.sql.views`) and the README's column tables
(:func:`markdown_table`); ``tests/test_sql_schema.py`` checks they agree.

A stored line is a session's canonical JSON (see the README's "Bundle"): the
fields of :data:`LINE_FIELDS`. The views name their columns after the
session model; each column is a DuckDB expression over the line (alias
``s``), the partition (``session_date``) and, in ``results``, one element of
``test_results`` (alias ``r``).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "LINE_FIELDS",
    "OUTCOMES",
    "RESULT_FIELDS",
    "RESULTS_COLUMNS",
    "SESSIONS_COLUMNS",
    "Field",
    "ViewColumn",
    "duckdb_columns",
    "glue_columns",
    "glue_partition_keys",
    "markdown_table",
]


class Field(NamedTuple):
    """A field of the stored JSON: its name, its kind and what it holds.

    ``kind`` is one of ``string``, ``int``, ``double``, ``bool``, ``timestamp``
    (ISO 8601 text with an offset, always UTC), ``tags`` (string to string),
    ``object`` (any JSON object), ``results`` or ``reruns`` (the two lists).
    """

    name: str
    kind: str
    doc: str


class ViewColumn(NamedTuple):
    """A column of a view: its name, SQL type, DuckDB expression and meaning."""

    name: str
    sql_type: str
    expression: str
    doc: str


OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "rerun", "error")

RESULT_FIELDS = (
    Field("nodeid", "string", "pytest's node id"),
    Field("outcome", "string", "one of " + ", ".join(OUTCOMES)),
    Field("start_time", "timestamp", "when the test started (UTC)"),
    Field("stop_time", "timestamp", "when it stopped (UTC)"),
    Field("duration", "double", "seconds"),
    Field("has_warning", "bool", "whether the test emitted a warning"),
    Field("caplog", "string", "captured log"),
    Field("capstdout", "string", "captured stdout"),
    Field("capstderr", "string", "captured stderr"),
    Field("longreprtext", "string", "the failure text"),
    Field("setup_duration", "double", "seconds of the test's setup"),
    Field("teardown_duration", "double", "seconds of the test's teardown"),
    Field("subtest", "string", "a subtest's label, such as [part] (i=2)"),
    Field("worker", "string", "the pytest-xdist worker that ran it, such as gw0"),
)

LINE_FIELDS = (
    Field("schema_version", "int", "the format's version (1)"),
    Field("session_id", "string", "the session's unique id"),
    Field("sut_name", "string", "the system under test"),
    Field("session_start_time", "timestamp", "when the run started (UTC)"),
    Field("session_stop_time", "timestamp", "when it stopped (UTC)"),
    Field("session_duration", "double", "seconds"),
    Field("session_tags", "tags", "tags, CI context included"),
    Field("testing_system", "object", "host, platform, Python and pytest versions"),
    Field("test_results", "results", "every result, in order"),
    Field("rerun_test_groups", "reruns", "each rerun test's node id and final outcome"),
)

_RERUN_FIELDS = (Field("nodeid", "string", ""), Field("final_outcome", "string", ""))

_DUCKDB = {
    "string": "VARCHAR",
    "int": "INTEGER",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
    "tags": "MAP(VARCHAR, VARCHAR)",
    "object": "JSON",
}
# The OpenX JSON SerDe hands a JSON object declared as a string over as its text.
_GLUE = {
    "string": "string",
    "int": "int",
    "double": "double",
    "bool": "boolean",
    "timestamp": "string",
    "tags": "map<string,string>",
    "object": "string",
}


def _duckdb_type(field: Field) -> str:
    if field.kind == "results":
        return "STRUCT(" + ", ".join(f"{f.name} {_duckdb_type(f)}" for f in RESULT_FIELDS) + ")[]"
    if field.kind == "reruns":
        return "STRUCT(" + ", ".join(f"{f.name} {_duckdb_type(f)}" for f in _RERUN_FIELDS) + ")[]"
    return _DUCKDB[field.kind]


def _glue_type(field: Field) -> str:
    if field.kind == "results":
        return "array<struct<" + ",".join(f"{f.name}:{_glue_type(f)}" for f in RESULT_FIELDS) + ">>"
    if field.kind == "reruns":
        return "array<struct<" + ",".join(f"{f.name}:{_glue_type(f)}" for f in _RERUN_FIELDS) + ">>"
    return _GLUE[field.kind]


def duckdb_columns() -> dict[str, str]:
    """The ``columns`` argument of DuckDB's ``read_json`` for a session line."""
    return {field.name: _duckdb_type(field) for field in LINE_FIELDS}


def glue_columns() -> list[dict[str, str]]:
    """The Glue table's ``Columns``: the session line's fields, with Hive types and comments."""
    return [{"Name": f.name, "Type": _glue_type(f), "Comment": f.doc} for f in LINE_FIELDS]


def glue_partition_keys() -> list[dict[str, str]]:
    """The Glue table's ``PartitionKeys``: the layout's ``sut=`` and ``date=`` segments."""
    return [
        {"Name": "sut", "Type": "string", "Comment": "the SUT as encoded in keys (injected)"},
        {"Name": "session_date", "Type": "string", "Comment": "the UTC day of session_start_time"},
    ]


def _tag(key: str) -> str:
    return f"s.session_tags['{key}']"


def _count(outcome: str) -> str:
    return f"len(list_filter(s.test_results, x -> x.outcome = '{outcome}'))"


_SESSION_HEAD = (
    ViewColumn("session_id", "VARCHAR", "s.session_id", "the session's unique id"),
    ViewColumn("sut_name", "VARCHAR", "s.sut_name", "the system under test (prunes partitions)"),
    ViewColumn("session_date", "DATE", "s.session_date", "UTC day of the start (prunes partitions)"),
    ViewColumn("session_start_time", "TIMESTAMPTZ", "s.session_start_time", "when the run started"),
)

SESSIONS_COLUMNS = (
    *_SESSION_HEAD,
    ViewColumn("session_stop_time", "TIMESTAMPTZ", "s.session_stop_time", "when it stopped"),
    ViewColumn("session_duration", "DOUBLE", "s.session_duration", "seconds"),
    ViewColumn("session_tags", "MAP(VARCHAR, VARCHAR)", "s.session_tags", "every tag"),
    ViewColumn("testing_system", "JSON", "s.testing_system", "host, platform and versions"),
    ViewColumn("ci", "VARCHAR", _tag("ci"), "CI service (tag `ci`)"),
    ViewColumn("branch", "VARCHAR", _tag("branch"), "branch (tag `branch`)"),
    ViewColumn("commit_sha", "VARCHAR", _tag("commit"), "commit (tag `commit`)"),
    ViewColumn("ci_run_id", "VARCHAR", _tag("ci_run_id"), "CI run (tag `ci_run_id`)"),
    ViewColumn("ci_run_url", "VARCHAR", _tag("ci_run_url"), "CI run's page (tag `ci_run_url`)"),
    ViewColumn("tests", "BIGINT", "len(s.test_results)", "results in the session"),
    *(ViewColumn(o, "BIGINT", _count(o), f"results with outcome `{o}`") for o in OUTCOMES),
)

RESULTS_COLUMNS = (
    *_SESSION_HEAD,
    ViewColumn("nodeid", "VARCHAR", "r.nodeid", "pytest's node id"),
    ViewColumn("outcome", "VARCHAR", "r.outcome", "one of " + ", ".join(f"`{o}`" for o in OUTCOMES)),
    ViewColumn("start_time", "TIMESTAMPTZ", "r.start_time", "when the test started"),
    ViewColumn("stop_time", "TIMESTAMPTZ", "r.stop_time", "when it stopped"),
    ViewColumn("duration", "DOUBLE", "r.duration", "seconds of the call"),
    ViewColumn("setup_duration", "DOUBLE", "coalesce(r.setup_duration, 0)", "seconds of its setup"),
    ViewColumn("teardown_duration", "DOUBLE", "coalesce(r.teardown_duration, 0)", "seconds of its teardown"),
    ViewColumn("subtest", "VARCHAR", "coalesce(r.subtest, '')", "a subtest's label (`[part] (i=2)`) or ''"),
    ViewColumn("worker", "VARCHAR", "coalesce(r.worker, '')", "the xdist worker that ran it (`gw0`) or ''"),
    ViewColumn("has_warning", "BOOLEAN", "coalesce(r.has_warning, false)", "whether it emitted a warning"),
    ViewColumn(
        "rerun_final_outcome",
        "VARCHAR",
        "list_filter(s.rerun_test_groups, g -> g.nodeid = r.nodeid)[1].final_outcome",
        "the last attempt's outcome when pytest-rerunfailures reran this test, else NULL",
    ),
    ViewColumn("longreprtext", "VARCHAR", "coalesce(r.longreprtext, '')", "the failure text"),
    ViewColumn("capstdout", "VARCHAR", "coalesce(r.capstdout, '')", "captured stdout"),
    ViewColumn("capstderr", "VARCHAR", "coalesce(r.capstderr, '')", "captured stderr"),
    ViewColumn("caplog", "VARCHAR", "coalesce(r.caplog, '')", "captured log"),
)


def markdown_table(columns: tuple[ViewColumn, ...]) -> str:
    """The README's table of a view's columns: name, type and meaning."""
    rows = [f"| `{c.name}` | {c.sql_type} | {c.doc} |" for c in columns]
    return "\n".join(["| column | type | meaning |", "|---|---|---|", *rows])
