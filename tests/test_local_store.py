"""The local JSON store: its layout on disk, hostile ids, corruption and recovery."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest

from pytest_insight.core.storage import JSONStorage, open_storage, run_sync
from pytest_insight.errors import (
    ConfigurationError,
    CorruptStoreError,
    InvalidDataError,
    StorageError,
    StoreLockedError,
)
from pytest_insight.model.schema import encode_line
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.local.locking import FileLock
from pytest_insight.storage.local.store import LocalBackend, session_file_name
from tests.conftest import MakeSession


def backend_of(storage: JSONStorage) -> LocalBackend:
    backend = storage.backend
    assert isinstance(backend, LocalBackend)
    return backend


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if p.is_file()}


@pytest.fixture
def store(tmp_path: Path) -> JSONStorage:
    return JSONStorage(tmp_path / "store")


def stage_by_hand(
    root: Path, name: str, files: dict[str, bytes], *, put: list[str] | None, delete: Sequence[str] = ()
) -> Path:
    """Leave a staging directory as a killed writer would; ``put=None`` means no marker yet."""
    staging = root / "staging" / name
    staging.mkdir(parents=True)
    for file_name, data in files.items():
        (staging / file_name).write_bytes(data)
    if put is not None:
        (staging / "COMMIT").write_text(json.dumps({"put": put, "delete": list(delete)}))
    return staging


def encoded(session_dict: dict[str, object]) -> bytes:
    """A store file as this release writes it: the session's canonical line (or, if invalid, sorted keys)."""
    try:
        return encode_line(TestSession.from_dict(session_dict)) + b"\n"
    except InvalidDataError:  # a session no release would write: its dict in the same form
        return msgspec.json.encode(session_dict, order="sorted") + b"\n"


def encoded_before(session_dict: dict[str, object]) -> bytes:
    """A store file as releases before 1.0 wrote it: keys in the model's order."""
    return (json.dumps(session_dict, separators=(",", ":")) + "\n").encode()


# -- layout ---------------------------------------------------------------------


def test_layout_one_compact_file_per_session(store: JSONStorage, make_session: MakeSession) -> None:
    session = make_session("run-1")
    store.save_session(session)
    root = backend_of(store).root
    digest = session_file_name("run-1")
    path = root / "sessions" / digest[:2] / digest
    assert files_under(root) == {root / ".lock", path}
    assert path.read_bytes() == encoded(session.to_dict())
    assert list((root / "staging").iterdir()) == []
    assert store.uri == f"file://{root}"
    assert open_storage(store.uri).load_sessions() == [session]


def test_reading_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    store = JSONStorage(tmp_path / "nowhere")
    assert store.load_sessions() == []
    assert store.get_session_by_id("x") is None
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    "hostile",
    [
        "../x",
        "../../etc/passwd",
        "a/b",
        "/abs/olute",
        "..",
        ".",
        "C:\\windows",
        "ünï/cödé",
        "日本語",
        "x" * 256,
    ],
)
def test_hostile_ids_stay_inside_the_store(tmp_path: Path, make_session: MakeSession, hostile: str) -> None:
    root = tmp_path / "deep" / "store"
    store = JSONStorage(root)
    session = make_session(hostile)
    store.save_session(session)
    assert files_under(tmp_path) == {root / ".lock", backend_of(store).path_for(hostile)}
    assert store.get_session_by_id(hostile) == session
    assert store.load_sessions() == [session]


def test_ids_differing_in_case_do_not_collide(store: JSONStorage, make_session: MakeSession) -> None:
    store.save_sessions([make_session("Run"), make_session("run"), make_session("RUN")])
    assert sorted(s.session_id for s in store.load_sessions()) == ["RUN", "Run", "run"]
    assert len({backend_of(store).path_for(sid).name.lower() for sid in ("Run", "run", "RUN")}) == 3


def test_lock_file_is_kept_across_writes(store: JSONStorage, make_session: MakeSession) -> None:
    store.save_session(make_session())
    lock = backend_of(store).lock_path
    inode = lock.stat().st_ino
    store.save_session(make_session())
    assert lock.stat().st_ino == inode


def test_held_lock_times_out_naming_the_path(tmp_path: Path, make_session: MakeSession) -> None:
    backend = LocalBackend(tmp_path / "store", lock_timeout=0.2)
    backend.root.mkdir()
    holder = FileLock(backend.lock_path)
    holder.acquire()
    try:

        async def save() -> None:
            async with backend.transaction() as transaction:
                await transaction.put([make_session()])

        with pytest.raises(StoreLockedError, match=str(backend.lock_path)):
            run_sync(save)
    finally:
        holder.release()
    assert not list(backend.sessions_dir.rglob("*.json"))


# -- 0.9 storage files ------------------------------------------------------------


