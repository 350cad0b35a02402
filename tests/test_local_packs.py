"""The local store's packs: bulk commits in one file, sessions moved out, crashes and racing readers."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_insight.core.storage import Storage, run_sync
from pytest_insight.errors import CorruptStoreError, StorageError
from pytest_insight.format.bundle import encode_session
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.local import packs
from pytest_insight.storage.local.session_files import decode_stored, encode_file, session_file_name
from pytest_insight.storage.local.store import LocalBackend
from pytest_insight.storage.scope import Scope
from tests.conftest import MakeSession, build_session

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(tmp_path / "store", pack_from=3)


def files_of(backend: LocalBackend) -> tuple[set[str], set[str]]:
    """The names of the store's session files and of its packs."""
    loose = {path.name for path in backend.sessions_dir.rglob("*") if path.is_file()}
    packed = {path.name for path in backend.packs_dir.glob("*")} if backend.packs_dir.exists() else set()
    return loose, packed


def pack_contents(backend: LocalBackend) -> list[set[str]]:
    """The session ids of each pack."""
    contents = []
    for pack in backend.shelf.names():
        found = backend.shelf.read(pack)
        assert found is not None
        contents.append({session.session_id for _, session, _ in found})
    return sorted(contents, key=sorted)


def key_of(session: TestSession) -> packs.Key:
    return packs.Key(session.session_id, session.sut_name, session.session_start_time)


def replace(backend: LocalBackend, sessions: list[TestSession]) -> None:
    async def run() -> None:
        async with backend.transaction() as transaction:
            await transaction.put(sessions, replace=True)

    run_sync(run)


def delete(backend: LocalBackend, session_ids: list[str] | None) -> int:
    async def run() -> int:
        async with backend.transaction() as transaction:
            return await transaction.delete(session_ids)

    return run_sync(run)


def test_a_commit_of_pack_from_sessions_is_one_pack(backend: LocalBackend, make_session: MakeSession) -> None:
    store = Storage(backend)
    few = [make_session(f"few{n}") for n in range(2)]
    many = [make_session(f"many{n}") for n in range(3)]
    store.save_sessions(few)
    store.save_sessions(many)
    loose, packed = files_of(backend)
    assert loose == {session_file_name(session.session_id) for session in few}
    assert len(packed) == 1
    assert pack_contents(backend) == [{"many0", "many1", "many2"}]
    pack = backend.packs_dir / packed.pop()
    assert pack.read_bytes().startswith(b"".join(encode_file(session) for session in many))
    assert store.load_sessions() == [*few, *many]
    assert store.get_session_by_id("many1") == many[1]
    assert Storage(LocalBackend(backend.root)).load_sessions() == [*few, *many]  # whatever its pack_from
    assert list(backend.staging_dir.iterdir()) == []


def test_replacing_a_packed_session_moves_it_out_of_its_pack(
    backend: LocalBackend, make_session: MakeSession
) -> None:
    store = Storage(backend)
    sessions = [make_session(f"s{n}") for n in range(5)]
    store.save_sessions(sessions)
    (first_pack,) = backend.shelf.names()
    changed = build_session("s2", tags={"v": "2"})
    replace(backend, [changed])  # one session: a file of its own
    loose, packed = files_of(backend)
    assert loose == {session_file_name("s2")}
    assert first_pack not in packed
    assert pack_contents(backend) == [{"s0", "s1", "s3", "s4"}]
    assert store.get_session_by_id("s2") == changed
    assert sorted(s.session_id for s in store.load_sessions()) == ["s0", "s1", "s2", "s3", "s4"]


def test_a_pack_commit_replaces_session_files_and_packed_sessions(
    backend: LocalBackend, make_session: MakeSession
) -> None:
    store = Storage(backend)
    store.save_session(make_session("loose"))
    store.save_sessions([make_session(f"p{n}") for n in range(4)])
    again = [build_session(sid, tags={"v": "2"}) for sid in ("loose", "p1", "p3", "new")]
    replace(backend, again)
    loose, _ = files_of(backend)
    assert loose == set()
    assert pack_contents(backend) == [{"loose", "new", "p1", "p3"}, {"p0", "p2"}]
    stored = {s.session_id: s for s in store.load_sessions()}
    assert len(stored) == 6
    assert all(stored[s.session_id] == s for s in again)


