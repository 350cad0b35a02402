"""The S3 backend against moto (in process) and SeaweedFS (a real server)."""

from __future__ import annotations

import dataclasses
import gzip
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest

from pytest_insight.core.storage import S3Storage, run_sync
from pytest_insight.errors import (
    AccessDeniedError,
    ConfigurationError,
    CorruptStoreError,
    EndpointError,
    InvalidDataError,
    NotFoundError,
    SessionExistsError,
)
from pytest_insight.format.bundle import encode_bundle, encode_session
from pytest_insight.format.decoding import Limits
from pytest_insight.format.layout import bundle_key
from pytest_insight.model.session_ids import new_session_id
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.s3 import (
    CONNECT_TIMEOUT,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_ATTEMPTS,
    READ_TIMEOUT,
    S3Backend,
)
from pytest_insight.storage.scope import Scope
from tests.conftest import BASE_TIME, MakeSession
from tests.s3servers import RequestLog, S3Target, fresh_bucket_name


def storage_on(s3: S3Target, prefix: str = "team", log: RequestLog | None = None) -> S3Storage:
    return s3.storage(prefix, **({"endpoint_url": log.endpoint_url} if log is not None else {}))


def spread(
    make_session: MakeSession, suts: tuple[str, ...] = ("api", "web", "db"), days: int = 4
) -> list[TestSession]:
    return [
        make_session(sut_name=sut, start=BASE_TIME + timedelta(days=day, minutes=index))
        for day in range(days)
        for index, sut in enumerate(suts)
    ]


def test_round_trip_writes_the_layout_with_metadata_and_checksum(
    s3: S3Target, request_log: RequestLog, make_session: MakeSession
) -> None:
    storage = storage_on(s3, log=request_log)
    sessions = spread(make_session, suts=("api", "web/../x"), days=2)
    storage.save_sessions(sessions)
    assert storage.load_sessions() == sorted(sessions, key=lambda s: s.session_start_time)
    keys = s3.keys()
    assert len(keys) == 4  # one bundle per SUT and day
    assert all(
        key.startswith(("team/v1/sut=api/date=2024-05-0", "team/v1/sut=web%2F..%2Fx/date=")) for key in keys
    )
    head = s3.client.head_object(Bucket=s3.bucket, Key=keys[0])
    assert head["Metadata"]["schema-version"] == "1"
    assert head["Metadata"]["session-count"] == "1"
    assert head["Metadata"]["producer"].startswith("pytest-insight/")
    assert head["ContentType"] == "application/gzip"
    puts = request_log.seen["PutObject"]
    assert len(puts) == 4
    assert all(put["Headers"].get("x-amz-checksum-sha256") for put in puts)  # the server verifies it
    assert storage.get_session_by_id(sessions[1].session_id) == sessions[1]
    assert storage.get_session_by_id("nope") is None


def test_scope_narrows_listing_to_the_sut_prefix_and_days(
    s3: S3Target, request_log: RequestLog, make_session: MakeSession
) -> None:
    storage = storage_on(s3, log=request_log)
    sessions = spread(make_session)
    storage.save_sessions(sessions)
    calls = request_log
    calls.clear()
    since = BASE_TIME + timedelta(days=2)
    found = storage.load_sessions(Scope(sut_name="web", since=since))
    assert found == [s for s in sessions if s.sut_name == "web" and s.session_start_time >= since]
    lists = calls.seen["ListObjectsV2"]
    assert lists
    assert all(call["Prefix"] == "team/v1/sut=web/" for call in lists)
    assert lists[0]["StartAfter"] == "team/v1/sut=web/date=2024-05-02/~"  # just past the day before
    assert len(calls.seen["GetObject"]) == 2  # only the two wanted days are downloaded


def test_date_scope_over_every_sut_lists_each_sut_from_its_first_day(
    s3: S3Target, request_log: RequestLog, make_session: MakeSession
) -> None:
    storage = storage_on(s3, log=request_log)
    sessions = spread(make_session)
    storage.save_sessions(sessions)
    calls = request_log
    calls.clear()
    day = BASE_TIME + timedelta(days=1)
    found = storage.load_sessions(Scope(since=day, until=day + timedelta(hours=12)))
    assert {s.session_id for s in found} == {
        s.session_id for s in sessions if day <= s.session_start_time < day + timedelta(hours=12)
    }
    assert len(calls.seen["GetObject"]) == 3
    assert calls.seen["ListObjectsV2"][0].get("Delimiter") == "/"


