"""What the ``insight sql`` tests share: the sessions, the CLI as a subprocess, and Query's answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from pytest_insight.core.storage import Storage
from pytest_insight.model.sessions import TestSession
from pytest_insight.query.builder import Query
from tests.conftest import BASE_TIME, build_session

__all__ = [
    "SUTS",
    "insight_sql",
    "query_outcomes",
    "query_results",
    "query_sessions",
    "sample_sessions",
    "sql_results",
    "sql_sessions",
]

SUTS = ("api", "my svc/é", "web")


def sample_sessions() -> list[TestSession]:
    """18 sessions of three SUTs (one whose name needs encoding) over six UTC days, with varied tags."""
    sessions = []
    for number in range(18):
        sut = SUTS[number % 3]
        start = BASE_TIME + timedelta(hours=9 * number, minutes=number)
        tags = {
            "branch": "main" if number % 2 else "fix/x",
            "ci": "github-actions",
            "commit": f"{number:040x}",
        }
        sessions.append(
            build_session(f"{sut}-{number:03d}", sut_name=sut, start=start, tests=3 + number % 5, tags=tags)
        )
    return sessions


def insight_sql(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pytest_insight sql ARGS`` as a user would, with ``home`` as the insight home."""
    environment = {**os.environ, "PYTEST_INSIGHT_HOME": str(home), **(env or {})}
    for name in ("PYTEST_INSIGHT_PROFILE", "PYTEST_INSIGHT_STORAGE"):
        if env is None or name not in env:
            environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "pytest_insight", "sql", *args],
        capture_output=True,
        text=True,
        env=environment,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def _json_rows(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


_SESSION_COLUMNS = [
    "session_id",
    "sut_name",
    "session_date",
    "session_start_time",
    "session_stop_time",
    "session_duration",
    "session_tags",
    "branch",
    "commit_sha",
    "tests",
    "passed",
    "failed",
    "skipped",
    "xfailed",
    "xpassed",
    "rerun",
    "error",
]
_SESSION_SQL = f"SELECT {', '.join(_SESSION_COLUMNS)} FROM sessions {{where}} ORDER BY session_id"
_RESULT_COLUMNS = [
    "session_id",
    "sut_name",
    "nodeid",
    "outcome",
    "duration",
    "has_warning",
    "start_time",
    "rerun_final_outcome",
]


def sql_sessions(home: Path, storage: str, where: str = "", env: dict[str, str] | None = None) -> list[Any]:
    """The ``sessions`` view's rows, through the CLI's ``--json``."""
    rows = _json_rows(
        insight_sql(home, _SESSION_SQL.format(where=where), "--storage", storage, "--json", env=env)
    )
    return [tuple(json.dumps(row[name], sort_keys=True) for name in _SESSION_COLUMNS) for row in rows]


def query_sessions(sessions: list[TestSession]) -> list[Any]:
    """What ``sessions`` should hold for these sessions, computed from the model."""
    rows = []
    for session in sorted(sessions, key=lambda s: s.session_id):
        counts = Counter(result.outcome.value for result in session.test_results)
        row = [
            session.session_id,
            session.sut_name,
            session.session_start_time.date().isoformat(),
            session.session_start_time.isoformat(),
            session.session_stop_time.isoformat(),
            session.session_duration,
            dict(session.session_tags),
            session.session_tags.get("branch"),
            session.session_tags.get("commit"),
            len(session.test_results),
            *(counts[o] for o in ("passed", "failed", "skipped", "xfailed", "xpassed", "rerun", "error")),
        ]
        rows.append(tuple(json.dumps(value, sort_keys=True) for value in row))
    return rows


def sql_results(home: Path, storage: str, where: str = "", env: dict[str, str] | None = None) -> Counter[Any]:
    """The ``results`` view's rows (session, node, outcome, duration, warning, start, rerun) as a multiset."""
    query = f"SELECT {', '.join(_RESULT_COLUMNS)} FROM results {where}"
    rows = _json_rows(insight_sql(home, query, "--storage", storage, "--json", env=env))
    return Counter(tuple(row[name] for name in _RESULT_COLUMNS) for row in rows)


def query_results(sessions: list[TestSession]) -> Counter[Any]:
    """What ``results`` should hold for these sessions."""
    rows: Counter[Any] = Counter()
    for session in sessions:
        finals = {g.nodeid: g.final_outcome.value for g in session.rerun_test_groups if g.final_outcome}
        for result in session.test_results:
            rows[
                (
                    session.session_id,
                    session.sut_name,
                    result.nodeid,
                    result.outcome.value,
                    result.duration,
                    result.has_warning,
                    result.start_time.isoformat(),
                    finals.get(result.nodeid),
                )
            ] += 1
    return rows


def query_outcomes(storage: Storage, sut_name: str) -> dict[str, int]:
    """``Query``'s outcome counts for one SUT."""
    counts = Query(storage).for_sut(sut_name).execute().outcome_counts()
    return {outcome.value: number for outcome, number in counts.items()}
