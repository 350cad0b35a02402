"""Clearing a bucket by scope without downloading whole partitions, and compacting partitions."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_insight.core.storage import S3Storage, run_sync
from pytest_insight.errors import StorageError
from pytest_insight.format.bundle import encode_bundle
from pytest_insight.format.layout import bundle_key
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.s3 import S3Backend
from pytest_insight.storage.s3.clear import clear_scope
from pytest_insight.storage.scope import Scope
from tests.conftest import BASE_TIME, MakeSession
from tests.faultproxy import Fault, ProxyRequest
from tests.s3servers import RequestLog, S3Target
from tests.test_cli import Run, insight

__all__ = ["insight"]


def runs(make_session: MakeSession, sut: str, day: int, count: int) -> list[TestSession]:
    """``count`` sessions of one SUT on one day, hours apart."""
    return [make_session(sut_name=sut, start=BASE_TIME + timedelta(days=day, hours=h)) for h in range(count)]


def publish_each(storage: S3Storage, sessions: list[TestSession]) -> None:
    """Save sessions one at a time: one bundle per CI run, as the plugin does."""
    for session in sessions:
        storage.save_session(session)


def test_clear_older_than_deletes_whole_days_unread_and_rewrites_the_boundary(
    s3: S3Target, request_log: RequestLog, make_session: MakeSession
) -> None:
    storage = s3.storage("team", endpoint_url=request_log.endpoint_url)
    old = runs(make_session, "api", 0, 3) + runs(make_session, "web", 1, 2)
    boundary = runs(make_session, "api", 2, 4)  # 08:00 .. 11:00 on day 2
    recent = runs(make_session, "api", 3, 2)
    storage.save_sessions(old + boundary + recent)
    cutoff = BASE_TIME + timedelta(days=2, hours=2)  # api day 2: 08:00 and 09:00 go, 10:00 and 11:00 stay
    requests = request_log
    requests.clear()
    assert storage.clear_sessions(scope=Scope(until=cutoff)) == 5 + 2
    boundary_key = bundle_key("api", boundary[0].session_start_time.date(), "x", "team").rsplit("/", 1)[0]
    assert [call["Key"].rsplit("/", 1)[0] for call in requests.seen["GetObject"]] == [boundary_key]
    assert len(requests.seen["HeadObject"]) == 2  # the two whole days are counted from metadata
    assert requests.seen["PutObject"][0]["IfMatch"]
    assert sum(call["Body"].count(b"<Key>") for call in requests.seen["DeleteObjects"]) == 2
    assert storage.load_sessions() == boundary[2:] + recent


def test_clear_by_sut_leaves_other_suts(
    s3: S3Target, request_log: RequestLog, make_session: MakeSession
) -> None:
    storage = s3.storage("team", endpoint_url=request_log.endpoint_url)
    storage.save_sessions(runs(make_session, "api", 0, 2) + runs(make_session, "web", 0, 2))
    requests = request_log
    requests.clear()
    assert storage.clear_sessions(scope=Scope(sut_name="api")) == 2
    assert requests.seen["GetObject"] == []
    assert {s.sut_name for s in storage.load_sessions()} == {"web"}


def test_clear_of_thousands_of_bundles_sends_batches_of_at_most_1000(
    s3: S3Target, request_log: RequestLog
) -> None:
    storage = s3.storage("team", endpoint_url=request_log.endpoint_url)

    def put(index: int) -> None:  # empty-looking bundles: counted from metadata, never opened
        key = f"team/v1/sut=api/date=2024-05-01/{index:032x}.jsonl.gz"
        s3.client.put_object(Bucket=s3.bucket, Key=key, Body=b"x", Metadata={"session-count": "2"})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(1005)))
    requests = request_log
    requests.clear()
    assert storage.clear_sessions(scope=Scope(sut_name="api")) == 2010
    assert sorted(call["Body"].count(b"<Key>") for call in requests.seen["DeleteObjects"]) == [5, 1000]
    assert s3.keys("team/") == []


def test_objects_without_a_count_are_read_and_what_is_not_a_session_counts_none(
    s3: S3Target, make_session: MakeSession
) -> None:
    storage = s3.storage("team")
    day = BASE_TIME.date()
    foreign = encode_bundle(runs(make_session, "api", 0, 2))  # another producer: no session-count
    good_line = gzip.decompress(encode_bundle(runs(make_session, "api", 0, 1)).data)
    one_bad_line = good_line + b"{not json\n"
    objects = {
        bundle_key("api", day, foreign.bundle_id, "team"): foreign.data,
        bundle_key("api", day, hashlib.sha256(one_bad_line).hexdigest()[:32], "team"): gzip.compress(
            one_bad_line
        ),
        bundle_key("api", day, "0" * 32, "team"): b"garbage\n",  # not a bundle: no session in it
    }
    for key, body in objects.items():
        s3.client.put_object(Bucket=s3.bucket, Key=key, Body=body)
    assert storage.clear_sessions(scope=Scope(sut_name="api")) == 2 + 2
    assert s3.keys("team/") == []


def test_a_refused_delete_is_counted_and_named(
    mock_s3: S3Target,
    make_request_log: Callable[[S3Target], RequestLog],
    make_session: MakeSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = make_request_log(mock_s3)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    storage = mock_s3.storage("team", endpoint_url=log.endpoint_url)
    published = runs(make_session, "api", 0, 1) + runs(make_session, "api", 1, 1)
    storage.save_sessions(published)
    refused = mock_s3.keys("team/")[0]

    def refuse(request: ProxyRequest) -> Fault | None:  # a DeleteObjects request naming that key
        deleting = request.method == "POST" and "delete" in request.query
        return Fault.INTERNAL if deleting and refused.encode() in request.body else None

    log.proxy.plan(rules=[refuse])
    with pytest.raises(StorageError, match="removed 1 sessions, but 1 objects failed"):
        storage.clear_sessions(scope=Scope(sut_name="api"))
    assert mock_s3.keys("team/") == [refused]  # the batch was refused, then each key was tried alone
    storage.save_sessions(published[1:])
    assert isinstance(storage.backend, S3Backend)
    stats = run_sync(clear_scope, storage.backend.bucket, Scope(sut_name="api"))
    assert stats["errors"] == 1
    assert refused in stats["error_messages"][0]
    assert stats["sessions"] == 1  # the refused bundle's session is not counted as removed


def test_compact_merges_each_partition_into_one_deduplicated_bundle(
    s3: S3Target, make_request_log: Callable[[S3Target], RequestLog], make_session: MakeSession
) -> None:
    storage = s3.storage("team")
    day0, day1 = runs(make_session, "api", 0, 4), runs(make_session, "api", 1, 3)
    publish_each(storage, day0 + day1 + runs(make_session, "web", 0, 1))
    copy = encode_bundle(day0[:2])  # an export that overlaps what agents published: duplicates
    s3.client.put_object(
        Bucket=s3.bucket,
        Key=bundle_key("api", day0[0].session_start_time.date(), copy.bundle_id, "team"),
        Body=copy.data,
        Metadata={"bundle-id": copy.bundle_id, "session-count": "2"},
    )
    before = storage.load_sessions()
    assert len(before) == 10
    stats = storage.compact()
    assert (stats["partitions"], stats["bundles_before"], stats["bundles_after"]) == (2, 8, 2)
    assert (stats["sessions"], stats["duplicates"], stats["errors"]) == (7, 2, 0)
    assert len(s3.keys("team/")) == 3  # web's single bundle is left alone
    expected = day0 + day1 + [s for s in before if s.sut_name == "web"]
    assert storage.load_sessions() == sorted(expected, key=lambda s: (s.session_start_time, s.session_id))
    again = storage.compact()
    assert (again["partitions"], again["errors"]) == (0, 0)
    gets = make_request_log(s3)
    s3.storage("team", endpoint_url=gets.endpoint_url).load_sessions(Scope(sut_name="api"))
    assert len(gets.seen["GetObject"]) == 2  # one request per SUT and day


def test_compact_never_deletes_a_bundle_written_meanwhile(
    mock_s3: S3Target, make_request_log: Callable[[S3Target], RequestLog], make_session: MakeSession
) -> None:
    log = make_request_log(mock_s3)
    storage = mock_s3.storage("team", endpoint_url=log.endpoint_url)
    publish_each(storage, runs(make_session, "api", 0, 3))
    late = make_session(sut_name="api", start=BASE_TIME + timedelta(hours=5))
    published = False

    def agent_publishes(request: ProxyRequest) -> None:  # a CI agent uploads while compaction reads
        nonlocal published
        if request.is_object_download and not published:
            published = True
            mock_s3.storage("team").save_session(late)  # straight to the server, not through the proxy

    log.proxy.plan(rules=[agent_publishes])
    stats = storage.compact()
    assert published
    assert stats["bundles_before"] == 3
    assert late in storage.load_sessions()
    assert len(storage.load_sessions()) == 4


def test_compact_redoes_a_partition_rewritten_meanwhile(
    mock_s3: S3Target, make_request_log: Callable[[S3Target], RequestLog], make_session: MakeSession
) -> None:
    log = make_request_log(mock_s3)
    storage = mock_s3.storage("team", endpoint_url=log.endpoint_url)
    sessions = [*runs(make_session, "api", 0, 2), *runs(make_session, "api", 0, 1)]
    storage.save_sessions(sessions[:2])
    storage.save_session(sessions[2])
    reads = 0

    def cleanup_runs(request: ProxyRequest) -> None:  # a clear rewrites a bundle compaction read
        nonlocal reads
        reads += request.is_object_download
        if request.is_object_download and reads == 2:  # compaction's second read: the first is done
            mock_s3.storage("team").clear_sessions([sessions[0]])

    log.proxy.plan(rules=[cleanup_runs])
    stats = storage.compact()
    assert reads >= 2
    assert stats["errors"] == 0
    left = sorted(sessions[1:], key=lambda s: (s.session_start_time, s.session_id))
    assert storage.load_sessions() == left  # the cleared session did not come back


def test_insight_compact_over_http(
    insight: Run, moto_server_s3: S3Target, make_session: MakeSession, tmp_path: Path
) -> None:
    storage = S3Storage(moto_server_s3.bucket, "team", endpoint_url=moto_server_s3.endpoint_url)
    publish_each(storage, runs(make_session, "api", 0, 3) + runs(make_session, "web", 0, 2))
    uri = f"s3://{moto_server_s3.bucket}/team"
    result = insight("compact", uri, "--sut", "api", "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert (stats["partitions"], stats["bundles_before"], stats["sessions"]) == (1, 3, 3)
    assert len(moto_server_s3.keys("team/v1/sut=api/")) == 1
    assert len(moto_server_s3.keys("team/v1/sut=web/")) == 2
    text = insight("compact", "--storage", uri)
    assert text.returncode == 0, text.stderr
    assert "Compacted 1 partition" in text.stdout
    local = insight("compact", "--storage", tmp_path / "store")
    assert local.returncode == 2
    assert "s3:// stores only" in local.stderr
    cleared = insight("clear", "--storage", uri, "--older-than", "1d", "--yes", "--json")
    assert cleared.returncode == 0, cleared.stderr
    assert json.loads(cleared.stdout)["cleared"] == 5
    assert moto_server_s3.keys("team/") == []
    assert datetime.now(UTC) > BASE_TIME
