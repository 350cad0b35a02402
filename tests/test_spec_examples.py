"""Every example of spec/simple-file-exchange.md, run as written, between local stores in temporary homes.

Each "machine" is a PYTEST_INSIGHT_HOME of its own; ``get_storage_instance()``
opens that machine's default JSON store. The code inside the ``# --- spec``
markers is copied from the spec unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_insight.core.storage import JSONStorage, Storage, get_storage_instance
from pytest_insight.model.sessions import TestOutcome, TestSession

Make = Callable[..., TestSession]
NOW = datetime.now(UTC).replace(microsecond=0)


class Machines:
    """Switches PYTEST_INSIGHT_HOME between machines, each with its own default store."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.monkeypatch = monkeypatch

    def use(self, name: str) -> Storage:
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True)
        self.monkeypatch.setenv("PYTEST_INSIGHT_HOME", str(home))
        storage = get_storage_instance()
        assert isinstance(storage, JSONStorage)
        return storage


@pytest.fixture
def machines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Machines:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # the spec's relative file names land here
    return Machines(tmp_path / "homes", monkeypatch)


def recorded(make_session: Make, sut: str, days_ago: float, *, failing: bool = True) -> TestSession:
    session = make_session(sut_name=sut, start=NOW - timedelta(days=days_ago))
    if not failing:
        for result in session.test_results:
            if result.outcome is TestOutcome.FAILED:
                result.outcome = TestOutcome.PASSED
    return session


@pytest.fixture
def history(make_session: Make) -> list[TestSession]:
    """my-service: 2 sessions this week, 1 three weeks ago, 1 in 2024; other-service: 1 this week, passing."""
    return [
        recorded(make_session, "my-service", 1),
        recorded(make_session, "my-service", 3),
        recorded(make_session, "my-service", 21),
        make_session(sut_name="legacy-service", start=datetime(2024, 6, 1, 12, tzinfo=UTC)),
        recorded(make_session, "other-service", 2, failing=False),
    ]


def ids(storage: Storage) -> set[str]:
    return {session.session_id for session in storage.load_sessions()}


def test_exporting_sessions(
    machines: Machines, history: list[TestSession], capsys: pytest.CaptureFixture[str]
) -> None:
    machines.use("dev").save_sessions(history)
    Path("path/to").mkdir(parents=True)
    # --- spec: Exporting Sessions
    from pytest_insight.core.storage import get_storage_instance

    # Get the storage instance
    storage = get_storage_instance()

    # Export all sessions
    export_path = "path/to/export.json"
    count = storage.export_sessions(export_path)
    print(f"Exported {count} sessions")

    # Export sessions from the last 7 days
    count = storage.export_sessions(export_path, days=7)
    print(f"Exported {count} sessions from the last 7 days")

    # Export sessions for a specific SUT
    count = storage.export_sessions(export_path, sut_name="my-service")
    print(f"Exported {count} sessions for my-service")

    # Export sessions with combined filters
    count = storage.export_sessions(export_path, days=7, sut_name="my-service")
    print(f"Exported {count} sessions for my-service from the last 7 days")
    # --- end spec
    assert capsys.readouterr().out.splitlines() == [
        "Exported 5 sessions",
        "Exported 3 sessions from the last 7 days",
        "Exported 3 sessions for my-service",
        "Exported 2 sessions for my-service from the last 7 days",
    ]
    assert Path(export_path).is_file()


def test_importing_sessions(
    machines: Machines, history: list[TestSession], capsys: pytest.CaptureFixture[str]
) -> None:
    Path("path/to").mkdir(parents=True)
    machines.use("teammate").save_sessions(history)
    machines.use("teammate").export_sessions("path/to/import.json")
    local = machines.use("dev")
    local.save_session(history[0])
    # --- spec: Importing Sessions
    from pytest_insight.core.storage import get_storage_instance

    # Get the storage instance
    storage = get_storage_instance()

    # Import sessions from a file using default strategy (skip_existing)
    import_path = "path/to/import.json"
    stats = storage.import_sessions(import_path)
    print(
        f"Imported {stats['added']} sessions, updated {stats['updated']} sessions, skipped {stats['skipped']} sessions"  # noqa: E501 (the spec line as written)
    )

    # Import sessions with replace existing strategy
    print(f"Imported {stats['imported']} sessions, replacing any existing ones")

    # Import sessions with keep_both strategy
    stats = storage.import_sessions(import_path, merge_strategy="keep_both")
    print(f"Imported {stats['imported']} sessions, keeping both versions of duplicates")
    # --- end spec
    assert capsys.readouterr().out.splitlines() == [
        "Imported 4 sessions, updated 0 sessions, skipped 1 sessions",
        "Imported 4 sessions, replacing any existing ones",
        "Imported 0 sessions, keeping both versions of duplicates",
    ]
    assert ids(local) == {session.session_id for session in history}


def test_selectively_clearing_sessions(
    machines: Machines, history: list[TestSession], capsys: pytest.CaptureFixture[str]
) -> None:
    machines.use("dev").save_sessions(history)
    # --- spec: Selectively Clearing Sessions
    from pytest_insight.core.query import Query
    from pytest_insight.core.storage import get_storage_instance

    # Get the storage instance
    storage = get_storage_instance()

    # Clear all sessions
    count = storage.clear_sessions()
    print(f"Cleared {count} sessions")

    # Selectively clear sessions using Query
    query = Query(storage)
    sessions_to_clear = query.for_sut("my-service").in_last_days(30).execute()
    count = storage.clear_sessions(sessions_to_clear)
    print(f"Cleared {count} sessions for my-service from the last 30 days")
    # --- end spec
    assert capsys.readouterr().out.splitlines() == [
        "Cleared 5 sessions",
        "Cleared 0 sessions for my-service from the last 30 days",
    ]