def test_deleting_packed_sessions(backend: LocalBackend, make_session: MakeSession) -> None:
    store = Storage(backend)
    store.save_session(make_session("loose"))
    store.save_sessions([make_session(f"a{n}") for n in range(3)])
    store.save_sessions([make_session(f"b{n}") for n in range(3)])
    assert delete(backend, ["a0", "a1", "b1", "missing"]) == 3
    assert pack_contents(backend) == [{"a2"}, {"b0", "b2"}]
    assert delete(backend, ["a2"]) == 1
    assert pack_contents(backend) == [{"b0", "b2"}]  # a pack left empty goes
    assert delete(backend, None) == 3
    assert files_of(backend) == (set(), set())
    assert store.load_sessions() == []


def test_deleting_then_putting_in_one_transaction(backend: LocalBackend, make_session: MakeSession) -> None:
    Storage(backend).save_sessions([make_session(f"s{n}") for n in range(4)])

    async def run() -> tuple[int, int, set[str]]:
        async with backend.transaction() as transaction:
            removed = await transaction.delete(["s1"])
            await transaction.put([build_session("s1", tags={"v": "2"})])  # no longer stored: no conflict
            everything = await transaction.delete(None)
            return removed, everything, await transaction.stored_ids(["s0", "s1", "zz"])

    assert run_sync(run) == (1, 3, {"s0", "s1"})  # lookups see the store as it was
    assert [s.session_id for s in Storage(backend).load_sessions()] == ["s1"]  # a put outlives the delete


def test_a_session_put_twice_in_one_transaction_is_stored_once(
    tmp_path: Path, make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packs, "PACK_BYTES", 1)  # every put starts a pack of its own
    backend = LocalBackend(tmp_path / "store", pack_from=1)
    first, other, second = (
        make_session("twice"),
        make_session("other"),
        build_session("twice", tags={"v": "2"}),
    )

    async def run() -> None:
        async with backend.transaction() as transaction:
            await transaction.put([first, other])
            await transaction.put([second], replace=True)
            await transaction.put([second], replace=True)

    run_sync(run)
    assert pack_contents(backend) == [{"other"}, {"twice"}]
    assert Storage(backend).get_session_by_id("twice") == second


def test_a_corrupt_pack_line_names_the_pack_and_line(
    backend: LocalBackend, make_session: MakeSession
) -> None:
    store = Storage(backend)
    store.save_sessions([make_session(f"s{n}") for n in range(3)])
    (pack,) = backend.shelf.names()
    path = backend.packs_dir / pack
    data = path.read_bytes()
    index = packs.read_index(path)
    second = index[session_file_name("s1")]
    line = data[second.offset : second.offset + second.length]
    path.write_bytes(data.replace(line, line.replace(b'"sut_name":"', b'"sut_name":!', 1)))
    fresh = LocalBackend(backend.root)  # another process: no index kept
    with pytest.raises(CorruptStoreError, match=f"^{path}:2: corrupt store file"):
        Storage(fresh).load_sessions()
    with pytest.raises(CorruptStoreError, match=f"^{path}:2:"):
        Storage(fresh).get_session_by_id("s1")
    assert Storage(fresh).get_session_by_id("s2") is not None


def test_a_pack_line_under_another_sessions_name_is_corrupt(
    backend: LocalBackend, make_session: MakeSession
) -> None:
    path = backend.packs_dir / packs.new_pack_name()
    path.parent.mkdir(parents=True)
    writer = packs.PackWriter(path)
    original = make_session("original")
    writer.append([(session_file_name("alias"), encode_file(original).strip(), key_of(original))])
    writer.finish(durable=False)
    with pytest.raises(CorruptStoreError, match=f"{path}:1: .*session_id"):
        Storage(backend).load_sessions()


def test_stray_files_among_packs_are_ignored(backend: LocalBackend, make_session: MakeSession) -> None:
    sessions = [make_session(f"s{n}") for n in range(3)]
    Storage(backend).save_sessions(sessions)
    (backend.packs_dir / "notes.txt").write_text("hello")
    (backend.packs_dir / (packs.new_pack_name() + ".tmp")).write_text("torn")
    assert Storage(backend).load_sessions() == sessions


