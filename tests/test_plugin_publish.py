"""The end of a recorded run: the save is bounded, and a session a bucket did not take is kept.

Real pytest runs (pytester) save to an S3 endpoint on 127.0.0.1 that refuses
connections (a closed free port) or accepts them and never answers (a
listening socket nobody reads). The bound is asserted through what the run
says, never through wall-clock time: a refused endpoint must be reported as
refused before a deadline that the library's default ten attempts would
overrun, and a silent one as the deadline passing.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from pytest_insight.core.storage import JSONStorage
from pytest_insight.model.sessions import TestOutcome
from pytest_insight.plugin.options import PUBLISH_TIMEOUT
from pytest_insight.plugin.publish import MAX_ATTEMPTS, transport_limits
from pytest_insight.plugin.settings import InsightSettings, resolve_settings
from pytest_insight.storage.s3.config import resolve_settings as resolve_s3_settings

SUITE = """
def test_pass():
    pass

def test_fail():
    assert False, "boom"
"""

BUCKET = "s3://bucket/team"

NOT_SAVED = re.compile(
    r"pytest-insight: could not save session (?P<id>api-\S+) to s3://bucket/team: (?P<reason>.+); "
    r"NOT saved there, kept in (?P<file>\S+) \(insight import (?P<dir>\S+) --storage s3://bucket/team\)$"
)


@pytest.fixture(autouse=True)
def no_insight_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PYTEST_INSIGHT", "PYTEST_INSIGHT_PUBLISH_TIMEOUT", "PYTEST_INSIGHT_FLAKY_NOTE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def refused_endpoint(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """``AWS_ENDPOINT_URL`` at a free 127.0.0.1 port that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    return endpoint


@pytest.fixture
def silent_endpoint(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``AWS_ENDPOINT_URL`` at a 127.0.0.1 socket whose backlog accepts connections that are never read."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(128)
        endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        yield endpoint


def insight_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if line.startswith("pytest-insight:")]


def assert_no_traceback(result: pytest.RunResult) -> None:
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_refused_bucket_is_reported_at_once_and_the_session_kept_for_import(
    pytester: pytest.Pytester, refused_endpoint: str, insight_home: Path, tmp_path: Path
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest(
        "--insight", "--insight-sut", "api", "--insight-storage", BUCKET, "--insight-publish-timeout", "3"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert result.parseoutcomes() == {"passed": 1, "failed": 1}
    assert_no_traceback(result)
    lines = insight_lines(result)
    assert len(lines) == 1, lines  # no second line for the history read that failed too
    found = NOT_SAVED.match(lines[0])
    assert found, lines[0]
    # refused, not timed out: ten attempts with backoff (the library's default) take longer than 3 s
    assert f"cannot reach {refused_endpoint}" in found["reason"], found["reason"]
    assert "no answer within" not in found["reason"]
    kept = Path(found["file"])
    assert kept == insight_home / "unsent" / f"{found['id']}.jsonl.gz"
    assert Path(found["dir"]) == kept.parent

    store = tmp_path / "store"
    imported = subprocess.run(
        [sys.executable, "-m", "pytest_insight", "import", found["dir"], "--storage", str(store)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    (session,) = JSONStorage(store).load_sessions()
    assert session.session_id == found["id"]
    assert sorted(r.outcome for r in session.test_results) == [TestOutcome.FAILED, TestOutcome.PASSED]


def test_a_bucket_that_never_answers_is_given_up_at_the_deadline(
    pytester: pytest.Pytester, silent_endpoint: str, insight_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_INSIGHT_PUBLISH_TIMEOUT", "1.5")
    pytester.makepyfile(test_suite=SUITE)  # a failure: the history read for the flaky note waits too
    result = pytester.runpytest("--insight", "--insight-sut", "api", "--insight-storage", BUCKET)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert_no_traceback(result)
    lines = insight_lines(result)
    assert len(lines) == 1, lines
    found = NOT_SAVED.match(lines[0])
    assert found, lines[0]
    assert found["reason"] == "no answer within 1.5 s"
    assert [p.name for p in (insight_home / "unsent").iterdir()] == [f"{found['id']}.jsonl.gz"]


def test_strict_fails_a_passing_run_whose_session_was_only_kept_locally(
    pytester: pytest.Pytester, refused_endpoint: str, insight_home: Path
) -> None:
    pytester.makepyfile(test_one="def test_one(): pass")
    result = pytester.runpytest(
        "--insight", "--insight-sut", "api", "--insight-storage", BUCKET, "--insight-strict"
    )
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    (line,) = insight_lines(result)
    assert NOT_SAVED.match(line), line
    assert len(list((insight_home / "unsent").iterdir())) == 1


def test_when_the_session_cannot_be_kept_either_the_line_says_so(
    pytester: pytest.Pytester, refused_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home-is-a-file"
    home.write_text("", encoding="utf-8")
    monkeypatch.setenv("PYTEST_INSIGHT_HOME", str(home))
    pytester.makepyfile(test_one="def test_one(): pass")
    result = pytester.runpytest("--insight", "--insight-sut", "api", "--insight-storage", BUCKET)
    assert result.ret == pytest.ExitCode.OK
    assert_no_traceback(result)
    (line,) = insight_lines(result)
    assert re.match(
        r"pytest-insight: could not save session api-\S+ to s3://bucket/team: .+; NOT saved there, "
        r"nor kept locally: .+",
        line,
    ), line


# -- the setting and what it does to the bucket's client --------------------------------------


def timeout_setting(
    pytester: pytest.Pytester, *args: str, env: dict[str, str] | None = None, ini: str = ""
) -> float:
    if ini:
        pytester.makeini("[pytest]\n" + ini)
    config = pytester.parseconfig("--insight", *args)
    return resolve_settings(config, env or {}).publish_timeout


def test_publish_timeout_precedence(pytester: pytest.Pytester) -> None:
    assert timeout_setting(pytester) == PUBLISH_TIMEOUT
    assert timeout_setting(pytester, ini="insight_publish_timeout = 7") == 7
    env = {"PYTEST_INSIGHT_PUBLISH_TIMEOUT": "2.5"}
    assert timeout_setting(pytester, env=env, ini="insight_publish_timeout = 7") == 2.5
    assert timeout_setting(pytester, "--insight-publish-timeout", "0.5", env=env) == 0.5


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf", "nan"])
def test_a_publish_timeout_that_is_not_a_positive_number_is_a_usage_error(
    pytester: pytest.Pytester, value: str
) -> None:
    with pytest.raises(pytest.UsageError, match="is not a positive number of seconds"):
        timeout_setting(pytester, "--insight-publish-timeout", value)


def test_the_buckets_client_gets_the_publish_limits(aws_env: dict[str, str]) -> None:
    limits = transport_limits(InsightSettings(True, "api", BUCKET, publish_timeout=6.0))
    settings = resolve_s3_settings(
        "bucket", endpoint_url="http://127.0.0.1:9", region=None, concurrency=4, transport=limits
    )
    assert settings.max_attempts == MAX_ATTEMPTS
    assert settings.client["timeout"] == timedelta(seconds=2)  # a third of the deadline an attempt
    assert settings.client["connect_timeout"] == timedelta(seconds=2)
    untouched = resolve_s3_settings("bucket", endpoint_url="http://127.0.0.1:9", region=None, concurrency=4)
    assert "timeout" not in untouched.client
    assert untouched.max_attempts > MAX_ATTEMPTS
