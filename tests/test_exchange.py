"""The exchange core: strategies and their stats, idempotence, bad input, locations, filters, clear."""

from __future__ import annotations

import dataclasses
import gzip
import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from pytest_insight.core.storage import InMemoryStorage, JSONStorage, Storage
from pytest_insight.errors import ConfigurationError, InvalidDataError, NotFoundError, StorageError
from pytest_insight.exchange import operations
from pytest_insight.exchange.operations import ImportStats, MergeStrategy
from pytest_insight.format.bundle import encode_bundle
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.local.pack_shelf import Found, PackShelf
from pytest_insight.storage.local.session_files import session_file_name
from pytest_insight.storage.local.store import LocalBackend
from pytest_insight.storage.memory import MemoryBackend
from pytest_insight.storage.scope import Scope

DATA = Path(__file__).parent / "data"
STRATEGIES = [strategy.value for strategy in MergeStrategy]
Make = Callable[..., TestSession]


@pytest.fixture(params=["memory", "local", "packed"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """An empty target store, once per backend (``packed``: every batch of two or more as a pack)."""
    if request.param == "memory":
        return InMemoryStorage(name="target")
    if request.param == "packed":
        return Storage(LocalBackend(tmp_path / "target-store", pack_from=2))
    return JSONStorage(tmp_path / "target-store")


def variant(session: TestSession, tag: str) -> TestSession:
    """The same id with different content."""
    return dataclasses.replace(session, session_tags={**session.session_tags, "variant": tag})


def export(sessions: Sequence[TestSession], path: Path) -> Path:
    """Write ``sessions`` as they are (duplicates included) to a bundle or document at ``path``."""
    if path.name.endswith(".gz"):
        path.write_bytes(encode_bundle(sessions).data)
    else:
        path.write_text(json.dumps({"schema_version": 1, "sessions": [s.to_dict() for s in sessions]}))
    return path


def stats(**counts: int) -> dict[str, int]:
    full = dict.fromkeys(("total", "imported", "added", "updated", "skipped", "errors"), 0)
    full.update(counts)
    return full


def numbers(result: ImportStats) -> dict[str, int]:
    assert result["total"] == result["imported"] + result["skipped"] + result["errors"]
    assert result["imported"] == result["added"] + result["updated"]
    return {key: value for key, value in result.items() if key != "error_messages"}  # type: ignore[misc]


def tags_of(storage: Storage) -> dict[str, str | None]:
    return {s.session_id: s.session_tags.get("variant") for s in storage.load_sessions()}


# -- strategies -----------------------------------------------------------------


@pytest.fixture
def conflict(store: Storage, make_session: Make, tmp_path: Path) -> tuple[Storage, Path]:
    """A store with s1 and s2, and a source with s1 changed, s2 identical and s3 new."""
    s1, s2, s3 = make_session("s1"), make_session("s2"), make_session("s3")
    store.save_sessions([s1, s2])
    return store, export([variant(s1, "new"), s2, s3], tmp_path / "in.jsonl.gz")


def test_skip_existing(conflict: tuple[Storage, Path]) -> None:
    store, source = conflict
    assert numbers(store.import_sessions(source)) == stats(total=3, imported=1, added=1, skipped=2)
    assert tags_of(store) == {"s1": None, "s2": None, "s3": None}


@pytest.mark.parametrize("pack_from", [1000, 2], ids=["files", "pack"])
def test_skip_existing_never_reads_the_stored_sessions(
    make_session: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pack_from: int
) -> None:
    backend = LocalBackend(tmp_path / "store", pack_from=pack_from)
    store = Storage(backend)
    stored = [make_session() for _ in range(20)]
    store.save_sessions(stored)
    source = export([*stored, make_session("new")], tmp_path / "in.jsonl.gz")
    reads: list[str] = []
    read_files, read_packed = LocalBackend._read, PackShelf.read

    def counted_files(paths: Iterable[Path]) -> list[Found]:
        found = read_files(paths)
        reads.extend(name for name, _, _ in found)
        return found

    def counted_packed(self: PackShelf, pack: str, names: Iterable[str] | None = None) -> list[Found] | None:
        found = read_packed(self, pack, names)
        reads.extend(name for name, _, _ in found or ())
        return found

    monkeypatch.setattr(LocalBackend, "_read", staticmethod(counted_files))
    monkeypatch.setattr(PackShelf, "read", counted_packed)
    assert numbers(store.import_sessions(source)) == stats(total=21, imported=1, added=1, skipped=20)
    assert reads == []  # whether an id is stored is all skip_existing asks
    store.import_sessions(export([variant(stored[0], "b")], tmp_path / "b.jsonl.gz"), "replace_existing")
    assert reads == [session_file_name(stored[0].session_id)]  # the one compared


def test_replace_existing(conflict: tuple[Storage, Path]) -> None:
    store, source = conflict
    result = store.import_sessions(source, "replace_existing")
    assert numbers(result) == stats(total=3, imported=2, added=1, updated=1, skipped=1)
    assert tags_of(store) == {"s1": "new", "s2": None, "s3": None}


def test_keep_both(conflict: tuple[Storage, Path]) -> None:
    store, source = conflict
    result = store.import_sessions(source, "keep_both")
    assert numbers(result) == stats(total=3, imported=2, added=2, skipped=1)
    assert tags_of(store) == {"s1": None, "s1-1": "new", "s2": None, "s3": None}
    copy = store.get_session_by_id("s1-1")
    assert copy is not None
    assert copy.sut_name == "checkout-api"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_reimport_is_idempotent(conflict: tuple[Storage, Path], strategy: str) -> None:
    store, source = conflict
    store.import_sessions(source, strategy)
    before = {s.session_id: s.to_dict() for s in store.load_sessions()}
    assert numbers(store.import_sessions(source, strategy)) == stats(total=3, skipped=3)
    assert {s.session_id: s.to_dict() for s in store.load_sessions()} == before


@pytest.mark.parametrize(
    ("strategy", "expected", "kept"),
    [
        ("skip_existing", stats(total=3, skipped=3), {"x": "a"}),
        ("replace_existing", stats(total=3, imported=1, updated=1, skipped=2), {"x": "b"}),
    ],
)
def test_duplicate_ids_in_one_source_are_taken_once(
    store: Storage,
    make_session: Make,
    tmp_path: Path,
    strategy: str,
    expected: dict[str, int],
    kept: dict[str, str],
) -> None:
    base = make_session("x")
    store.save_session(variant(base, "a"))
    source = export([variant(base, "b"), variant(base, "c"), variant(base, "b")], tmp_path / "d.jsonl.gz")
    assert numbers(store.import_sessions(source, strategy)) == expected
    assert tags_of(store) == kept
    assert numbers(store.import_sessions(source, strategy)) == stats(total=3, skipped=3)


def test_duplicate_ids_into_an_empty_store(store: Storage, make_session: Make, tmp_path: Path) -> None:
    base = make_session("x")
    source = export([variant(base, "a"), variant(base, "b")], tmp_path / "d.json")
    assert numbers(store.import_sessions(source, "replace_existing")) == stats(
        total=2, imported=1, added=1, skipped=1
    )
    assert tags_of(store) == {"x": "a"}


@pytest.mark.parametrize("batch_size", [1, 2, 500])
def test_keep_both_suffixes_are_unique_against_store_and_batch(
    make_session: Make, tmp_path: Path, batch_size: int
) -> None:
    base = make_session("s1")
    target = MemoryBackend([variant(base, "0"), variant(dataclasses.replace(base, session_id="s1-1"), "1")])
    source = export(
        [variant(base, "2"), variant(base, "3"), variant(base, "1"), variant(base, "2"), variant(base, "0")],
        tmp_path / "k.jsonl.gz",
    )

    async def run() -> ImportStats:
        return await operations.import_sessions(
            target, source, merge_strategy=MergeStrategy.KEEP_BOTH, scope=Scope(), batch_size=batch_size
        )

    assert numbers(anyio.run(run)) == stats(total=5, imported=2, added=2, skipped=3)
    assert tags_of(Storage(target)) == {"s1": "0", "s1-1": "1", "s1-2": "2", "s1-3": "3"}
    assert numbers(anyio.run(run)) == stats(total=5, skipped=5)


def test_keep_both_with_a_native_suffixed_id_in_the_source(make_session: Make, tmp_path: Path) -> None:
    storage = InMemoryStorage([make_session("t")])
    other = variant(make_session("t"), "v")
    native = dataclasses.replace(variant(other, "native"), session_id="t-1")
    source = export([other, native], tmp_path / "n.jsonl.gz")
    assert numbers(storage.import_sessions(source, "keep_both")) == stats(total=2, imported=2, added=2)
    assert tags_of(storage) == {"t": None, "t-1": "v", "t-1-1": "native"}


def test_unknown_strategy_is_refused_before_anything_is_read(store: Storage, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="skip_existing, replace_existing, keep_both"):
        store.import_sessions(tmp_path / "does-not-exist.json", "merge_everything")
    assert store.load_sessions() == []


def test_parse_strategy_and_scope_for() -> None:
    assert operations.parse_strategy(" Keep-Both ") is MergeStrategy.KEEP_BOTH
    with pytest.raises(ConfigurationError, match="days"):
        operations.scope_for(days=-1)
    with pytest.raises(ConfigurationError, match="sut_name"):
        operations.scope_for(sut_name=" ")
    since = operations.scope_for(days=3).since
    assert since is not None
    assert abs((datetime.now(UTC) - timedelta(days=3) - since).total_seconds()) < 60
    later = datetime.now(UTC) - timedelta(days=1)
    assert operations.scope_for(days=3, since=later).since == later


# -- bad input ------------------------------------------------------------------


def test_bad_lines_are_counted_and_named_while_good_sessions_import(
    store: Storage, make_session: Make, tmp_path: Path
) -> None:
    good = [json.dumps(make_session().to_dict()) for _ in range(3)]
    lines = [good[0], "{oops", good[1], '{"sut_name": "x"}', good[2]]
    source = tmp_path / "mixed.jsonl.gz"
    source.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    result = store.import_sessions(source)
    assert numbers(result) == stats(total=5, imported=3, added=3, errors=2)
    assert result["error_messages"] == [
        f"{source}:2: not valid JSON: Expecting property name enclosed in double quotes",
        f"{source}:4: session_start_time: missing required field",
    ]


def test_a_truncated_gzip_imports_what_came_before(
    store: Storage, make_session: Make, tmp_path: Path
) -> None:
    data = encode_bundle([make_session(tests=30) for _ in range(40)]).data
    source = tmp_path / "cut.jsonl.gz"
    source.write_bytes(data[: len(data) // 2])
    result = store.import_sessions(source)
    assert result["errors"] == 1
    assert 0 < result["added"] < 40
    assert result["error_messages"][0].startswith(f"{source}: truncated gzip stream")
    assert len(store.load_sessions()) == result["added"]


def test_a_gzip_bomb_is_refused(store: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_INSIGHT_MAX_BUNDLE_BYTES", str(4 << 20))
    source = tmp_path / "bomb.jsonl.gz"
    source.write_bytes(gzip.compress(b"\n" * (64 << 20), compresslevel=9))
    result = store.import_sessions(source)
    assert numbers(result) == stats(total=1, errors=1)
    assert result["error_messages"] == [f"{source}: more than {4 << 20} bytes once decompressed (limit)"]


def test_a_json_file_of_the_wrong_shape_is_not_an_export(store: Storage, tmp_path: Path) -> None:
    source = tmp_path / "wrong.json"
    source.write_text('{"results": [1, 2, 3]}')
    with pytest.raises(InvalidDataError) as caught:
        store.import_sessions(source)
    assert str(caught.value) == (
        f'{source}: expected an export document {{"sessions": [...]}} or a list of sessions, '
        "got an object with keys ['results']"
    )
    assert store.load_sessions() == []


def test_the_same_file_inside_a_directory_is_one_error_and_the_rest_imports(
    store: Storage, make_session: Make, tmp_path: Path
) -> None:
    (tmp_path / "bundles").mkdir()
    InMemoryStorage([make_session()]).export_sessions(tmp_path / "bundles" / "good.jsonl.gz")
    with gzip.open(tmp_path / "bundles" / "tarball.jsonl.gz", "wb") as stream:
        stream.write(b"package.json\0\0\0ustar\n")
    result = store.import_sessions(tmp_path / "bundles")
    assert result["added"] == 1
    assert result["errors"] == 1


def test_a_missing_source_raises_naming_the_path(store: Storage, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "sessions.json"
    with pytest.raises(NotFoundError, match=str(missing)):
        store.import_sessions(missing)


def test_format_comes_from_content_not_the_name(store: Storage, make_session: Make, tmp_path: Path) -> None:
    bundle_named_json = tmp_path / "really-a-bundle.json"
    bundle_named_json.write_bytes(encode_bundle([make_session()]).data)
    assert store.import_sessions(bundle_named_json)["added"] == 1
    document_named_gz = tmp_path / "really-a-document.json.gz"
    export([make_session()], tmp_path / "doc.json").rename(document_named_gz)
    assert store.import_sessions(document_named_gz)["added"] == 1


@pytest.mark.parametrize(("name", "count"), [("v09_storage.json", 3), ("v09_export.json", 2)])
def test_imports_the_09_formats(store: Storage, name: str, count: int) -> None:
    assert numbers(store.import_sessions(DATA / name)) == stats(total=count, imported=count, added=count)
    first = store.load_sessions()[0]
    assert first.session_start_time.tzinfo is not None
    assert first.sut_name.startswith("legacy-")


# -- failures part way ------------------------------------------------------------


class FailingBackend(MemoryBackend):
    """A memory backend whose ``fail_on``-th transaction fails at commit, like a disk that fills up."""

    def __init__(self, fail_on: int) -> None:
        super().__init__(name="failing")
        self.fail_on = fail_on
        self.transactions = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        self.transactions += 1
        async with super().transaction() as transaction:
            yield transaction
            if self.transactions == self.fail_on:
                raise StorageError("disk full", uri="memory://failing")


def test_a_failure_part_way_leaves_whole_batches_and_a_rerun_completes(
    make_session: Make, tmp_path: Path
) -> None:
    source = export([make_session() for _ in range(5)], tmp_path / "five.jsonl.gz")
    backend = FailingBackend(fail_on=2)

    async def run() -> ImportStats:
        return await operations.import_sessions(
            backend, source, merge_strategy=MergeStrategy.SKIP_EXISTING, scope=Scope(), batch_size=2
        )

    with pytest.raises(StorageError, match="disk full"):
        anyio.run(run)
    assert len(Storage(backend).load_sessions()) == 2
    assert numbers(anyio.run(run)) == stats(total=5, imported=3, added=3, skipped=2)
    assert len(Storage(backend).load_sessions()) == 5


# -- locations, filters and export ----------------------------------------------------


@pytest.fixture
def spread(make_session: Make) -> list[TestSession]:
    """Three SUTs over three recent days, two sessions each."""
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    return [
        make_session(sut_name=sut, start=now - timedelta(days=day, minutes=minute))
        for sut in ("api", "web", "worker")
        for day in (0, 3, 10)
        for minute in (0, 30)
    ]


def bundles_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_directory_export_writes_one_bundle_per_sut_and_day(
    spread: list[TestSession], tmp_path: Path
) -> None:
    root = tmp_path / "bundles"
    assert InMemoryStorage(spread).export_sessions(root) == len(spread)
    files = bundles_under(root)
    assert len(files) == 9
    relative = [path.relative_to(root).parts for path in files]
    assert {parts[1] for parts in relative} == {"sut=api", "sut=web", "sut=worker"}
    assert all(parts[0] == "v1" and parts[2].startswith("date=") for parts in relative)


def test_directory_export_twice_is_a_no_op(spread: list[TestSession], tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    storage = InMemoryStorage(spread)
    reports: list[tuple[str, int, int | None]] = []

    def progress(phase: str, done: int, total: int | None) -> None:
        reports.append((phase, done, total))

    storage.export_sessions(f"file://{root}", progress=progress)
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in bundles_under(root)}
    assert reports[-1] == ("new bundles", len(before), len(before))
    storage.export_sessions(root, progress=progress)
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in bundles_under(root)} == before
    assert reports[-1] == ("new bundles", 0, len(before))


def test_import_a_directory_of_several_suts_and_days(
    store: Storage, spread: list[TestSession], tmp_path: Path
) -> None:
    root = tmp_path / "bundles"
    InMemoryStorage(spread).export_sessions(root)
    assert numbers(store.import_sessions(root)) == stats(total=18, imported=18, added=18)
    assert {s.to_dict()["session_id"]: s.to_dict() for s in store.load_sessions()} == {
        s.session_id: s.to_dict() for s in spread
    }


@pytest.mark.parametrize(
    ("filters", "expected"),
    [({"sut_name": "web"}, 6), ({"days": 5}, 12), ({"sut_name": "api", "days": 1}, 2)],
)
def test_import_filters_narrow_what_is_read_and_counted(
    spread: list[TestSession], tmp_path: Path, filters: dict[str, Any], expected: int
) -> None:
    root = tmp_path / "bundles"
    InMemoryStorage(spread).export_sessions(root)
    target = InMemoryStorage()
    result = target.import_sessions(root, **filters)
    assert numbers(result) == stats(total=expected, imported=expected, added=expected)
    scope = operations.scope_for(**filters)
    assert all(scope.admits(s) for s in target.load_sessions())


@pytest.mark.parametrize("suffix", ["out.json", "out.jsonl.gz", "out.json.gz", "outdir"])
@pytest.mark.parametrize(
    ("filters", "expected"),
    [({}, 18), ({"sut_name": "worker"}, 6), ({"days": 5}, 12), ({"days": 5, "sut_name": "api"}, 4)],
)
def test_export_filters_and_round_trip(
    spread: list[TestSession], tmp_path: Path, suffix: str, filters: dict[str, Any], expected: int
) -> None:
    path = tmp_path / suffix
    assert InMemoryStorage(spread).export_sessions(path, **filters) == expected
    target = InMemoryStorage()
    assert target.import_sessions(path)["added"] == expected
    scope = operations.scope_for(**filters)
    wanted = {s.session_id: s.to_dict() for s in spread if scope.admits(s)}
    assert {s.session_id: s.to_dict() for s in target.load_sessions()} == wanted


def test_export_of_given_sessions_still_applies_filters(spread: list[TestSession], tmp_path: Path) -> None:
    storage = InMemoryStorage(spread)
    chosen = [s for s in spread if s.sut_name != "worker"]
    assert storage.export_sessions(tmp_path / "q.json", sut_name="api", sessions=chosen) == 6


def test_json_document_shape(make_session: Make, tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    InMemoryStorage([make_session("b"), make_session("a")]).export_sessions(path)
    document = json.loads(path.read_text())
    assert sorted(document) == ["exported_at", "schema_version", "sessions"]
    assert document["schema_version"] == 1
    assert datetime.fromisoformat(document["exported_at"]).tzinfo is not None
    assert [s["session_id"] for s in document["sessions"]] == ["b", "a"]  # by start time


def test_bundle_file_export_is_deterministic(spread: list[TestSession], tmp_path: Path) -> None:
    one, two = tmp_path / "1.jsonl.gz", tmp_path / "2.jsonl.gz"
    InMemoryStorage(spread).export_sessions(one)
    InMemoryStorage(list(reversed(spread))).export_sessions(two)
    assert one.read_bytes() == two.read_bytes()


def test_export_to_an_unsupported_file_type_is_refused(make_session: Make, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unsupported export target"):
        InMemoryStorage([make_session()]).export_sessions(tmp_path / "out.csv")
    with pytest.raises(ConfigurationError, match="unsupported URI scheme in 'ftp://host/x'"):
        InMemoryStorage([make_session()]).export_sessions("ftp://host/x")


@pytest.mark.parametrize(
    "name", ["../escape", "/abs/olute", "..", ".", "a\\..\\b", "%2e%2e", ".hidden", "ü ß"]
)
def test_hostile_sut_names_never_escape_the_export_directory(
    make_session: Make, tmp_path: Path, name: str
) -> None:
    root = tmp_path / "inner" / "bundles"
    session = make_session(sut_name=name)
    InMemoryStorage([session]).export_sessions(root)
    everything = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert everything
    assert all(path.resolve().is_relative_to(root.resolve()) for path in everything)
    assert all(not path.name.startswith(".") for path in everything)  # no temp files left behind
    target = InMemoryStorage()
    assert target.import_sessions(root, sut_name=name)["added"] == 1
    assert target.load_sessions()[0].sut_name == name


def test_progress_is_reported(spread: list[TestSession], tmp_path: Path) -> None:
    calls: list[tuple[str, int, int | None]] = []
    InMemoryStorage(spread).export_sessions(tmp_path / "p", progress=lambda *args: calls.append(args))
    assert ("write", 18, 18) in calls
    assert calls[-2:] == [("write", 18, 18), ("new bundles", 9, 9)]
    seen: list[tuple[str, int, int | None]] = []
    InMemoryStorage().import_sessions(tmp_path / "p", progress=lambda *args: seen.append(args))
    assert ("read", 18, None) in seen
    assert seen[-1] == ("merge", 18, None)


def test_file_uri_for_import_and_export(make_session: Make, tmp_path: Path) -> None:
    InMemoryStorage([make_session()]).export_sessions(f"file://{tmp_path}/u.jsonl.gz")
    assert InMemoryStorage().import_sessions(f"file://{tmp_path}/u.jsonl.gz")["added"] == 1


# -- clear --------------------------------------------------------------------------


def test_clear_given_sessions_by_scope_and_all(store: Storage, spread: list[TestSession]) -> None:
    store.save_sessions(spread)
    assert anyio.run(lambda: operations.clear_sessions(store.backend, spread[:2])) == 2
    assert anyio.run(lambda: operations.clear_sessions(store.backend, spread[:3])) == 1
    web = Scope(sut_name="web")
    assert anyio.run(lambda: operations.clear_sessions(store.backend, scope=web)) == 6
    assert anyio.run(lambda: operations.clear_sessions(store.backend, [])) == 0
    assert anyio.run(lambda: operations.clear_sessions(store.backend)) == 9
    assert store.load_sessions() == []


def test_clear_through_the_facade(make_session: Make) -> None:
    storage = InMemoryStorage([make_session(), make_session()])
    first = storage.load_sessions()[:1]
    assert storage.clear_sessions(first) == 1
    assert storage.clear_sessions() == 1


def test_no_temp_files_after_exports(spread: list[TestSession], tmp_path: Path) -> None:
    storage = InMemoryStorage(spread)
    for target in ("a.json", "b.jsonl.gz", "c"):
        storage.export_sessions(tmp_path / target)
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.parametrize("target", ["x.json", "x.jsonl.gz", "bundles"])
def test_an_export_that_cannot_be_written_raises_naming_the_path(
    make_session: Make, tmp_path: Path, target: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="a-file"):
        InMemoryStorage([make_session()]).export_sessions(blocker / target)


def test_a_bundle_directory_is_read_narrowed_by_partition(spread: list[TestSession], tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    InMemoryStorage(spread).export_sessions(root)
    for path in root.glob("v1/sut=web/*/*.jsonl.gz"):
        path.write_bytes(b"corrupt")  # never opened when importing another SUT
    result = InMemoryStorage().import_sessions(root, sut_name="api")
    assert numbers(result) == stats(total=6, imported=6, added=6)


def test_keep_both_copy_whose_id_would_be_too_long_is_an_error_not_a_crash(
    make_session: Make, tmp_path: Path
) -> None:
    longest = "x" * 256
    storage = InMemoryStorage([make_session(longest), make_session("short")])
    other = variant(make_session(longest), "v")
    fine = variant(make_session("short"), "v")
    source = export([other, fine], tmp_path / "long.jsonl.gz")
    result = storage.import_sessions(source, "keep_both")
    assert numbers(result) == stats(total=2, imported=1, added=1, errors=1)
    assert "longer than 256 characters" in result["error_messages"][0]
    assert result["error_messages"][0].startswith(f"session '{'x' * 60}...': ")
    assert tags_of(storage) == {longest: None, "short": None, "short-1": "v"}


def test_a_directory_import_reports_list_and_transfer_progress(make_session: Make, tmp_path: Path) -> None:
    sessions = [make_session(sut_name=f"sut-{n}") for n in range(3)]
    InMemoryStorage(sessions).export_sessions(tmp_path / "bundles")
    calls: list[tuple[str, int, int | None]] = []
    InMemoryStorage().import_sessions(tmp_path / "bundles", progress=lambda *call: calls.append(call))
    assert [call for call in calls if call[0] == "list"] == [("list", 3, None)]
    assert [call for call in calls if call[0] == "transfer"] == [("transfer", n, 3) for n in (1, 2, 3)]


@pytest.mark.parametrize("strategy", ["replace_existing", "keep_both"])
def test_a_local_store_keeps_each_line_as_read_and_encodes_a_renamed_copy_anew(
    make_session: Make, tmp_path: Path, strategy: str
) -> None:
    store = JSONStorage(tmp_path / "store")
    backend = store.backend
    assert isinstance(backend, LocalBackend)
    stored = make_session("s1")
    store.save_sessions([stored])
    # lines as another writer may lay them out: keys reversed, spaces, non-ASCII text unescaped
    changed, new = variant(stored, "naïve"), make_session("s2", tags={"owner": "zoë"})
    lines = [
        json.dumps(dict(reversed(s.to_dict().items())), ensure_ascii=False).encode() for s in (changed, new)
    ]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")

    store.import_sessions(source, strategy)

    assert backend.path_for("s2").read_bytes() == lines[1] + b"\n"
    if strategy == "replace_existing":
        assert backend.path_for("s1").read_bytes() == lines[0] + b"\n"
    else:  # the copy's id differs from its line's: written from the session, under the new id
        assert json.loads(backend.path_for("s1-1").read_bytes())["session_id"] == "s1-1"
        assert backend.path_for("s1").read_bytes() != lines[0] + b"\n"
    expected = {"s1": changed if strategy == "replace_existing" else stored, "s2": new}
    if strategy == "keep_both":
        expected["s1-1"] = dataclasses.replace(changed, session_id="s1-1")
    assert {s.session_id: s for s in store.load_sessions()} == expected


def test_a_batch_ends_early_once_its_lines_reach_the_byte_bound(
    make_session: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = [make_session(tags={"output": "x" * 5_000}) for _ in range(6)]
    source = export(sessions, tmp_path / "big.jsonl.gz")
    monkeypatch.setattr(operations, "BATCH_BYTES", 10_000)  # two lines of over 5 KB each
    merges: list[int] = []
    storage = JSONStorage(tmp_path / "store")
    storage.import_sessions(
        source, progress=lambda step, done, _: merges.append(done) if step == "merge" else None
    )
    assert merges == [2, 4, 6]  # a transaction per two sessions, not one for all six
    assert len(storage.load_sessions()) == 6