def decodes_counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the sessions the local store decodes from now on."""
    decoded: list[str] = []
    real = decode_stored

    def counted(source: str, data: bytes, name: str, line: int) -> TestSession:
        session = real(source, data, name, line)
        decoded.append(session.session_id)
        return session

    monkeypatch.setattr("pytest_insight.storage.local.pack_shelf.decode_stored", counted)
    return decoded


def test_a_scope_decodes_only_the_packed_sessions_inside_it(
    backend: LocalBackend, make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Storage(backend)
    sessions = [make_session(f"s{n}", sut_name=f"sut-{n % 3}") for n in range(9)]
    store.save_sessions(sessions)
    decoded = decodes_counted(monkeypatch)
    since = sessions[4].session_start_time
    found = store.load_sessions(Scope(sut_name="sut-1", since=since))
    assert found == [s for s in sessions if s.sut_name == "sut-1" and s.session_start_time >= since]
    assert sorted(decoded) == sorted(s.session_id for s in found)


def test_an_export_sends_canonical_packed_lines_undecoded(
    backend: LocalBackend, make_session: MakeSession, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = Storage(backend)
    sessions = [make_session(f"s{n}", sut_name=f"sut-{n % 2}") for n in range(6)]
    store.save_sessions(sessions)
    foreign = make_session(
        "foreign", sut_name="sut-1"
    )  # imported as another producer wrote it: keys unsorted
    line = json.dumps(foreign.to_dict(), separators=(",", ":")).encode()
    others = [make_session("x", sut_name="sut-0"), make_session("y", sut_name="sut-0")]

    async def put() -> None:
        async with backend.transaction() as transaction:
            await transaction.put([foreign, *others], lines={"foreign": line})

    run_sync(put)
    decoded = decodes_counted(monkeypatch)
    assert store.export_sessions(tmp_path / "out.jsonl.gz", sut_name="sut-1") == 4
    assert decoded == ["foreign"]  # the one line not canonical: decoded and encoded again
    exported = gzip.decompress((tmp_path / "out.jsonl.gz").read_bytes()).splitlines()
    assert sorted(exported) == sorted(encode_session(s).line for s in [*sessions[1::2], foreign])


def test_a_packed_line_that_is_not_the_session_its_index_names_is_corrupt(
    backend: LocalBackend, make_session: MakeSession
) -> None:
    session = make_session("s1")
    path = backend.packs_dir / packs.new_pack_name()
    path.parent.mkdir(parents=True)
    writer = packs.PackWriter(path)
    other_sut = packs.Key("s1", "another-sut", session.session_start_time)
    writer.append([(session_file_name("s1"), encode_file(session).strip(), other_sut)])
    writer.finish(durable=False)
    with pytest.raises(CorruptStoreError, match=f"^{path}:1: .*index says another id, SUT or start time"):
        Storage(backend).load_sessions()
    assert Storage(backend).load_sessions(Scope(sut_name=session.sut_name)) == []  # narrowed by the index


# -- killed and failing writers ---------------------------------------------------------


def test_a_staged_pack_without_marker_is_discarded(backend: LocalBackend, make_session: MakeSession) -> None:
    store = Storage(backend)
    store.save_session(make_session("before"))
    staging = backend.staging_dir / "dead"
    staging.mkdir(parents=True)
    writer = packs.PackWriter(staging / packs.new_pack_name())
    writer.append([(session_file_name("torn"), b'{"torn"', key_of(make_session("torn")))])
    writer.close()  # killed before its index was written
    assert [s.session_id for s in store.load_sessions()] == ["before"]
    store.save_session(make_session("next"))
    assert not staging.exists()


def test_a_committed_pack_plan_is_rolled_forward(backend: LocalBackend, make_session: MakeSession) -> None:
    store = Storage(backend)
    store.save_sessions([make_session(f"old{n}") for n in range(3)])
    (old_pack,) = backend.shelf.names()
    staging = backend.staging_dir / "committed"
    staging.mkdir(parents=True)
    new_pack = packs.new_pack_name()
    writer = packs.PackWriter(staging / new_pack)
    added = make_session("added")
    writer.append([(session_file_name("added"), encode_file(added).strip(), key_of(added))])
    writer.finish(durable=False)
    plan = {"put": [], "delete": [], "packs": [new_pack], "drop": [old_pack]}
    (staging / "COMMIT").write_text(json.dumps(plan))
    assert store.load_sessions() == [added]  # a reader rolls the commit forward first
    assert backend.shelf.names() == [new_pack]
    assert not staging.exists()


@pytest.mark.parametrize(
    "plan",
    [{"put": [], "delete": [], "packs": ["../../x.pack"]}, {"put": [], "delete": [], "drop": "all"}],
)
def test_a_marker_naming_no_pack_stops_writers(
    backend: LocalBackend, make_session: MakeSession, plan: dict[str, object]
) -> None:
    staging = backend.staging_dir / "odd"
    staging.mkdir(parents=True)
    (staging / "COMMIT").write_text(json.dumps(plan))
    with pytest.raises(CorruptStoreError, match="COMMIT"):
        Storage(backend).save_session(make_session())


@pytest.mark.parametrize("failing_call", [1, 2, 3, 4])
def test_a_pack_rewrite_that_fails_part_way_is_all_or_nothing(
    backend: LocalBackend, make_session: MakeSession, monkeypatch: pytest.MonkeyPatch, failing_call: int
) -> None:
    before = [make_session(f"s{n}") for n in range(4)]
    Storage(backend).save_sessions(before)
    after = [build_session(f"s{n}", tags={"v": "2"}) for n in (0, 1, 2)]
    calls: list[str] = []
    real_replace, real_unlink = os.replace, Path.unlink

    def failing(call: str) -> None:
        calls.append(call)
        if len(calls) == failing_call:  # the marker, the new pack, the survivors' pack, the old pack
            raise OSError(28, "No space left on device", call)

    def replace_(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        failing(str(dst))
        real_replace(src, dst)

    def unlink_(path: Path, missing_ok: bool = False) -> None:
        if packs.is_pack_file(path.name):
            failing(str(path))
        real_unlink(path, missing_ok)

    monkeypatch.setattr(os, "replace", replace_)
    monkeypatch.setattr(Path, "unlink", unlink_)
    with pytest.raises(StorageError, match="No space left"):
        replace(backend, after)
    monkeypatch.undo()
    assert len(calls) == failing_call
    expected = {s.session_id: s for s in before} | (
        {} if failing_call == 1 else {s.session_id: s for s in after}
    )
    store = Storage(LocalBackend(backend.root))
    assert {s.session_id: s for s in store.load_sessions()} == expected  # a reader finishes a commit first
    store.save_session(make_session("next"))  # a writer discards a commit that never was
    assert list(backend.staging_dir.iterdir()) == []
    assert sum(len(ids) for ids in pack_contents(backend)) == 4


# -- readers racing a writer --------------------------------------------------------------

REWRITER = """
import sys
from pytest_insight.core.storage import run_sync
from pytest_insight.storage.local.store import LocalBackend
from tests.conftest import build_session

