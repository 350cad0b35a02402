"""Faults on the wire: export, import and clear through a fault-injecting proxy lose nothing.

Every test talks to SeaweedFS through :class:`tests.faultproxy.FaultProxy`;
bundles are seeded and checked over a direct connection, so only the code
under test meets the faults. Clients use botocore's standard retry mode with
``max_attempts`` 10 and a short read timeout, as a user on a flaky network
would configure (``AWS_MAX_ATTEMPTS``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.retries import adaptive, bucket

from pytest_insight.cli.main import main
from pytest_insight.core import locations
from pytest_insight.core.layout import parse_bundle_key
from pytest_insight.core.models import TestSession
from pytest_insight.core.storage import InMemoryStorage, JSONStorage, S3Storage
from pytest_insight.storage.s3 import S3Backend
from pytest_insight.storage.s3_direct import HTTP_VARIABLE
from tests.conftest import BASE_TIME, build_session
from tests.faultproxy import Fault, FaultProxy, ProxyRequest, proxied_client
from tests.s3servers import S3Target

BUNDLES = 500
SUTS = 5
MAX_ATTEMPTS = 10


def spread_sessions(count: int, tag: str = "") -> list[TestSession]:
    """``count`` small sessions, each alone in its own (SUT, day) partition, so one bundle each."""
    return [
        build_session(
            f"{tag}s{n:04d}",
            sut_name=f"svc-{n % SUTS}",
            start=BASE_TIME + timedelta(days=n // SUTS, minutes=n % 7),
            tests=1,
            reruns=False,
        )
        for n in range(count)
    ]


def seed(target: S3Target, prefix: str, sessions: list[TestSession]) -> list[str]:
    """Store ``sessions`` straight to the server (no proxy); return the keys written."""
    S3Storage(target.bucket, prefix, client=target.client).save_sessions(sessions)
    keys = target.keys(prefix + "/")
    assert len(keys) == len(sessions)
    return keys


def direct_sessions(target: S3Target, prefix: str) -> list[TestSession]:
    return S3Storage(target.bucket, prefix, client=target.client).load_sessions()


@pytest.fixture
def through_proxy(fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``s3://`` import sources and export sinks go through the proxy; returns a client factory."""

    def client(**options: Any) -> Any:
        options.setdefault("max_attempts", MAX_ATTEMPTS)
        return proxied_client(fault_proxy, **options)

    shared = client()
    monkeypatch.setitem(locations._REGISTRY, "s3", lambda uri: S3Backend.from_uri(uri))
    return client


@pytest.mark.parametrize("seed_value", [20261125])
def test_ten_percent_faults_lose_nothing(
    seaweedfs_s3: S3Target,
    fault_proxy: FaultProxy,
    through_proxy: Callable[..., Any],
    tmp_path: Path,
    seed_value: int,
) -> None:
    sessions = spread_sessions(BUNDLES)
    fault_proxy.plan(rate=0.10, kinds=tuple(Fault), seed=seed_value)

    exported = InMemoryStorage(sessions).export_sessions(f"s3://{seaweedfs_s3.bucket}/run")
    assert exported == BUNDLES
    assert len(seaweedfs_s3.keys("run/")) == BUNDLES
    assert direct_sessions(seaweedfs_s3, "run") == sorted(
        sessions, key=lambda s: (s.session_start_time, s.session_id)
    )
    after_export = fault_proxy.total_faults

    store = JSONStorage(tmp_path / "store")
    stats = store.import_sessions(f"s3://{seaweedfs_s3.bucket}/run")
    assert stats["errors"] == 0, stats["error_messages"][:5]
    assert (stats["total"], stats["imported"], stats["added"]) == (BUNDLES, BUNDLES, BUNDLES)
    assert {s.session_id: s for s in store.load_sessions()} == {s.session_id: s for s in sessions}
    after_import = fault_proxy.total_faults

    cleared = S3Storage(seaweedfs_s3.bucket, "run", client=through_proxy()).clear_sessions()
    assert cleared == BUNDLES
    assert seaweedfs_s3.keys("run/") == []

    counts = fault_proxy.counts
    assert set(counts) == set(Fault), f"every kind of fault was injected: {dict(counts)}"
    assert fault_proxy.total_faults >= 0.08 * fault_proxy.requests
    figures = {
        "requests": fault_proxy.requests,
        "faults": fault_proxy.total_faults,
        "export_faults": after_export,
        "import_faults": after_import - after_export,
        "clear_faults": fault_proxy.total_faults - after_import,
        "by_kind": {str(kind): n for kind, n in sorted(counts.items())},
    }
    print(json.dumps(figures))


