"""Retry settings from botocore's configuration, and S3 Express One Zone directory buckets."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import anyio
import obstore.store
import pytest

from pytest_insight.core.storage import InMemoryStorage, S3Storage, Storage
from pytest_insight.errors import ConfigurationError
from pytest_insight.storage.s3 import S3Backend
from pytest_insight.storage.s3.config import is_express
from pytest_insight.storage.s3.retries import DEFAULT_MAX_ATTEMPTS, MAX_BACKOFF, RetrySettings
from pytest_insight.storage.scope import Scope
from tests.conftest import BASE_TIME, MakeSession
from tests.faultproxy import Fault, FaultProxy, ProxyRequest
from tests.s3servers import RequestLog, S3Target

EXPRESS = "insight--usw2-az1--x-s3"


def _gets_of_one_failing_download(mock_s3: S3Target, make_session: MakeSession) -> int:
    """How many GETs reach the server for one download that always gets 503 SlowDown."""
    InMemoryStorage([make_session(sut_name="api")]).export_sessions(f"s3://{mock_s3.bucket}/team")
    key = mock_s3.keys("team/")[0]
    host, port = mock_s3.endpoint_url.removeprefix("http://").split(":")
    proxy = FaultProxy((host, int(port)))

    def slow_down(request: ProxyRequest) -> Fault | None:
        return Fault.SLOW_DOWN if request.is_object_download else None

    proxy.plan(rules=[slow_down])
    proxy.start()
    try:
        backend = mock_s3.backend("team", endpoint_url=proxy.endpoint_url)
        stored = anyio.run(backend.read_bundle, key)
    finally:
        proxy.stop()
    assert stored.failure is not None
    return proxy.counts[Fault.SLOW_DOWN]


def test_max_attempts_from_the_profile_bounds_the_attempts(
    mock_s3: S3Target, aws_env: dict[str, str], make_session: MakeSession
) -> None:
    Path(aws_env["AWS_CONFIG_FILE"]).write_text("[default]\nmax_attempts = 3\nretry_mode = standard\n")
    assert _gets_of_one_failing_download(mock_s3, make_session) == 3


def test_aws_max_attempts_beats_the_profile(
    mock_s3: S3Target, aws_env: dict[str, str], make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path(aws_env["AWS_CONFIG_FILE"]).write_text("[default]\nmax_attempts = 5\n")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    assert _gets_of_one_failing_download(mock_s3, make_session) == 2


def test_retry_settings_map_onto_obstores_retry_config(aws_env: dict[str, str]) -> None:
    settings = S3Backend("bucket").bucket.settings
    assert settings is not None
    assert settings.retries == RetrySettings(DEFAULT_MAX_ATTEMPTS, "standard")
    config = RetrySettings(4, "adaptive").retry_config()
    assert config["max_retries"] == 3
    assert config["backoff"] == {
        "init_backoff": timedelta(milliseconds=100),
        "max_backoff": MAX_BACKOFF,
        "base": 2,
    }
    assert config["retry_timeout"] == timedelta(minutes=3)


@pytest.mark.parametrize(
    ("config", "env", "named"),
    [
        ("[default]\nretry_mode = sometimes\n", {}, "retry_mode"),
        ("", {"AWS_RETRY_MODE": "sometimes"}, "retry_mode"),
        ("[default]\nmax_attempts = 0\n", {}, "max_attempts"),
        ("[default]\nmax_attempts = many\n", {}, "max_attempts"),
    ],
)
def test_a_bad_retry_setting_is_one_configuration_error(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, config: str, env: dict[str, str], named: str
) -> None:
    Path(aws_env["AWS_CONFIG_FILE"]).write_text(config)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=named):
        S3Backend("bucket")


def test_without_botocore_the_environment_sets_the_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_insight.storage.s3 import retries

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("AWS_RETRY_MODE", "Legacy")
    assert retries.from_environment() == RetrySettings(4, "legacy")
    monkeypatch.setenv("AWS_RETRY_MODE", "fast")
    with pytest.raises(ConfigurationError, match="AWS_RETRY_MODE"):
        retries.from_environment()


@pytest.mark.parametrize(
    ("bucket", "option", "env", "expected"),
    [
        (EXPRESS, None, None, True),
        ("insight", None, None, False),
        ("insight--x-s3-not", None, None, False),
        ("insight", True, None, True),
        (EXPRESS, False, None, False),
        ("insight", None, "true", True),
        (EXPRESS, None, "false", False),
    ],
)
def test_a_directory_bucket_is_known_by_its_name_unless_told(
    monkeypatch: pytest.MonkeyPatch, bucket: str, option: bool | None, env: str | None, expected: bool
) -> None:
    monkeypatch.delenv("AWS_S3_EXPRESS", raising=False)
    if env is not None:
        monkeypatch.setenv("AWS_S3_EXPRESS", env)
    assert is_express(bucket, option) is expected


def test_a_directory_bucket_opens_an_s3_express_store(aws_env: dict[str, str]) -> None:
    backend = S3Backend(EXPRESS, "team", region="us-west-2")
    settings = backend.bucket.settings
    assert settings is not None
    assert settings.config["s3_express"] is True
    assert settings.endpoint is None  # obstore builds the zonal endpoint from the name
    store = backend.bucket.store
    assert isinstance(store, obstore.store.S3Store)
    assert str(store.config.get("s3_express")).lower() == "true"
    assert backend.bucket.sorted_listing is False
    assert S3Backend("insight", region="us-west-2").bucket.sorted_listing is True


def test_s3_express_for_a_general_purpose_name_is_refused_in_one_line(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_S3_EXPRESS", "true")
    with pytest.raises(ConfigurationError, match=r"s3://insight: .*[Zz]one suffix"):
        S3Storage("insight", region="us-west-2")
    monkeypatch.setenv("AWS_S3_EXPRESS", "maybe")
    with pytest.raises(ConfigurationError, match="AWS_S3_EXPRESS"):
        S3Storage("insight")


def test_an_unsorted_listing_sends_no_start_after_and_misses_no_day(
    s3: S3Target, request_log: RequestLog, make_session: MakeSession
) -> None:
    """A directory bucket lists in no order and has no start-after: the scope is filtered, not cut short."""
    sessions = [make_session(sut_name="api", start=BASE_TIME + timedelta(days=day)) for day in range(6)]
    InMemoryStorage(sessions).export_sessions(f"s3://{s3.bucket}/team")
    backend = s3.backend("team", endpoint_url=request_log.endpoint_url)
    backend.bucket.sorted_listing = False
    request_log.clear()
    since, until = BASE_TIME + timedelta(days=2), BASE_TIME + timedelta(days=4)
    found = Storage(backend).load_sessions(Scope(sut_name="api", since=since, until=until))
    assert [s.session_id for s in found] == [s.session_id for s in sessions[2:4]]
    lists = request_log.seen["ListObjectsV2"]
    assert lists
    assert all("StartAfter" not in call for call in lists)
    first, last = since.date().isoformat(), (until - timedelta(microseconds=1)).date().isoformat()
    days = [get["Key"].split("/date=")[1][:10] for get in request_log.seen["GetObject"]]
    assert days
    assert all(first <= day <= last for day in days)  # only the wanted days' bundles are read