backend, rounds = LocalBackend(sys.argv[1], durable=False, pack_from=int(sys.argv[2])), int(sys.argv[3])

async def churn(number):
    # The churn sessions change; one stable session is put again as it is, so that
    # every commit also takes a session out of the pack that holds the stable ones.
    sessions = [build_session(f"churn{n}", tags={"round": str(number)}) for n in range(4)]
    async with backend.transaction() as transaction:
        await transaction.put([*sessions, build_session(f"stable{number % 30}")], replace=True)

for number in range(rounds):
    run_sync(churn, number)
"""


@pytest.mark.parametrize("pack_from", [2, 6], ids=["churn-packed", "churn-in-files"])
def test_readers_racing_pack_rewrites_see_every_untouched_session_once(
    tmp_path: Path, pack_from: int
) -> None:
    backend = LocalBackend(tmp_path / "store", durable=False, pack_from=2)
    stable = [build_session(f"stable{n}") for n in range(30)]
    Storage(backend).save_sessions([*stable, *(build_session(f"churn{n}") for n in range(4))])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    writer = subprocess.Popen(
        [sys.executable, "-c", REWRITER, str(backend.root), str(pack_from), "500"], env=env
    )
    reader = Storage(LocalBackend(backend.root))
    scans = 0
    try:
        while writer.poll() is None or scans < 3:
            ids = [session.session_id for session in reader.load_sessions()]
            assert len(ids) == len(set(ids))
            assert {session.session_id for session in stable} <= set(ids)
            assert reader.get_session_by_id("stable7") == stable[7]
            scans += 1
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == 0
