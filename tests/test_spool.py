"""The export spool: sessions on disk, keys in memory, one partition's lines read at a time."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from pytest_insight.core.storage import InMemoryStorage
from pytest_insight.errors import StorageError
from pytest_insight.exchange import file_sinks, locations
from pytest_insight.format.bundle import EncodedSession, encode_bundle, encode_session, ordered, partition
from pytest_insight.format.spool import SessionSpool
from pytest_insight.storage import uris
from pytest_insight.storage.s3 import objects as s3_objects
from pytest_insight.storage.s3 import pipeline as s3_pipeline
from tests.conftest import BASE_TIME, MakeSession
from tests.s3servers import S3Target


def encoded(make_session: MakeSession, count: int, suts: int = 3) -> list[EncodedSession]:
    return [
        encode_session(
            make_session(
                sut_name=f"sut-{n % suts}",
                start=BASE_TIME + timedelta(days=n % 4, minutes=n),
                tags={"size": "x" * (n * 97 % 3000)},  # lines of many lengths
            )
        )
        for n in range(count)
    ]


class PreadCount:
    """Counts the lines a spool reads back from its file."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.lock = threading.Lock()
        real = os.pread

        def counted(fd: int, length: int, offset: int) -> bytes:
            with self.lock:
                self.calls += 1
            return real(fd, length, offset)

        monkeypatch.setattr(os, "pread", counted)


def test_items_come_back_as_appended(make_session: MakeSession) -> None:
    items = encoded(make_session, 25)
    with SessionSpool() as spooled:
        for item in items:
            spooled.append(item)
        assert len(spooled) == 25
        assert list(spooled) == items
        assert spooled[-1] == items[-1]
        assert list(spooled[3:20:4]) == items[3:20:4]
        with pytest.raises(IndexError):
            spooled[25]


def test_partitions_are_grouped_without_reading_a_line(
    make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = encoded(make_session, 40)
    reads = PreadCount(monkeypatch)
    with SessionSpool() as spooled:
        for item in items:
            spooled.append(item)
        groups = partition(spooled)
        assert reads.calls == 0
        expected = partition(items)
        assert set(groups) == set(expected)
        (key, members), *_ = groups.items()
        assert encode_bundle(members) == encode_bundle(expected[key])
        assert reads.calls == len(members)  # that partition's lines only


def test_the_spool_is_dropped_when_the_export_ends(
    make_session: MakeSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[SessionSpool] = []
    real_init = SessionSpool.__init__

    def recorded(self: SessionSpool) -> None:
        real_init(self)
        made.append(self)

    monkeypatch.setattr(SessionSpool, "__init__", recorded)
    assert InMemoryStorage([make_session()]).export_sessions(tmp_path / "out") == 1
    assert len(made) == 1
    assert made[0]._file.closed


class BundlesHeld:
    """The peak number of bundles encoded whose write has not ended yet."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.peak = 0

    def encoded(self, members: Any) -> Any:
        bundle = encode_bundle(members)
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        return bundle

    def written(self) -> None:
        with self.lock:
            self.now -= 1


def test_a_directory_export_holds_at_most_its_writers_bundles(
    make_session: MakeSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = [make_session(sut_name=f"sut-{n}") for n in range(30)]  # 30 partitions
    watch = BundlesHeld()
    monkeypatch.setattr(file_sinks, "encode_bundle", watch.encoded)
    real_put = file_sinks.DirectorySink._put

    def put(self: file_sinks.DirectorySink, target: Path, data: bytes) -> bool:
        written = real_put(self, target, data)
        watch.written()
        return written

    monkeypatch.setattr(file_sinks.DirectorySink, "_put", put)
    assert InMemoryStorage(sessions).export_sessions(tmp_path / "out") == 30
    assert len(list((tmp_path / "out").rglob("*.jsonl.gz"))) == 30
    assert 1 <= watch.peak <= file_sinks._WRITERS


def test_an_upload_holds_at_most_concurrency_bundles(
    mock_s3: S3Target, make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = [make_session(sut_name=f"sut-{n}") for n in range(20)]
    watch = BundlesHeld()
    monkeypatch.setattr(s3_pipeline, "encode_bundle", watch.encoded)
    backend = mock_s3.backend("team", concurrency=3)
    real_put = s3_objects.put_bundle

    async def put(*args: Any, **kwargs: Any) -> str | None:
        etag = await real_put(*args, **kwargs)
        watch.written()
        return etag

    monkeypatch.setattr(s3_pipeline, "put_bundle", put)
    storage = InMemoryStorage(sessions)
    monkeypatch.setitem(
        uris.SCHEMES, "s3", uris.Scheme(storage=True, location=True, factory=lambda uri: backend)
    )
    assert storage.export_sessions(f"s3://{mock_s3.bucket}/team") == 20
    assert len(mock_s3.keys("team/")) == 20
    assert 1 <= watch.peak <= 3


def test_an_unwritable_temporary_directory_is_a_one_line_storage_error(
    make_session: MakeSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-dir"
    monkeypatch.setattr(tempfile, "tempdir", str(missing))
    with pytest.raises(
        StorageError, match=f"^{missing}: cannot create the export's temporary file: .*TMPDIR"
    ):
        InMemoryStorage([make_session()]).export_sessions(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def spool_of(items: list[EncodedSession]) -> SessionSpool:
    spooled = SessionSpool()
    for item in items:
        spooled.append(item)
    return spooled


def test_a_single_file_export_writes_the_same_bytes_as_a_whole_bundle(
    make_session: MakeSession, tmp_path: Path
) -> None:
    items = encoded(make_session, 30)
    with spool_of(items) as spooled:
        written = anyio.run(file_sinks.BundleFileSink(tmp_path / "all.jsonl.gz").write, spooled)
        assert written == 30
        assert (tmp_path / "all.jsonl.gz").read_bytes() == encode_bundle(items).data

        anyio.run(file_sinks.DocumentSink(tmp_path / "all.json").write, spooled)
    document = json.loads((tmp_path / "all.json").read_bytes())
    assert [json.loads(item.line) for item in ordered(items)] == document["sessions"]


@pytest.mark.parametrize("name", ["all.json", "all.jsonl.gz"])
def test_a_single_file_export_holds_one_session_at_a_time(
    make_session: MakeSession, tmp_path: Path, name: str
) -> None:
    noise = os.urandom(200_000).hex()  # 400 KB a session that gzip cannot shrink much: 24 MB in all
    items = [
        encode_session(make_session(start=BASE_TIME + timedelta(minutes=n), tags={"noise": noise}))
        for n in range(60)
    ]
    sink = locations.open_sink(tmp_path / name)
    with spool_of(items) as spooled:
        del items
        tracemalloc.start()
        try:
            assert anyio.run(sink.write, spooled) == 60
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak / 1e6:.1f} MB for a 24 MB export"
    assert InMemoryStorage().import_sessions(tmp_path / name)["added"] == 60


def test_a_single_file_export_that_fails_part_way_leaves_no_file(
    make_session: MakeSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = encoded(make_session, 20)
    real = os.pread
    reads = 0

    def failing(fd: int, length: int, offset: int) -> bytes:
        nonlocal reads
        reads += 1
        if reads == 10:
            raise OSError(5, "Input/output error")
        return real(fd, length, offset)

    with spool_of(items) as spooled:
        monkeypatch.setattr(os, "pread", failing)
        for name in ("all.json", "all.jsonl.gz"):
            reads = 0
            with pytest.raises(StorageError, match="cannot read the export's temporary file"):
                anyio.run(locations.open_sink(tmp_path / name).write, spooled)
    assert list(tmp_path.iterdir()) == []