def test_a_scope_ending_at_midnight_does_not_list_that_day(
    s3: S3Target, request_log: RequestLog, make_session: MakeSession
) -> None:
    storage = storage_on(s3, log=request_log)
    storage.save_sessions(spread(make_session, suts=("api",)))
    calls = request_log
    calls.clear()
    day = BASE_TIME.replace(hour=0, minute=0) + timedelta(days=1)
    found = storage.load_sessions(Scope(sut_name="api", since=day, until=day + timedelta(days=1)))
    assert [s.session_start_time.date() for s in found] == [day.date()]
    assert [call["Key"].split("/")[3] for call in calls.seen["GetObject"]] == [f"date={day.date()}"]


def test_a_plugin_id_is_looked_up_in_its_own_day_first(
    s3: S3Target, request_log: RequestLog, make_session: MakeSession
) -> None:
    storage = storage_on(s3, log=request_log)
    sessions = [
        make_session(
            new_session_id(s.sut_name, s.session_start_time), sut_name=s.sut_name, start=s.session_start_time
        )
        for s in spread(make_session)
    ]
    storage.save_sessions(sessions)
    wanted = sessions[4]  # day 1
    calls = request_log
    calls.clear()
    assert storage.get_session_by_id(wanted.session_id) == wanted
    days = {call["Key"].split("/")[3] for call in calls.seen["GetObject"]}
    assert days == {f"date={wanted.session_start_time.date()}"}  # that day's bundles only, not all 12


def test_a_recorded_run_is_saved_with_one_upload_however_full_its_day(
    s3: S3Target, request_log: RequestLog, make_session: MakeSession
) -> None:
    def recorded() -> TestSession:
        return make_session(new_session_id("api", BASE_TIME), sut_name="api", start=BASE_TIME)

    earlier = [recorded() for _ in range(5)]
    for session in earlier:  # five CI agents' runs of that day, one bundle each
        storage_on(s3).save_recorded_session(session)
    calls = request_log
    calls.clear()
    latest = recorded()
    storage_on(s3, log=request_log).save_recorded_session(
        latest
    )  # the next agent, knowing nothing of the bucket
    assert {name: len(calls.seen[name]) for name in ("ListObjectsV2", "GetObject", "PutObject")} == {
        "ListObjectsV2": 0,
        "GetObject": 0,
        "PutObject": 1,
    }
    storage_on(s3, log=request_log).save_recorded_session(
        latest
    )  # a retried save: the same content-derived key, left alone
    assert storage_on(s3, log=request_log).load_sessions() == sorted(
        [*earlier, latest], key=lambda s: s.session_id
    )


def test_a_recorded_session_under_another_id_is_checked_as_any_save(
    s3: S3Target, make_session: MakeSession
) -> None:
    storage_on(s3).save_session(make_session("hand-made", sut_name="api"))
    later = BASE_TIME + timedelta(days=1)
    moved = make_session(new_session_id("api", BASE_TIME), sut_name="api", start=later)
    storage_on(s3).save_session(moved)
    with pytest.raises(SessionExistsError, match="hand-made"):
        storage_on(s3).save_recorded_session(make_session("hand-made", sut_name="web"))
    with pytest.raises(SessionExistsError):  # the id does not name this session's start: searched too
        storage_on(s3).save_recorded_session(dataclasses.replace(moved, sut_name="web"))


