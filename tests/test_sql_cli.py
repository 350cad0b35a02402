"""``insight sql`` as a command: errors, the extra, what it imports and how it connects."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_insight.core.storage import JSONStorage
from pytest_insight.sql import LocalTarget, connect
from tests.sql_helpers import insight_sql, sample_sessions


def test_the_connection_downloads_nothing_and_draws_no_progress_bar(tmp_path: Path) -> None:
    connection = connect(LocalTarget(tmp_path))
    settings = ("autoinstall_known_extensions", "autoload_known_extensions", "enable_progress_bar")
    for name in settings:
        assert connection.execute(f"SELECT current_setting('{name}')").fetchone() == (False,)


def test_json_columns_come_back_as_json(tmp_path: Path, insight_home: Path) -> None:
    root = tmp_path / "store"
    JSONStorage(root).save_sessions(sample_sessions()[:1])
    result = insight_sql(
        insight_home, "SELECT testing_system FROM sessions LIMIT 1", "--storage", str(root), "--json"
    )
    assert json.loads(result.stdout) == [
        {"testing_system": {"cpus": 4, "hostname": "ci-runner-7", "python": "3.11.7"}}
    ]


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["SELECT nope FROM results"], 2, ["SQL:", "nope"]),
        (["SELEC 1"], 2, ["SQL:", "syntax"]),
        ([], 2, ["--file"]),
        (["SELECT 1", "--file", "x.sql"], 2, ["--file"]),
        (["--file", "missing.sql"], 3, ["missing.sql", "slowest_tests"]),
        (["SELECT 1", "--csv", "--json"], 2, ["--csv"]),
        (["SELECT 1", "--storage", "memory://"], 2, ["memory://"]),
        (["SELECT 1", "--storage", "s3://bucket/team/v1/sut=api"], 2, ["before /v1/"]),
    ],
)
def test_user_errors_are_one_line(
    insight_home: Path, tmp_path: Path, args: list[str], code: int, words: list[str]
) -> None:
    if "--storage" not in args:
        args = [*args, "--storage", str(tmp_path / "store")]
    result = subprocess.run(
        [sys.executable, "-m", "pytest_insight", "sql", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTEST_INSIGHT_HOME": str(insight_home), "PATH": ""},
        check=False,
        timeout=60,
    )
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("insight: error: ")
    for word in words:
        assert word in last


def test_without_the_extra_one_line_says_what_to_install(insight_home: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "no_duckdb"
    blocker.mkdir()
    (blocker / "duckdb.py").write_text("raise ImportError('no duckdb here')\n")
    JSONStorage(tmp_path / "store").save_sessions(sample_sessions()[:1])
    result = insight_sql(
        insight_home, "SELECT 1", "--storage", str(tmp_path / "store"), env={"PYTHONPATH": str(blocker)}
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip() == 'insight: error: insight sql needs DuckDB: pip install "pytest-insight[sql]"'
    )


def test_the_plugin_and_other_commands_do_not_import_duckdb(tmp_path: Path) -> None:
    code = (
        "import sys, pytest_insight.plugin, pytest_insight.cli.parser, pytest_insight.sql; "
        "pytest_insight.cli.parser.build_parser(); print('duckdb' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    "name",
    [
        "pytest_insight.sql",
        "pytest_insight.sql.schema",
        "pytest_insight.sql.target",
        "pytest_insight.sql.credentials",
        "pytest_insight.sql.views",
        "pytest_insight.sql.engine",
        "pytest_insight.cli.sql_command",
    ],
)
def test_every_public_name_exists(name: str) -> None:
    module = importlib.import_module(name)
    assert len(module.__all__) == len(set(module.__all__))
    assert [attr for attr in module.__all__ if not hasattr(module, attr)] == []