def keys_rule(keys: set[str], fault: Fault) -> Callable[[ProxyRequest], Fault | None]:
    """Fault every download of one of ``keys``, always."""

    def rule(request: ProxyRequest) -> Fault | None:
        key = request.path.lstrip("/").partition("/")[2]
        return fault if request.method == "GET" and key in keys else None

    return rule


@pytest.mark.parametrize(
    "fault", [Fault.INTERNAL, Fault.SLOW_DOWN, Fault.RESET, Fault.TRUNCATE, Fault.CORRUPT, Fault.STALL]
)
def test_permanent_faults_are_reported_for_those_objects_only(
    seaweedfs_s3: S3Target,
    fault_proxy: FaultProxy,
    through_proxy: Callable[..., Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fault: Fault,
) -> None:
    sessions = spread_sessions(40, tag=f"{fault.name}-")
    keys = seed(seaweedfs_s3, "perm", sessions)
    bad = set(keys[3::14])  # 27 retries: inside botocore's retry quota, which would end them early
    retried = MAX_ATTEMPTS
    if fault in (Fault.STALL, Fault.SLOW_DOWN):  # stalls cost a read timeout, throttling a long backoff
        bad, retried = set(keys[5:7]), 3
        shared = through_proxy(read_timeout=0.5, max_attempts=retried)
        monkeypatch.setitem(locations._REGISTRY, "s3", lambda uri: S3Backend.from_uri(uri))
    fault_proxy.plan(rules=[keys_rule(bad, fault)])
    root = tmp_path / "store"
    code = main(["import", f"s3://{seaweedfs_s3.bucket}/perm", "--storage", str(root), "--json"])
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    stats = json.loads(out)
    assert stats["errors"] == len(bad)
    named = {key for key in keys if any(key in message for message in stats["error_messages"])}
    assert named == bad, stats["error_messages"]
    assert all(key in err for key in bad)
    assert all(message.count("s3://") == 1 for message in stats["error_messages"]), stats

    lost = {s.session_id for s in sessions if partition_of(s) in {partition_key(key) for key in bad}}
    assert len(lost) == len(bad)
    stored = {s.session_id: s for s in JSONStorage(root).load_sessions()}
    assert stored == {s.session_id: s for s in sessions if s.session_id not in lost}
    assert stats["imported"] == len(sessions) - len(lost)
    if fault is Fault.CORRUPT:
        assert all("checksum mismatch" in message for message in stats["error_messages"]), stats
    # each object was tried as often as the client's attempts allow before it was reported,
    # whether the fault came in the response headers or in the body
    assert fault_proxy.counts[fault] == len(bad) * retried


def partition_of(session: TestSession) -> tuple[str, date]:
    return session.sut_name, session.session_start_time.date()


def partition_key(key: str) -> tuple[str, date]:
    parsed = parse_bundle_key(key, "perm")
    assert parsed.sut_name is not None
    return parsed.sut_name, parsed.day


@pytest.mark.parametrize("transport", [None, "botocore"])  # our HTTP connections, or botocore's session
@pytest.mark.parametrize("fault", [Fault.CORRUPT, Fault.TRUNCATE, Fault.RESET])
def test_a_body_damaged_in_transit_is_downloaded_again_never_merged(
    seaweedfs_s3: S3Target,
    fault_proxy: FaultProxy,
    through_proxy: Callable[..., Any],
    tmp_path: Path,
    fault: Fault,
    transport: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if transport is not None:
        monkeypatch.setenv(HTTP_VARIABLE, transport)
    sessions = spread_sessions(30, tag=f"{fault.name}-")
    keys = seed(seaweedfs_s3, "once", sessions)
    damaged: set[str] = set()

    def first_download(request: ProxyRequest) -> Fault | None:
        key = request.path.lstrip("/").partition("/")[2]
        if request.method != "GET" or key not in keys or key in damaged:
            return None
        damaged.add(key)
        return fault

    fault_proxy.plan(rules=[first_download])
    store = JSONStorage(tmp_path / "store")
    stats = store.import_sessions(f"s3://{seaweedfs_s3.bucket}/once")
    assert (stats["errors"], stats["added"]) == (0, len(sessions)), stats["error_messages"]
    assert damaged == set(keys)
    assert fault_proxy.counts[fault] == len(keys)
    assert by_id(store.load_sessions()) == by_id(sessions)


def by_id(sessions: list[TestSession]) -> dict[str, TestSession]:
    return {session.session_id: session for session in sessions}


def test_an_outage_drains_the_retry_quota_so_the_import_ends_without_backing_off_on_every_object(
    seaweedfs_s3: S3Target, fault_proxy: FaultProxy, through_proxy: Callable[..., Any], tmp_path: Path
) -> None:
    sessions = spread_sessions(60, tag="outage-")
    keys = seed(seaweedfs_s3, "outage", sessions)
    fault_proxy.plan(rules=[keys_rule(set(keys), Fault.INTERNAL)])

    stats = JSONStorage(tmp_path / "store").import_sessions(f"s3://{seaweedfs_s3.bucket}/outage")

    assert (stats["errors"], stats["imported"]) == (len(keys), 0)
    # botocore's quota holds 500 and a retry costs at least 5: once it is spent, no object is retried
    assert len(keys) < fault_proxy.counts[Fault.INTERNAL] <= len(keys) + 500 // 5
    assert fault_proxy.counts[Fault.INTERNAL] < len(keys) * MAX_ATTEMPTS // 2


def test_adaptive_mode_slows_the_downloads_once_the_server_throttles_them(
    seaweedfs_s3: S3Target,
    fault_proxy: FaultProxy,
    through_proxy: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sessions = spread_sessions(6, tag="adaptive-")
    keys = seed(seaweedfs_s3, "adaptive", sessions)
    throttled: list[str] = []
    heard: list[tuple[str, str]] = []
    waits: list[int] = []

    def first_download(request: ProxyRequest) -> Fault | None:
        key = request.path.lstrip("/").partition("/")[2]
        if request.method == "GET" and key == keys[0] and not throttled:
            throttled.append(key)
            return Fault.SLOW_DOWN
        return None

    real_hear, real_acquire = adaptive.ClientRateLimiter.on_receiving_response, bucket.TokenBucket.acquire

    def hear(limiter: Any, **kwargs: Any) -> None:
        response = kwargs["response"]
        code = response[1].get("Error", {}).get("Code", "") if response else ""
        heard.append((kwargs["operation"].name, code))
        real_hear(limiter, **kwargs)

    def acquire(token_bucket: Any, *args: Any, **kwargs: Any) -> Any:
        waits.append(1)
        return real_acquire(token_bucket, *args, **kwargs)

    monkeypatch.setattr(adaptive.ClientRateLimiter, "on_receiving_response", hear)
    monkeypatch.setattr(bucket.TokenBucket, "acquire", acquire)
    shared = through_proxy(mode="adaptive")
    monkeypatch.setitem(locations._REGISTRY, "s3", lambda uri: S3Backend.from_uri(uri))
    fault_proxy.plan(rules=[first_download])

    stats = JSONStorage(tmp_path / "store").import_sessions(f"s3://{seaweedfs_s3.bucket}/adaptive")

    assert (stats["errors"], stats["added"]) == (0, len(sessions)), stats["error_messages"]
    assert throttled == [keys[0]]
    assert ("GetObject", "SlowDown") in heard  # the limiter learnt of the throttling
    assert sum(1 for operation, _ in heard if operation == "GetObject") == len(keys) + 1
    assert waits, "after the throttling, the retry waited for a token"