def test_an_id_found_nowhere_in_its_day_is_still_found_elsewhere(
    s3: S3Target, request_log: RequestLog, make_session: MakeSession
) -> None:
    storage = storage_on(s3, log=request_log)
    moved_start = BASE_TIME + timedelta(days=3)
    named = new_session_id("api", BASE_TIME)  # names day 0, but the run is stored under day 3
    others = [make_session(sut_name="api", start=BASE_TIME)]
    moved = make_session(named, sut_name="api", start=moved_start)
    storage.save_sessions([*others, moved])
    calls = request_log
    calls.clear()
    assert storage.get_session_by_id(named) == moved
    gets = [call["Key"] for call in calls.seen["GetObject"]]
    assert "/date=2024-05-01/" in gets[0]  # day 0 first (1 bundle), then everything (2) ...
    assert 2 <= len(gets) <= 3  # ... which stops once the session is found
    assert storage.get_session_by_id(new_session_id("api", BASE_TIME)) is None


def test_a_prefix_inside_the_layout_reads_only_that_part(s3: S3Target, make_session: MakeSession) -> None:
    sessions = spread(make_session)
    storage_on(s3).save_sessions(sessions)
    narrow = s3.storage("team/v1/sut=db/date=2024-05-02")
    assert narrow.load_sessions() == [
        s for s in sessions if s.sut_name == "db" and s.session_start_time.date().isoformat() == "2024-05-02"
    ]


def test_a_second_agent_never_overwrites_an_existing_bundle(
    s3: S3Target, request_log: RequestLog, make_session: MakeSession
) -> None:
    session = make_session()
    bundle = encode_bundle([session])
    key = bundle_key(session.sut_name, session.session_start_time.date(), bundle.bundle_id, "team")
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=b"first agent's object")
    calls = request_log
    calls.clear()
    storage_on(s3, log=request_log).save_session(session)  # 412 on the same content-derived key: left alone
    assert calls.seen["PutObject"][0]["IfNoneMatch"] == "*"
    assert s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read() == b"first agent's object"


def test_exporting_twice_uploads_nothing_new(s3: S3Target, make_session: MakeSession) -> None:
    backend = s3.backend("x")
    encoded = [encode_session(s) for s in spread(make_session, days=2)]
    assert run_sync(backend.write, encoded) == 6
    listed = s3.keys()
    before = [s3.client.head_object(Bucket=s3.bucket, Key=key)["ETag"] for key in listed]
    assert run_sync(backend.write, encoded) == 6
    assert s3.keys() == listed
    assert [s3.client.head_object(Bucket=s3.bucket, Key=key)["ETag"] for key in listed] == before


def test_deleting_some_sessions_rewrites_their_bundle_conditionally(
    s3: S3Target, request_log: RequestLog, make_session: MakeSession
) -> None:
    storage = storage_on(s3, log=request_log)
    sessions = [make_session() for _ in range(3)]  # same SUT and day: one bundle
    storage.save_sessions(sessions)
    (key,) = s3.keys()
    etag = s3.client.head_object(Bucket=s3.bucket, Key=key)["ETag"]
    calls = request_log
    calls.clear()
    assert storage.clear_sessions([sessions[1]]) == 1
    assert calls.seen["PutObject"][0]["IfMatch"] == etag
    assert s3.keys() == [key]
    assert storage.load_sessions() == [sessions[0], sessions[2]]  # the rewritten bundle verifies
    assert storage.clear_sessions([sessions[0], sessions[2]]) == 2
    assert s3.keys() == []  # an emptied bundle is deleted


def test_a_rewrite_racing_another_writer_loses_neither_change(
    s3: S3Target, make_session: MakeSession
) -> None:
    storage = storage_on(s3)
    sessions = [make_session() for _ in range(3)]
    storage.save_sessions(sessions)

    async def race() -> None:
        async with storage.backend.transaction() as transaction:
            assert await transaction.delete([sessions[0].session_id]) == 1
            await storage.clear_sessions_async([sessions[1]])  # commits first: the ETag changes

    run_sync(race)
    assert storage.load_sessions() == [sessions[2]]


def test_saving_a_stored_id_is_refused(s3: S3Target, make_session: MakeSession) -> None:
    from pytest_insight.errors import SessionExistsError

    storage = storage_on(s3)
    session = make_session()
    storage.save_session(session)
    with pytest.raises(SessionExistsError, match=session.session_id):
        storage.save_session(session)


