"""Faults on the wire: export, import and clear through a fault-injecting proxy lose nothing.

Every test talks to SeaweedFS through :class:`tests.faultproxy.FaultProxy`;
bundles are seeded and checked over a direct connection, so only the code
under test meets the faults. The backend uses obstore's retries with
``AWS_MAX_ATTEMPTS`` attempts and a short read timeout, as a user on a flaky
network would configure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest

from pytest_insight.cli.main import main
from pytest_insight.core.storage import InMemoryStorage, JSONStorage, S3Storage
from pytest_insight.format.layout import parse_bundle_key
from pytest_insight.model.sessions import TestSession
from tests.conftest import BASE_TIME, build_session
from tests.faultproxy import Fault, FaultProxy, ProxyRequest
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
    target.storage(prefix).save_sessions(sessions)
    keys = target.keys(prefix + "/")
    assert len(keys) == len(sessions)
    return keys


def direct_sessions(target: S3Target, prefix: str) -> list[TestSession]:
    return target.storage(prefix).load_sessions()


@pytest.fixture
def through_proxy(fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``s3://`` storages opened from now on go through the proxy; returns a setter of retry options."""

    def configure(*, max_attempts: int = MAX_ATTEMPTS, read_timeout: float = 2.0) -> None:
        monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.endpoint_url)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", str(max_attempts))
        monkeypatch.setenv("PYTEST_INSIGHT_S3_READ_TIMEOUT", str(read_timeout))

    configure()
    return configure


@pytest.mark.parametrize("seed_value", [20261125])
def test_ten_percent_faults_lose_nothing(
    seaweedfs_s3: S3Target,
    fault_proxy: FaultProxy,
    through_proxy: Callable[..., None],
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

    cleared = S3Storage(seaweedfs_s3.bucket, "run").clear_sessions()
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
    through_proxy: Callable[..., None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fault: Fault,
) -> None:
    sessions = spread_sessions(40, tag=f"{fault.name}-")
    keys = seed(seaweedfs_s3, "perm", sessions)
    bad = set(keys[3::14])
    through_proxy(max_attempts=3, read_timeout=0.5)  # each attempt of a stall costs a read timeout
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
        damaged = ("does not match bundle id", "corrupt gzip data")  # the hash, or gzip's own CRC, caught it
        assert all(any(m in message for m in damaged) for message in stats["error_messages"]), stats
    # each object was tried again before it was reported, whether the fault came in the
    # response headers or in the body
    assert fault_proxy.counts[fault] >= len(bad) * 2


def partition_of(session: TestSession) -> tuple[str, date]:
    return session.sut_name, session.session_start_time.date()


def partition_key(key: str) -> tuple[str, date]:
    parsed = parse_bundle_key(key, "perm")
    assert parsed.sut_name is not None
    return parsed.sut_name, parsed.day


@pytest.mark.parametrize("fault", [Fault.CORRUPT, Fault.TRUNCATE, Fault.RESET])
def test_a_body_damaged_in_transit_is_downloaded_again_never_merged(
    seaweedfs_s3: S3Target,
    fault_proxy: FaultProxy,
    through_proxy: Callable[..., None],
    tmp_path: Path,
    fault: Fault,
) -> None:
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
