"""The newest N sessions of a local store: the same answer as sorting every session, decoding only N."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from pytest_insight.core.storage import JSONStorage
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.local import newest
from pytest_insight.storage.local.store import LocalBackend
from pytest_insight.storage.scope import Scope
from tests.conftest import BASE_TIME, build_session


def sessions(count: int, prefix: str, sut: str, offset: int = 0) -> list[TestSession]:
    return [
        build_session(
            f"{prefix}-{n:03d}", sut_name=sut, start=BASE_TIME + timedelta(minutes=offset + 7 * n), tests=2
        )
        for n in range(count)
    ]


@pytest.fixture
def store(tmp_path: Path) -> JSONStorage:
    """Sessions in packs (batches of 32 or more) and in files of their own, of two SUTs, interleaved."""
    storage = JSONStorage(tmp_path / "store")
    storage.save_sessions(sessions(40, "packed-api", "api"))  # one pack
    storage.save_sessions(sessions(35, "packed-web", "web", offset=3))  # another
    for session in sessions(12, "loose-api", "api", offset=5):  # one file each, as the plugin saves
        storage.save_session(session)
    return storage


@pytest.mark.parametrize("limit", [1, 5, 50, 500])
@pytest.mark.parametrize(
    "scope",
    [
        Scope(),
        Scope(sut_name="api"),
        Scope(since=BASE_TIME + timedelta(hours=2)),
        Scope(until=BASE_TIME + timedelta(hours=1)),
    ],
    ids=["all", "sut", "since", "until"],
)
def test_newest_is_the_tail_of_every_session_in_order(store: JSONStorage, limit: int, scope: Scope) -> None:
    expected = list(reversed(store.load_sessions(scope)))[:limit]
    assert store.newest_sessions(limit, scope) == expected


def test_only_the_newest_are_decoded(store: JSONStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    for session in sessions(3, "latest", "api", offset=10_000):  # the newest are files of their own
        store.save_session(session)
    decoded: list[str] = []
    read_files = LocalBackend.read_files

    def counting(paths: list[Path]) -> list[TestSession]:
        found = read_files(paths)
        decoded.extend(session.session_id for session in found)
        return found

    monkeypatch.setattr(LocalBackend, "read_files", staticmethod(counting))
    monkeypatch.setattr(
        "pytest_insight.storage.local.pack_shelf._decode",
        lambda *args: pytest.fail("a packed session was decoded"),
    )
    newest = store.newest_sessions(3)
    assert [session.session_id for session in newest] == ["latest-002", "latest-001", "latest-000"]
    assert sorted(decoded) == ["latest-000", "latest-001", "latest-002"]  # the other 87 were not decoded


def test_a_store_moved_meanwhile_falls_back_to_the_full_scan(
    store: JSONStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def moved(*args: object) -> list[TestSession]:
        raise newest.Moved

    expected = list(reversed(store.load_sessions()))[:4]
    monkeypatch.setattr(newest, "newest", moved)
    assert store.newest_sessions(4) == expected


def test_the_cli_lists_the_newest_with_limit(
    store: JSONStorage, insight_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_insight.cli.main import main

    assert main(["sessions", "--limit", "2", "--sut", "api", "--json", "--storage", store.uri]) == 0
    listed = [entry["session_id"] for entry in json.loads(capsys.readouterr().out)]
    assert listed == [s.session_id for s in reversed(store.load_sessions(Scope(sut_name="api")))][:2]