def test_clear_everything_deletes_in_batches_of_at_most_1000(s3: S3Target, request_log: RequestLog) -> None:
    backend = s3.backend("team", endpoint_url=request_log.endpoint_url)
    for index in range(3):
        s3.client.put_object(Bucket=s3.bucket, Key=f"team/other-{index}", Body=b"x")
    calls = request_log
    calls.clear()
    keys = [f"team/v1/sut=a/date=2024-05-01/{index:032x}.jsonl.gz" for index in range(2300)]
    run_sync(backend.delete_keys, keys)  # SeaweedFS, like S3, refuses more than 1000 keys a request
    sizes = sorted(call["Body"].count(b"<Key>") for call in calls.seen["DeleteObjects"])
    assert sizes == [300, 1000, 1000]


def test_clear_all_removes_every_bundle(s3: S3Target, make_session: MakeSession) -> None:
    storage = storage_on(s3)
    storage.save_sessions(spread(make_session, days=2))
    s3.client.put_object(Bucket=s3.bucket, Key="unrelated", Body=b"kept")
    assert storage.clear_sessions() == 6
    assert s3.keys() == ["unrelated"]


def test_a_corrupt_object_is_named(s3: S3Target, make_session: MakeSession) -> None:
    storage = storage_on(s3)
    storage.save_session(make_session())
    key = "team/v1/sut=api/date=2024-05-01/" + "0" * 32 + ".jsonl.gz"
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=gzip.compress(b'{"not": "a session"}\n'))
    with pytest.raises(CorruptStoreError, match=key):
        storage.load_sessions()
    records = run_sync(collect_records, storage.backend)
    errors = [item for item in records if isinstance(item, InvalidDataError)]
    assert len(records) == 2
    assert len(errors) == 1
    assert key in str(errors[0])


async def collect_records(backend: Any) -> list[Any]:
    return [item async for item in backend.records(Scope(), Limits())]


def test_content_not_matching_its_bundle_id_is_refused(mock_s3: S3Target, make_session: MakeSession) -> None:
    session = make_session()
    key = "team/v1/sut=checkout-api/date=2024-05-01/" + "a" * 32 + ".jsonl.gz"
    mock_s3.client.put_object(Bucket=mock_s3.bucket, Key=key, Body=encode_bundle([session]).data)
    with pytest.raises(CorruptStoreError, match="does not match bundle id"):
        storage_on(mock_s3).load_sessions()


def test_a_missing_bucket_is_not_found(mock_s3: S3Target) -> None:
    storage = S3Storage("no-such-bucket-here", endpoint_url=mock_s3.endpoint_url)
    with pytest.raises(NotFoundError, match=r"s3://no-such-bucket-here: no such bucket"):
        storage.load_sessions()


def test_access_denied_names_the_action_and_key(
    moto_server: str, aws_env: dict[str, str], make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.core import set_initial_no_auth_action_count

    @set_initial_no_auth_action_count(3)  # the IAM user, its key and the bucket; then access control is on
    def scenario() -> tuple[AccessDeniedError, AccessDeniedError]:
        iam = boto3.client("iam", endpoint_url=moto_server)
        iam.create_user(UserName="nobody")
        key = iam.create_access_key(UserName="nobody")["AccessKey"]
        bucket = fresh_bucket_name()
        boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=bucket)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        storage = S3Storage(bucket, "team", endpoint_url=moto_server)
        with pytest.raises(AccessDeniedError) as listing:
            storage.load_sessions()
        with pytest.raises(AccessDeniedError) as writing:
            run_sync(
                S3Backend(bucket, "team", endpoint_url=moto_server).write, [encode_session(make_session())]
            )
        assert str(listing.value).startswith(f"s3://{bucket}/team/v1/: access denied for s3:ListBucket")
        return listing.value, writing.value

    listing, writing = scenario()
    assert listing.action == "s3:ListBucket"
    assert "\n" not in str(listing)
    assert writing.action == "s3:PutObject"
    assert writing.key.startswith("team/v1/sut=checkout-api/date=2024-05-01/")
    assert writing.key in str(writing)


