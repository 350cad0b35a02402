"""Concurrent import and export through a bucket: bounded transfers, bounded memory, narrow listings."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from contextlib import aclosing
from datetime import timedelta
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from pytest_insight.core.storage import InMemoryStorage, JSONStorage, run_sync
from pytest_insight.format.bundle import encode_bundle, encode_session
from pytest_insight.format.layout import bundle_key
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.local.store import LocalBackend
from pytest_insight.storage.s3.objects import INLINE_DECODE_BYTES
from pytest_insight.storage.s3.pipeline import KEY_BUFFER_FACTOR, read_bundles
from pytest_insight.storage.scope import Scope
from tests.conftest import BASE_TIME, MakeSession
from tests.faultproxy import ProxyRequest
from tests.s3servers import RequestLog, S3Target


class InFlight:
    """Counts the GetObject requests in flight, as a recording proxy in front of the server sees them.

    Until ``hold`` requests are in flight at once, each one waits there (at
    most ``patience`` seconds) for the others, so a pool that really runs
    ``hold`` transfers at a time reaches that number whatever the machine's speed.
    """

    def __init__(self, log: RequestLog, hold: int, patience: float = 5.0) -> None:
        self.lock = threading.Lock()
        self.now = self.peak = self.started = self.finished = 0
        self.full = threading.Event()
        self.hold = hold
        self.patience = patience
        log.proxy.plan(rules=[self.sending])

    def sending(self, request: ProxyRequest) -> None:
        if not request.is_object_download:
            return
        with self.lock:
            self.now += 1
            self.started += 1
            self.peak = max(self.peak, self.now)
            if self.now >= self.hold:
                self.full.set()
        self.full.wait(self.patience)
        with self.lock:
            self.now -= 1
            self.finished += 1


def publish(s3: S3Target, make_session: MakeSession, bundles: int, prefix: str = "team") -> list[TestSession]:
    """Upload ``bundles`` one-session bundles (one SUT, one day each) and return the sessions."""
    sessions = [
        make_session(sut_name=f"sut-{n % 3}", start=BASE_TIME + timedelta(days=n // 3))
        for n in range(bundles)
    ]
    backend = s3.backend(prefix)
    assert run_sync(backend.write, [encode_session(s) for s in sessions]) == bundles
    assert len(s3.keys(prefix)) == bundles
    return sessions


def test_downloads_run_concurrency_at_a_time_and_never_more(
    mock_s3: S3Target, make_request_log: Callable[[S3Target], RequestLog], make_session: MakeSession
) -> None:
    publish(mock_s3, make_session, 24)
    log = make_request_log(mock_s3)
    counter = InFlight(log, hold=4)
    storage = mock_s3.storage("team", concurrency=4, endpoint_url=log.endpoint_url)
    assert len(storage.load_sessions()) == 24
    assert counter.peak == 4  # reached the pool size, never above it
    assert counter.finished == 24


def test_memory_is_bounded_by_the_buffers_not_the_prefix(
    mock_s3: S3Target, make_request_log: Callable[[S3Target], RequestLog], make_session: MakeSession
) -> None:
    publish(mock_s3, make_session, 60)
    log = make_request_log(mock_s3)
    counter = InFlight(log, hold=1)
    backend = mock_s3.backend("team", concurrency=2, endpoint_url=log.endpoint_url)
    bound = backend.concurrency * 2 + 1  # being downloaded + waiting in the buffer + with the consumer
    held: list[int] = []

    async def slow_consumer() -> int:
        consumed = 0
        async with aclosing(read_bundles(backend.bucket, backend.list_keys())) as bundles:
            async for stored in bundles:
                assert stored.failure is None
                consumed += 1
                await anyio.to_thread.run_sync(time.sleep, 0.005)  # a writer slower than the downloads
                held.append(counter.started - consumed)
        return consumed

    assert run_sync(slow_consumer) == 60
    assert max(held) <= bound
    assert KEY_BUFFER_FACTOR >= 1


@pytest.mark.parametrize("noise", [0, INLINE_DECODE_BYTES])  # decoded on the event loop / in a thread
def test_a_bundle_reads_back_whole_whatever_its_size(
    mock_s3: S3Target, make_session: MakeSession, noise: int
) -> None:
    session = make_session(tags={"noise": os.urandom(noise).hex()})  # random text: gzip leaves it large
    backend = mock_s3.backend("team")
    run_sync(backend.write, [encode_session(session)])
    (key,) = mock_s3.keys("team")
    size = mock_s3.client.head_object(Bucket=mock_s3.bucket, Key=key)["ContentLength"]
    assert (size > INLINE_DECODE_BYTES) == (noise > 0)
    stored = run_sync(backend.read_bundle, key)
    assert (stored.failure, stored.errors) == (None, [])
    assert stored.sessions == [session]


def test_stopping_early_cancels_the_remaining_transfers(
    mock_s3: S3Target, make_request_log: Callable[[S3Target], RequestLog], make_session: MakeSession
) -> None:
    publish(mock_s3, make_session, 40)
    log = make_request_log(mock_s3)
    counter = InFlight(log, hold=1)
    backend = mock_s3.backend("team", concurrency=2, endpoint_url=log.endpoint_url)

    async def first_two() -> int:
        taken = 0
        async with aclosing(read_bundles(backend.bucket, backend.list_keys())) as bundles:
            async for _stored in bundles:
                taken += 1
                if taken == 2:
                    break
        return taken

    assert run_sync(first_two) == 2
    assert counter.started < 40


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [("", 12), ("/v1/sut=sut-1", 4), ("/v1/sut=sut-1/date=2024-05-02", 1), ("/v1/sut=sut-1/", 4)],
)
def test_import_from_a_prefix_inside_the_layout(
    mock_s3: S3Target, make_session: MakeSession, tmp_path: Path, suffix: str, expected: int
) -> None:
    sessions = publish(mock_s3, make_session, 12)
    local = JSONStorage(tmp_path / "dev")
    stats = local.import_sessions(f"s3://{mock_s3.bucket}/team{suffix}")
    assert (stats["added"], stats["errors"]) == (expected, 0)
    wanted = {s.session_id for s in sessions if suffix == "" or f"sut={s.sut_name}" in suffix}
    if "date=" in suffix:
        wanted = {s.session_id for s in sessions if s.sut_name == "sut-1" and s.session_start_time.day == 2}
    assert {s.session_id for s in local.load_sessions()} == wanted


def test_import_filters_narrow_the_listing(
    mock_s3: S3Target,
    make_request_log: Callable[[S3Target], RequestLog],
    make_session: MakeSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publish(mock_s3, make_session, 12)
    calls = make_request_log(mock_s3)
    monkeypatch.setenv("AWS_ENDPOINT_URL", calls.endpoint_url)  # the import's backend, through the proxy
    target = InMemoryStorage()
    stats = target.import_sessions(f"s3://{mock_s3.bucket}/team", sut_name="sut-2")
    assert stats["added"] == 4
    assert {call["Prefix"] for call in calls.seen["ListObjectsV2"]} == {"team/v1/sut=sut-2/"}


def test_import_of_many_bundles_merges_in_batches_and_again_adds_nothing(
    s3: S3Target, make_session: MakeSession, tmp_path: Path
) -> None:
    sessions = publish(s3, make_session, 30)
    local = JSONStorage(tmp_path / "dev")
    assert local.import_sessions(f"s3://{s3.bucket}/team")["added"] == 30
    again = local.import_sessions(f"s3://{s3.bucket}/team")
    assert (again["added"], again["skipped"], again["errors"]) == (0, 30, 0)
    assert sorted(s.session_id for s in local.load_sessions()) == sorted(s.session_id for s in sessions)


def test_an_import_into_a_local_store_writes_each_bundle_line_as_downloaded(
    mock_s3: S3Target, make_session: MakeSession, tmp_path: Path
) -> None:
    sessions = publish(mock_s3, make_session, 3)
    local = JSONStorage(tmp_path / "dev")
    assert local.import_sessions(f"s3://{mock_s3.bucket}/team")["added"] == 3
    backend = local.backend
    assert isinstance(backend, LocalBackend)
    for session in sessions:  # the bundle's canonical line (sorted keys), not the store's own encoding
        assert backend.path_for(session.session_id).read_bytes() == encode_session(session).line + b"\n"
    assert sorted(local.load_sessions(), key=lambda s: s.session_id) == sorted(
        sessions, key=lambda s: s.session_id
    )


def test_export_uploads_concurrently_and_twice_uploads_nothing_new(
    s3: S3Target,
    request_log: RequestLog,
    make_session: MakeSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = JSONStorage(tmp_path / "ci")
    local.save_sessions(
        make_session(sut_name=f"sut-{n % 4}", start=BASE_TIME + timedelta(days=n % 5, minutes=n))
        for n in range(40)
    )
    monkeypatch.setenv(
        "AWS_ENDPOINT_URL", request_log.endpoint_url
    )  # the export's backend, through the proxy
    reports: list[tuple[str, int, int | None]] = []

    def progress(phase: str, done: int, total: int | None) -> None:
        reports.append((phase, done, total))

    assert local.export_sessions(f"s3://{s3.bucket}/team", progress=progress) == 40
    puts = request_log.seen["PutObject"]
    first = len(puts)
    assert first == 20  # one bundle per SUT and day
    assert all(call["IfNoneMatch"] == "*" for call in puts)
    assert reports[-1] == ("new bundles", 20, 20)
    keys = s3.keys("team/")
    assert local.export_sessions(f"s3://{s3.bucket}/team", progress=progress) == 40
    assert s3.keys("team/") == keys  # same content, same keys: nothing new stored
    assert reports[-1] == ("new bundles", 0, 20)  # and the export says so
    imported = InMemoryStorage()
    assert imported.import_sessions(f"s3://{s3.bucket}/team")["added"] == 40


def test_export_respects_the_scope(mock_s3: S3Target, make_session: MakeSession) -> None:
    source = InMemoryStorage(
        [make_session(sut_name=s, start=BASE_TIME + timedelta(days=d)) for s in ("a", "b") for d in range(3)]
    )
    assert source.export_sessions(f"s3://{mock_s3.bucket}/x", sut_name="a") == 3
    assert all(key.startswith("x/v1/sut=a/") for key in mock_s3.keys(""))
    loaded = mock_s3.storage("x").load_sessions(Scope(sut_name="a"))
    assert len(loaded) == 3


def test_an_import_reports_list_transfer_and_merge_progress(
    s3: S3Target, make_session: MakeSession, tmp_path: Path
) -> None:
    sessions = publish(s3, make_session, bundles=7)
    calls: list[tuple[str, int, int | None]] = []
    target = InMemoryStorage()
    source = f"s3://{s3.bucket}/team"
    stats = target.import_sessions(source, progress=lambda *call: calls.append(call))
    assert stats["added"] == len(sessions)
    listed = [done for phase, done, _ in calls if phase == "list"]
    transferred = [(done, total) for phase, done, total in calls if phase == "transfer"]
    merged = [done for phase, done, _ in calls if phase == "merge"]
    assert listed == list(range(1, 8))
    assert [done for done, _ in transferred] == list(range(1, 8))
    assert transferred[-1] == (7, 7)
    assert all(total is not None and done <= total for done, total in transferred)
    assert merged[-1] == len(sessions)


@pytest.mark.parametrize(
    ("sut", "day_offset", "field"),
    [("web", 0, "sut_name"), ("api", 1, "session_start_time")],
)
def test_a_bundle_whose_key_disagrees_with_its_content_is_an_error_not_an_import(
    s3: S3Target, make_session: MakeSession, sut: str, day_offset: int, field: str
) -> None:
    good = make_session("good", sut_name="api", start=BASE_TIME + timedelta(days=3))
    moved = make_session("moved", sut_name="api", start=BASE_TIME)
    run_sync(s3.backend("team").write, [encode_session(good)])
    bundle = encode_bundle([moved])
    wrong_key = bundle_key(sut, (BASE_TIME + timedelta(days=day_offset)).date(), bundle.bundle_id, "team")
    s3.client.put_object(Bucket=s3.bucket, Key=wrong_key, Body=bundle.data)

    target = InMemoryStorage()
    stats = target.import_sessions(f"s3://{s3.bucket}/team")
    assert (stats["added"], stats["errors"]) == (1, 1)
    (message,) = stats["error_messages"]
    assert message.startswith(f"s3://{s3.bucket}/{wrong_key}: {field}: ")
    assert "'moved' not imported" in message
    assert [session.session_id for session in target.load_sessions()] == ["good"]
