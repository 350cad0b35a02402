"""``insight sql`` over local stores and export directories: the real CLI against ``Query``'s answers."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_insight.core.storage import JSONStorage, Storage
from pytest_insight.errors import ConfigurationError
from pytest_insight.query.builder import Query
from pytest_insight.sql import LayoutTarget, LocalTarget, resolve_target, run_sql
from pytest_insight.storage.local.store import LocalBackend
from tests.conftest import build_session
from tests.sql_helpers import (
    SUTS,
    insight_sql,
    query_outcomes,
    query_results,
    query_sessions,
    sample_sessions,
    sql_results,
    sql_sessions,
)

QUERIES = Path(__file__).parents[1] / "pytest_insight" / "sql" / "queries"


@pytest.fixture(params=["files", "packs"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Storage]:
    """A local store holding the sample sessions, each in its own file or all in packs."""
    root = tmp_path / "store"
    pack_from = 10_000 if request.param == "files" else 2
    storage = Storage(LocalBackend(root, pack_from=pack_from))
    sessions = sample_sessions()
    storage.save_sessions(sessions[:9])
    storage.save_sessions(sessions[9:])
    assert any((root / ("sessions" if request.param == "files" else "packs")).iterdir())
    return root, storage


def test_sessions_and_results_equal_query_over_a_local_store(
    store: tuple[Path, Storage], insight_home: Path
) -> None:
    root, storage = store
    everything = Query(storage).execute()
    assert sql_sessions(insight_home, str(root)) == query_sessions(list(everything))
    assert sql_results(insight_home, str(root)) == query_results(list(everything))


def test_filters_by_sut_and_day_equal_query(store: tuple[Path, Storage], insight_home: Path) -> None:
    root, storage = store
    selected = list(Query(storage).for_sut("my svc/é").after_date("2024-05-02").execute())
    assert selected
    where = "WHERE sut_name = 'my svc/é' AND session_date >= DATE '2024-05-02'"
    assert sql_sessions(insight_home, str(root), where) == query_sessions(selected)
    assert sql_results(insight_home, str(root), where) == query_results(selected)


def test_outcome_counts_by_sut_equal_query(store: tuple[Path, Storage], insight_home: Path) -> None:
    root, storage = store
    query = "SELECT sut_name, outcome, count(*) AS n FROM results GROUP BY ALL"
    result = insight_sql(insight_home, query, "--storage", str(root), "--json")
    assert result.returncode == 0, result.stderr
    counts: dict[str, dict[str, int]] = {}
    for row in json.loads(result.stdout):
        counts.setdefault(row["sut_name"], {})[row["outcome"]] = row["n"]
    assert counts == {sut: query_outcomes(storage, sut) for sut in SUTS}


def test_an_export_directory_gives_the_same_answers(
    store: tuple[Path, Storage], tmp_path: Path, insight_home: Path
) -> None:
    root, storage = store
    exported = tmp_path / "exported"
    storage.export_sessions(exported)
    assert isinstance(resolve_target(str(exported), {}), LayoutTarget)
    assert sql_sessions(insight_home, str(exported)) == sql_sessions(insight_home, str(root))
    assert sql_results(insight_home, str(exported)) == sql_results(insight_home, str(root))


def test_a_sut_name_too_long_for_a_key_comes_from_the_line(tmp_path: Path) -> None:
    long_name = "service-" + "é" * 100  # 208 characters once encoded: cut and hashed in keys
    storage = JSONStorage(tmp_path / "store")
    storage.save_sessions(
        [build_session("long-1", sut_name=long_name), build_session("short-1", sut_name="api")]
    )
    storage.export_sessions(tmp_path / "exported")
    (part,) = (tmp_path / "exported" / "v1").glob("sut=service*")
    assert "~" in part.name
    target = resolve_target(str(tmp_path / "exported"), {})
    query = "SELECT sut_name, count(*) FROM results GROUP BY ALL ORDER BY ALL"
    assert run_sql(target, query).rows == run_sql(resolve_target(str(tmp_path / "store"), {}), query).rows
    by_name = "SELECT DISTINCT session_id FROM sessions WHERE sut_name = 'service-' || repeat('é', 100)"
    assert run_sql(target, by_name).rows == [("long-1",)]


def test_the_store_is_opened_as_its_readers_open_it(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text('{"sessions": []}')
    with pytest.raises(ConfigurationError, match=r"0\.9 storage file"):
        run_sql(LocalTarget(tmp_path / "old.json"), "SELECT count(*) FROM sessions")


def test_table_and_csv_output(store: tuple[Path, Storage], insight_home: Path) -> None:
    root, _ = store
    query = "SELECT sut_name, count(*) AS sessions FROM sessions GROUP BY ALL ORDER BY sut_name"
    table = insight_sql(insight_home, query, "--storage", str(root))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["sut_name", "sessions"]
    assert lines[1].split() == ["api", "6"]
    assert lines[-1] == "(3 rows)"
    as_csv = insight_sql(insight_home, query, "--storage", str(root), "--csv")
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [
        ["sut_name", "sessions"],
        ["api", "6"],
        ["my svc/é", "6"],
        ["web", "6"],
    ]


def test_the_configured_storage_is_used(
    store: tuple[Path, Storage], insight_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = store
    result = insight_sql(
        insight_home,
        "SELECT count(*) AS n FROM sessions",
        "--json",
        env={"PYTEST_INSIGHT_STORAGE": str(root)},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": 18}]
    assert f"PYTEST_INSIGHT_STORAGE={root}" in result.stderr


@pytest.mark.parametrize("name", sorted(path.name for path in QUERIES.glob("*.sql")))
def test_the_named_queries_run_with_file(store: tuple[Path, Storage], insight_home: Path, name: str) -> None:
    root, _ = store
    result = insight_sql(insight_home, "--file", str(QUERIES / name), "--storage", str(root), "--json")
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)
    by_name = insight_sql(insight_home, "--file", name.removesuffix(".sql"), "--storage", str(root), "--json")
    assert by_name.stdout == result.stdout


def test_slowest_tests_query_agrees_with_query(store: tuple[Path, Storage], insight_home: Path) -> None:
    root, storage = store
    result = insight_sql(
        insight_home, "--file", str(QUERIES / "slowest_tests.sql"), "--storage", str(root), "--json"
    )
    rows = json.loads(result.stdout)
    slowest = Query(storage).execute().slowest_tests(5)
    assert [(row["nodeid"], row["mean_duration"]) for row in rows[:5]] == [
        (test.nodeid, pytest.approx(test.mean_duration)) for test in slowest
    ]


def test_failure_rate_query_agrees_with_query(tmp_path: Path, insight_home: Path) -> None:
    now = datetime.now(UTC)
    recent = [
        build_session(f"r-{n}", sut_name="api", start=now - timedelta(days=n * 7), tests=2 + n)
        for n in range(6)
    ]
    storage = JSONStorage(tmp_path / "store")
    storage.save_sessions(recent)
    result = insight_sql(
        insight_home, "--file", "failure_rate_30_days", "--storage", str(tmp_path / "store"), "--json"
    )
    assert result.returncode == 0, result.stderr
    rows = {row["nodeid"]: (row["runs"], row["failures"]) for row in json.loads(result.stdout)}
    last_30_days = Query(storage).in_last_days(30).execute()
    expected = {t.nodeid: (t.runs, t.failed_runs) for t in last_30_days.failing_tests()}
    assert rows == expected
    assert len(last_30_days) < len(recent)


def test_results_copied_to_parquet_in_the_hive_layout_read_back_the_same(
    store: tuple[Path, Storage], tmp_path: Path, insight_home: Path
) -> None:
    root, _ = store
    out = tmp_path / "parquet"
    copy = f"COPY (SELECT * FROM results) TO '{out}' (FORMAT parquet, PARTITION_BY (sut_name, session_date))"
    written = insight_sql(insight_home, copy, "--storage", str(root))
    assert written.returncode == 0, written.stderr
    assert written.stdout == ""
    assert sorted(p.name for p in out.iterdir()) == [
        "sut_name=api",
        "sut_name=my%20svc%2F%C3%A9",
        "sut_name=web",
    ]
    count = "SELECT sut_name, outcome, count(*) FROM {} GROUP BY ALL ORDER BY ALL"
    parquet = f"read_parquet('{out}/*/*/*.parquet', hive_partitioning=true)"
    target = LocalTarget(root)
    assert run_sql(target, count.format(parquet)).rows == run_sql(target, count.format("results")).rows


def test_a_damaged_session_file_is_an_error_naming_it(tmp_path: Path, insight_home: Path) -> None:
    root = tmp_path / "store"
    JSONStorage(root).save_sessions(sample_sessions()[:2])
    damaged = next((root / "sessions").glob("*/*.json"))
    damaged.write_text(damaged.read_text()[:-40] + "\n")
    result = insight_sql(insight_home, "SELECT count(*) FROM sessions", "--storage", str(root))
    assert result.returncode == 3
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("insight: error: ")
    assert damaged.name in last


def test_an_empty_store_has_empty_views(tmp_path: Path) -> None:
    target = LocalTarget(tmp_path / "nothing")
    assert run_sql(target, "SELECT count(*) FROM sessions").rows == [(0,)]
    assert run_sql(target, "SELECT count(*) FROM results").rows == [(0,)]