@pytest.mark.parametrize("content", ['{"sessions": []}', "[]"])
def test_a_09_storage_file_is_a_configuration_error(tmp_path: Path, content: str) -> None:
    legacy = tmp_path / "practice.json"
    legacy.write_text(content)
    with pytest.raises(
        ConfigurationError, match=r"0\.9 storage file; import it with `insight import .*practice"
    ):
        JSONStorage(legacy)
    with pytest.raises(ConfigurationError, match="insight import"):
        open_storage(f"file://{legacy}")
    assert legacy.read_text() == content


def test_another_file_is_not_taken_for_a_store(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(
        ConfigurationError, match=f"^{other} is a file, not a pytest-insight store directory$"
    ):
        JSONStorage(other)


def test_store_without_fsync_has_the_same_layout(tmp_path: Path, make_session: MakeSession) -> None:
    session = make_session("quick")
    backend = LocalBackend(tmp_path / "store", durable=False)

    async def save() -> None:
        async with backend.transaction() as transaction:
            await transaction.put([session])

    run_sync(save)
    assert backend.path_for("quick").read_bytes() == encoded(session.to_dict())
    assert JSONStorage(tmp_path / "store").load_sessions() == [session]


# -- corruption -------------------------------------------------------------------


def plant(store: JSONStorage, session_id: str, data: bytes) -> Path:
    path = backend_of(store).path_for(session_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_an_export_sends_each_file_as_stored_or_encoded_again_when_an_earlier_release_wrote_it(
    store: JSONStorage, make_session: MakeSession, tmp_path: Path
) -> None:
    now, before = make_session("now"), make_session("before")
    store.save_session(now)
    plant(store, "before", encoded_before(before.to_dict()))
    reused = encoded(now.to_dict()).replace(b'"sut_name":', b'"sut_name" :')  # still canonical at its start
    plant(store, "now", reused)
    edited = make_session("edited")
    plant(store, "edited", encoded(edited.to_dict()).replace(b'"sut_name":', b'"sut_name":\n'))
    store.export_sessions(tmp_path / "out.jsonl.gz")
    lines = gzip.decompress((tmp_path / "out.jsonl.gz").read_bytes()).splitlines(keepends=True)
    # reused byte for byte / re-encoded: an earlier release's file, and one that spans two lines
    assert sorted(lines) == sorted([reused, encoded(before.to_dict()), encoded(edited.to_dict())])


def test_bad_json_names_file_and_line(store: JSONStorage, make_session: MakeSession) -> None:
    store.save_session(make_session("fine"))
    path = plant(store, "broken", b'{\n"session_id": "broken",\n"sut_name": oops\n}\n')
    with pytest.raises(CorruptStoreError, match=f"^{path}:3: corrupt store file") as info:
        store.load_sessions()
    assert (info.value.path, info.value.line) == (str(path), 3)
    with pytest.raises(CorruptStoreError, match=str(path)):
        store.get_session_by_id("broken")


def test_invalid_session_names_file_and_field(store: JSONStorage, make_session: MakeSession) -> None:
    data = make_session("bad-field").to_dict()
    data["test_results"][1]["duration"] = "slow"
    path = plant(store, "bad-field", encoded(data))
    with pytest.raises(CorruptStoreError, match=rf"^{path}:1: .*test_results\[1\]\.duration"):
        store.load_sessions()


def test_corrupt_file_is_never_overwritten(store: JSONStorage, make_session: MakeSession) -> None:
    path = plant(store, "victim", b"\x00\x00 torn")
    with pytest.raises(CorruptStoreError):
        store.load_sessions()
    store.save_session(make_session("other"))
    with pytest.raises(CorruptStoreError):
        store.load_sessions()
    assert path.read_bytes() == b"\x00\x00 torn"


def test_file_under_the_wrong_name_is_corrupt(store: JSONStorage, make_session: MakeSession) -> None:
    path = plant(store, "alias", encoded(make_session("original").to_dict()))
    with pytest.raises(CorruptStoreError, match=f"{path}:1: .*session_id"):
        store.load_sessions()


def test_stray_files_are_not_sessions(store: JSONStorage, make_session: MakeSession) -> None:
    session = make_session("kept")
    store.save_session(session)
    shard = backend_of(store).path_for("kept").parent
    (shard / (session_file_name("kept") + ".tmp")).write_bytes(b'{"torn":')
    (shard / "notes.txt").write_text("hello")
    (backend_of(store).sessions_dir / "README").write_text("hello")
    assert store.load_sessions() == [session]


# -- recovery from killed writers ---------------------------------------------------


def test_staging_without_marker_is_ignored_then_discarded(
    store: JSONStorage, make_session: MakeSession
) -> None:
    store.save_session(make_session("before"))
    root = backend_of(store).root
    torn = make_session("torn")
    name = session_file_name("torn")
    staging = stage_by_hand(
        root, "dead", {name: encoded(torn.to_dict())[:100], "COMMIT.tmp": b'{"put"'}, put=None
    )
    assert [s.session_id for s in store.load_sessions()] == ["before"]
    assert store.get_session_by_id("torn") is None
    store.save_session(torn)  # the next writer discards the dead staging dir
    assert not staging.exists()
    assert store.get_session_by_id("torn") == torn


def test_staging_with_marker_is_rolled_forward(store: JSONStorage, make_session: MakeSession) -> None:
    store.save_sessions([make_session("doomed"), make_session("kept")])
    root = backend_of(store).root
    added, moved = make_session("added"), make_session("moved-already")
    moved_name = session_file_name("moved-already")
    plant(store, "moved-already", encoded(moved.to_dict()))  # an interrupted roll-forward moved this one
    staging = stage_by_hand(
        root,
        "committed",
        {session_file_name("added"): encoded(added.to_dict())},
        put=[session_file_name("added"), moved_name],
        delete=[session_file_name("doomed")],
    )
    store.save_session(make_session("trigger"))
    assert not staging.exists()
    assert sorted(s.session_id for s in store.load_sessions()) == [
        "added",
        "kept",
        "moved-already",
        "trigger",
    ]
    assert store.get_session_by_id("added") == added


def test_unreadable_marker_stops_writers(store: JSONStorage, make_session: MakeSession) -> None:
    stage_by_hand(backend_of(store).root, "odd", {}, put=["../../etc/passwd"])
    with pytest.raises(CorruptStoreError, match="COMMIT"):
        store.save_session(make_session())


def test_commit_interrupted_mid_roll_forward_is_finished_later(
    store: JSONStorage, make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = [make_session(f"b{n}") for n in range(5)]
    real_replace = os.replace
    calls: list[object] = []

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append(dst)
        if len(calls) == 3:  # the marker, then one session file, then fail
            raise OSError(28, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(StorageError, match="No space left"):
        store.save_sessions(batch)
    monkeypatch.setattr(os, "replace", real_replace)
    assert len(store.load_sessions()) == 5  # a reader rolls the committed batch forward first
    store.save_session(make_session("next"))
    assert store.load_sessions() == [*batch, store.get_session_by_id("next")]
    assert list((backend_of(store).root / "staging").iterdir()) == []


def test_failed_put_leaves_no_staging(store: JSONStorage, make_session: MakeSession) -> None:
    store.save_session(make_session("dup"))
    with pytest.raises(ValueError, match="dup"):
        store.save_sessions([make_session("new"), make_session("dup")])
    assert list((backend_of(store).root / "staging").iterdir()) == []
    assert [s.session_id for s in store.load_sessions()] == ["dup"]


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # 3.12+: the point
def test_a_forked_child_commits_too(store: JSONStorage, make_session: MakeSession) -> None:
    store.save_sessions([make_session("parent-1"), make_session("parent-2")])  # the parent's fsync pool runs
    context = multiprocessing.get_context("fork")
    child = context.Process(target=_save_two, args=(backend_of(store).root,))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()  # hung on the parent's pool, whose threads it lacks
        child.join()
    assert child.exitcode == 0
    assert {s.session_id for s in store.load_sessions()} == {"parent-1", "parent-2", "child-1", "child-2"}


def _save_two(root: Path) -> None:
    from tests.conftest import build_session

    JSONStorage(root).save_sessions([build_session("child-1"), build_session("child-2")])


def test_a_scan_for_the_analyses_leaves_canonical_session_files_undecoded(
    tmp_path: Path, make_session: MakeSession
) -> None:
    from pytest_insight.format.lines import StoredLine
    from pytest_insight.storage.scope import Scope

    storage = JSONStorage(tmp_path)
    storage.save_sessions([make_session("api-1"), make_session("api-2")])
    backend = storage.backend
    assert isinstance(backend, LocalBackend)
    canonical, rewritten = backend.path_for("api-1"), backend.path_for("api-2")
    earlier = json.dumps(make_session("api-2").to_dict(), indent=2)  # as an earlier release wrote it
    rewritten.write_text(earlier, encoding="utf-8")

    async def scan(method: str, scope: Scope) -> list[object]:
        return [item async for item in getattr(backend, method)(scope)]

    outside = Scope(sut_name="nope")
    line = canonical.read_bytes().removesuffix(b"\n")
    # the canonical file comes as stored, the scope left to its reader; the other is decoded, and left out
    assert run_sync(scan, "scan_undecoded", outside) == [StoredLine(line, str(canonical))]
    assert run_sync(scan, "scan_lines", outside) == []
    everything = run_sync(scan, "scan_undecoded", Scope())
    assert sorted(type(item).__name__ for item in everything) == ["SessionLine", "StoredLine"]