def test_selective_clear_with_a_query_removes_exactly_its_sessions(
    machines: Machines, history: list[TestSession]
) -> None:
    from pytest_insight.core.query import Query

    storage = machines.use("dev")
    storage.save_sessions(history)
    sessions_to_clear = Query(storage).for_sut("my-service").in_last_days(30).execute()
    assert storage.clear_sessions(sessions_to_clear) == 3
    assert ids(storage) == {history[3].session_id, history[4].session_id}


def test_sharing_test_results_between_team_members(machines: Machines, history: list[TestSession]) -> None:
    storage = machines.use("developer-a")
    storage.save_sessions(history)
    # --- spec: 1. Developer A runs tests and exports the sessions
    storage.export_sessions("team_sessions.json")
    # --- end spec
    storage = machines.use("developer-b")
    # --- spec: 3. Developer B imports the sessions
    storage.import_sessions("team_sessions.json")
    # --- end spec
    assert [s.to_dict() for s in storage.load_sessions()] == [
        s.to_dict() for s in machines.use("developer-a").load_sessions()
    ]
    assert storage.import_sessions("team_sessions.json")["skipped"] == len(history)


def test_backing_up_test_data(machines: Machines, history: list[TestSession]) -> None:
    storage = machines.use("dev")
    storage.save_sessions(history)
    before = [s.to_dict() for s in storage.load_sessions()]
    # --- spec: 1. Export all sessions to a backup file
    storage.export_sessions("backup_sessions.json")
    # --- end spec
    storage.clear_sessions()
    assert storage.load_sessions() == []
    # --- spec: 2. If needed, restore from backup
    storage.import_sessions("backup_sessions.json")
    # --- end spec
    assert [s.to_dict() for s in storage.load_sessions()] == before
    restored_elsewhere = machines.use("new-laptop")
    restored_elsewhere.import_sessions("backup_sessions.json")
    assert [s.to_dict() for s in restored_elsewhere.load_sessions()] == before


def test_combining_test_data_from_multiple_sources(
    machines: Machines, history: list[TestSession], make_session: Make
) -> None:
    machines.use("machine1").save_sessions(history[:3])
    machines.use("machine2").save_sessions([*history[2:], recorded(make_session, "my-service", 0.5)])
    # --- spec: 1. Export sessions from each source
    # On machine 1
    storage = machines.use("machine1")
    storage.export_sessions("machine1_sessions.json")

    # On machine 2
    storage = machines.use("machine2")
    storage.export_sessions("machine2_sessions.json")
    # --- end spec
    storage = machines.use("central")
    # --- spec: 2. Import both files to a central location
    # On central machine
    first = storage.import_sessions("machine1_sessions.json")
    second = storage.import_sessions("machine2_sessions.json")
    # --- end spec
    assert (first["added"], first["skipped"]) == (3, 0)
    assert (second["added"], second["skipped"]) == (3, 1)  # history[2] was on both machines
    assert len(ids(storage)) == 6


def test_query_selects_what_to_export(machines: Machines, history: list[TestSession]) -> None:
    machines.use("dev").save_sessions(history)
    # --- spec: Integration with Query System, 1.
    from pytest_insight.core.query import Query
    from pytest_insight.core.storage import get_storage_instance

    storage = get_storage_instance()
    query = Query(storage)

    # Find sessions with failing tests
    failing_sessions = query.filter_by_test().with_outcome("failed").apply().execute()

    # You can then use the SUT names from these sessions to export
    sut_names = {session.sut_name for session in failing_sessions}
    for sut_name in sut_names:
        storage.export_sessions(f"{sut_name}_failing.json", sut_name=sut_name)
    # --- end spec
    assert sut_names == {"my-service", "legacy-service"}
    assert sorted(path.name for path in Path().glob("*_failing.json")) == [
        "legacy-service_failing.json",
        "my-service_failing.json",
    ]
    target = machines.use("reviewer")
    assert target.import_sessions("my-service_failing.json")["added"] == 3


def test_query_selects_what_to_clear(machines: Machines, history: list[TestSession]) -> None:
    machines.use("dev").save_sessions(history)
    from pytest_insight.core.query import Query
    from pytest_insight.core.storage import get_storage_instance

    storage = get_storage_instance()
    query = Query(storage)
    # --- spec: Integration with Query System, 2.
    # Select old sessions from a specific SUT
    old_sessions = query.for_sut("legacy-service").before_date("2025-01-01").execute()

    # Clear only those sessions
    storage.clear_sessions(old_sessions)
    # --- end spec
    assert ids(storage) == {s.session_id for s in history if s.sut_name != "legacy-service"}


def test_query_result_can_be_exported_directly(machines: Machines, history: list[TestSession]) -> None:
    from pytest_insight.core.query import Query

    storage = machines.use("dev")
    storage.save_sessions(history)
    chosen = Query(storage).for_sut("my-service").in_last_days(7).execute()
    assert storage.export_sessions("chosen.jsonl.gz", sessions=chosen) == 2
    assert machines.use("other").import_sessions("chosen.jsonl.gz")["added"] == 2
