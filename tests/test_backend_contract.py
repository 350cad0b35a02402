"""The contract every storage backend keeps, run once per backend.

To cover another backend, add a fixture named ``<name>_storage`` (in
conftest.py) returning an empty :class:`Storage`, and add ``<name>`` to
``BACKENDS``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from pytest_insight.core.storage import Storage, run_sync
from pytest_insight.errors import SessionExistsError
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.scope import Scope
from tests.conftest import BASE_TIME, MakeSession

BACKENDS = ["memory", "local", "packed", "s3_memory", "moto", "seaweedfs"]


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest) -> Storage:
    """An empty storage of each backend in turn."""
    result: Storage = request.getfixturevalue(f"{request.param}_storage")
    assert result.load_sessions() == []
    return result


def test_save_and_load_round_trip(storage: Storage, make_session: MakeSession) -> None:
    sessions = [make_session() for _ in range(5)]
    for session in reversed(sessions):
        storage.save_session(session)
    assert storage.load_sessions() == sessions  # oldest first, every field equal


def test_save_sessions_batch_round_trip(storage: Storage, make_session: MakeSession) -> None:
    sessions = [make_session(reruns=False, tests=0), make_session(tags={}), make_session(tests=9)]
    storage.save_sessions(sessions)
    assert storage.load_sessions() == sessions


def test_get_session_by_id(storage: Storage, make_session: MakeSession) -> None:
    wanted, other = make_session("wanted"), make_session("other")
    storage.save_sessions([wanted, other])
    assert storage.get_session_by_id("wanted") == wanted
    assert storage.get_session_by_id("missing") is None


def test_loaded_sessions_are_copies(storage: Storage, make_session: MakeSession) -> None:
    storage.save_session(make_session("one"))
    loaded = storage.get_session_by_id("one")
    assert loaded is not None
    loaded.session_tags["mutated"] = "yes"
    assert "mutated" not in storage.load_sessions()[0].session_tags


def test_get_last_session(storage: Storage, make_session: MakeSession) -> None:
    assert storage.get_last_session() is None
    late = make_session("late", start=BASE_TIME + timedelta(days=3))
    storage.save_sessions([make_session("early", start=BASE_TIME), late, make_session("mid")])
    assert storage.get_last_session() == late


def test_duplicate_save_is_refused_and_writes_nothing(storage: Storage, make_session: MakeSession) -> None:
    original = make_session("dup", sut_name="first")
    storage.save_session(original)
    with pytest.raises(SessionExistsError, match="'dup'"):
        storage.save_sessions([make_session("fresh"), make_session("dup", sut_name="second")])
    assert storage.load_sessions() == [original]


def test_repeated_id_in_one_batch_is_refused(storage: Storage, make_session: MakeSession) -> None:
    with pytest.raises(SessionExistsError):
        storage.save_sessions([make_session("twice"), make_session("twice")])
    assert storage.load_sessions() == []


def test_replace_overwrites_stored_session(storage: Storage, make_session: MakeSession) -> None:
    storage.save_session(make_session("same", sut_name="old"))
    newer = make_session("same", sut_name="new")

    async def replace() -> None:
        async with storage.backend.transaction() as transaction:
            await transaction.put([newer], replace=True)

    run_sync(replace)
    assert storage.load_sessions() == [newer]


def test_delete_some_and_all_return_counts(storage: Storage, make_session: MakeSession) -> None:
    storage.save_sessions([make_session(f"s{n}") for n in range(4)])

    async def delete(ids: list[str] | None) -> int:
        async with storage.backend.transaction() as transaction:
            return await transaction.delete(ids)

    assert run_sync(delete, ["s1", "s3", "never-stored"]) == 2
    assert [s.session_id for s in storage.load_sessions()] == ["s0", "s2"]
    assert run_sync(delete, None) == 2
    assert storage.load_sessions() == []
    assert run_sync(delete, None) == 0


def test_put_after_delete_in_one_transaction(storage: Storage, make_session: MakeSession) -> None:
    storage.save_sessions([make_session("keep"), make_session("swap", sut_name="before")])
    after = make_session("swap", sut_name="after")

    async def swap() -> None:
        async with storage.backend.transaction() as transaction:
            assert await transaction.delete(["swap"]) == 1
            await transaction.put([after])

    run_sync(swap)
    assert {s.session_id: s.sut_name for s in storage.load_sessions()} == {
        "keep": "checkout-api",
        "swap": "after",
    }


def test_failing_transaction_commits_nothing(storage: Storage, make_session: MakeSession) -> None:
    storage.save_sessions([make_session("a"), make_session("b")])
    before = storage.load_sessions()

    async def doomed() -> None:
        async with storage.backend.transaction() as transaction:
            await transaction.put([make_session("c"), make_session("d")])
            assert await transaction.delete(["a"]) == 1
            await transaction.put([make_session("b")])  # already stored: raises

    with pytest.raises(SessionExistsError, match="'b'"):
        run_sync(doomed)
    assert storage.load_sessions() == before


def test_lookup_sees_committed_sessions_only(storage: Storage, make_session: MakeSession) -> None:
    stored = make_session("stored")
    storage.save_session(stored)

    async def look() -> dict[str, TestSession]:
        async with storage.backend.transaction() as transaction:
            await transaction.put([make_session("staged")])
            return await transaction.lookup(["stored", "staged", "absent"])

    assert run_sync(look) == {"stored": stored}


def test_stored_ids_sees_committed_sessions_only(storage: Storage, make_session: MakeSession) -> None:
    storage.save_sessions([make_session("stored"), make_session("deleted")])

    async def look() -> set[str]:
        async with storage.backend.transaction() as transaction:
            await transaction.put([make_session("staged")])
            await transaction.delete(["deleted"])
            return await transaction.stored_ids(["stored", "deleted", "staged", "absent"])

    assert run_sync(look) == {"stored", "deleted"}  # like lookup: the transaction's own changes are unseen
    assert {s.session_id for s in storage.load_sessions()} == {"stored", "staged"}


def test_load_sessions_by_scope(storage: Storage, make_session: MakeSession) -> None:
    day = timedelta(days=1)
    api_old = make_session("api-old", sut_name="api", start=BASE_TIME)
    api_new = make_session("api-new", sut_name="api", start=BASE_TIME + 2 * day)
    web_new = make_session("web-new", sut_name="web", start=BASE_TIME + 2 * day)
    storage.save_sessions([web_new, api_new, api_old])
    assert storage.load_sessions(Scope(sut_name="api")) == [api_old, api_new]
    assert storage.load_sessions(Scope(since=BASE_TIME + day)) == [api_new, web_new]
    assert storage.load_sessions(Scope(until=BASE_TIME + 2 * day)) == [api_old]
    assert storage.load_sessions(Scope(sut_name="web", until=BASE_TIME + day)) == []


def test_put_of_an_id_already_staged_is_refused_alone(storage: Storage, make_session: MakeSession) -> None:
    first = make_session("first")

    async def put_twice() -> None:
        async with storage.backend.transaction() as transaction:
            await transaction.put([first])
            with pytest.raises(SessionExistsError, match="'first'"):
                await transaction.put([make_session("second"), make_session("first", sut_name="again")])

    run_sync(put_twice)
    assert storage.load_sessions() == [first]  # the refused call staged nothing; the first call committed