def test_a_wrong_secret_is_refused_by_a_server_checking_signatures(
    seaweedfs_s3: S3Target, monkeypatch: pytest.MonkeyPatch, make_session: MakeSession
) -> None:
    storage = seaweedfs_s3.storage("team")
    storage.save_session(make_session())
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(AccessDeniedError, match="SignatureDoesNotMatch") as error:
        seaweedfs_s3.storage("team").load_sessions()
    assert "\n" not in str(error.value)


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def test_an_unreachable_endpoint_is_an_endpoint_error(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    endpoint = f"http://127.0.0.1:{closed_port()}"
    storage = S3Storage("bucket", "team", endpoint_url=endpoint)
    with pytest.raises(EndpointError, match=rf"cannot reach {endpoint}"):
        storage.load_sessions()


@pytest.fixture
def blackholed_port() -> Iterator[int]:
    """A port on 127.0.0.1 whose listener never accepts: once its queue is full, connections hang."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for sock in [*fillers, listener]:
            sock.close()


def test_an_endpoint_that_drops_connections_fails_after_the_connect_timeout(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, blackholed_port: int
) -> None:
    settings = S3Backend("bucket", endpoint_url="http://127.0.0.1:1").bucket.settings
    assert settings is not None
    assert settings.client["connect_timeout"] == timedelta(seconds=CONNECT_TIMEOUT) == timedelta(seconds=5)
    assert settings.client["read_timeout"] == timedelta(seconds=READ_TIMEOUT) == timedelta(seconds=30)

    monkeypatch.setenv("PYTEST_INSIGHT_S3_CONNECT_TIMEOUT", "0.5")  # the same path, without the wait
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    endpoint = f"http://127.0.0.1:{blackholed_port}"
    with pytest.raises(EndpointError, match=r"cannot reach "):
        S3Storage("bucket", "team", endpoint_url=endpoint).load_sessions()


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf"])
def test_a_timeout_that_is_not_a_positive_number_is_refused_naming_the_variable(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PYTEST_INSIGHT_S3_READ_TIMEOUT", value)
    with pytest.raises(ConfigurationError, match=rf"^PYTEST_INSIGHT_S3_READ_TIMEOUT='{value}': expected a"):
        S3Backend("bucket")
    monkeypatch.setenv("PYTEST_INSIGHT_S3_READ_TIMEOUT", "2.5")
    settings = S3Backend("bucket").bucket.settings
    assert settings is not None
    assert settings.client["read_timeout"] == timedelta(seconds=2.5)


def test_missing_credentials_are_a_one_line_configuration_error(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ConfigurationError, match="no AWS credentials") as error:
        S3Storage("bucket", endpoint_url=f"http://127.0.0.1:{closed_port()}").load_sessions()
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("value", [0, 65, True, 2.5])
def test_concurrency_out_of_range_is_refused(value: Any, aws_env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="concurrency"):
        S3Backend("bucket", concurrency=value)


def test_one_store_with_a_pool_as_large_as_the_concurrency(aws_env: dict[str, str]) -> None:
    assert S3Backend("bucket").concurrency == DEFAULT_CONCURRENCY
    backend = S3Backend("bucket", "p/", concurrency=48)
    settings = backend.bucket.settings
    assert settings is not None
    assert int(settings.client["pool_max_idle_per_host"]) >= 48
    assert settings.max_attempts == DEFAULT_MAX_ATTEMPTS
    assert backend.uri == "s3://bucket/p"


def test_without_the_s3_extra_the_error_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['obstore'] = None\n"
        "from pytest_insight.core.storage import S3Storage\n"
        "try:\n    S3Storage('bucket')\n"
        "except ImportError as exc:\n    print(type(exc).__name__, exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert (
        result.stdout.strip()
        == 'DependencyError S3 storage needs the s3 extra: pip install "pytest-insight[s3]"'
    )


def test_without_boto3_obstore_reads_the_credentials_from_the_environment(
    mock_s3: S3Target, make_session: MakeSession
) -> None:
    session = make_session()
    mock_s3.storage("team").save_session(session)
    code = (
        "import sys; sys.modules['boto3'] = sys.modules['botocore'] = None\n"
        "from pytest_insight.core.storage import S3Storage\n"
        f"print([s.session_id for s in S3Storage({mock_s3.bucket!r}, 'team').load_sessions()])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == repr([session.session_id])
