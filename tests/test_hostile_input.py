"""Hostile and broken input: every case of the corpus in tests/data/hostile, imported into a non-empty store.

Each case must give one clear error per bad part (naming the file, the line
and the field), import the good sessions next to the bad ones, write nothing
outside the store, and leave every stored session as it was. The cases and
their expectations live in ``tests/data/hostile/make_corpus.py``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sys
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_insight.core.storage import InMemoryStorage, JSONStorage
from pytest_insight.errors import InvalidDataError
from pytest_insight.exchange.operations import ImportStats
from pytest_insight.format.bundle import encode_bundle
from pytest_insight.model.sessions import TestSession
from tests.conftest import BASE_TIME, build_session

CORPUS = Path(__file__).parent / "data" / "hostile"


def _load_corpus() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hostile_corpus", CORPUS / "make_corpus.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus()
CASES: list[Any] = corpus.CASES
FILE_BUNDLE_CASES = [case for case in CASES if case.name.endswith(".gz") and not case.generated]


def snapshot(root: Path, *, skip: Path | None = None) -> dict[str, str]:
    """Every entry under ``root`` (except ``skip``): relative path -> content hash, "dir" or link target."""
    entries: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if skip is not None and (path == skip or path.is_relative_to(skip)):
            continue
        name = path.relative_to(root).as_posix()
        if path.is_symlink():
            entries[name] = f"-> {path.readlink()}"
        elif path.is_dir():
            entries[name] = "dir"
        else:
            entries[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


def stored_sessions() -> list[TestSession]:
    return [
        build_session(sid, start=BASE_TIME + timedelta(minutes=index), tests=3)
        for index, sid in enumerate(corpus.STORED_IDS)
    ]


def by_id(storage: JSONStorage | InMemoryStorage) -> dict[str, dict[str, Any]]:
    return {session.session_id: session.to_dict() for session in storage.load_sessions()}


def place(case: Any, target: Path) -> None:
    """Put the case at ``target``: copied from the corpus, or built there when generated."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if case.generated:
        case.build(target)
    elif case.is_dir:
        shutil.copytree(CORPUS / case.name, target, symlinks=True)
    else:
        shutil.copyfile(CORPUS / case.name, target)


def check_messages(result: ImportStats, errors: tuple[Any, ...], source: Path) -> None:
    messages = result["error_messages"]
    assert len(messages) == len(errors), messages
    for message, expected in zip(messages, errors, strict=True):
        path = source / expected.file if expected.file else source
        where = f"{path}:{expected.line}: " if expected.line is not None else f"{path}: "
        assert message.startswith(where), (message, where)
        if expected.field is not None:
            assert message[len(where) :].startswith(f"{expected.field}: "), message
        assert expected.reason in message, message
        assert not set(message) & {"\n", "\r", "\x00"}, repr(message)
        assert len(message) < 600, message[:200]  # a 50 MB line is named, not echoed


def import_hostile(case: Any, world: Path, source: Path, home: Path) -> ImportStats:
    """Import ``source`` into a store holding sessions; check nothing outside the store or stored changes."""
    store_dir = world / "store"
    storage = JSONStorage(store_dir)
    storage.save_sessions(stored_sessions())
    stored = by_id(storage)
    tree, home_tree = snapshot(world, skip=store_dir), snapshot(home)

    refused: InvalidDataError | None = None
    try:
        result = storage.import_sessions(source)
    except InvalidDataError as exc:
        refused = exc
    if refused is not None:
        # a file that is no export at all is refused whole (exit code 3), not counted as one bad record
        assert source.is_file(), refused
        assert (len(case.errors), case.imported) == (1, frozenset()), refused
        result = ImportStats(
            total=1, imported=0, added=0, updated=0, skipped=0, errors=1, error_messages=[str(refused)]
        )

    assert snapshot(world, skip=store_dir) == tree, "something outside the store was written"
    assert snapshot(home) == home_tree
    after = by_id(storage)
    assert {sid: after[sid] for sid in stored} == stored, "a stored session changed"
    assert set(after) - set(stored) == case.imported
    assert result["total"] == result["imported"] + result["skipped"] + result["errors"]
    assert result["added"] == result["imported"] == len(case.imported)
    assert result["updated"] == 0
    assert result["skipped"] == case.skipped
    return result


def test_the_corpus_has_every_case_and_nothing_else() -> None:
    committed = {case.name for case in CASES if not case.generated}
    present = {path.name for path in CORPUS.iterdir()} - {"make_corpus.py", "__pycache__"}
    assert present == committed
    assert len(CASES) >= 30
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_case(case: Any, tmp_path: Path, insight_home: Path) -> None:
    world = tmp_path / "world"
    source = world / "import" / case.name
    place(case, source)
    result = import_hostile(case, world, source, insight_home)
    check_messages(result, case.errors, source)


@pytest.mark.parametrize("case", FILE_BUNDLE_CASES, ids=[case.name for case in FILE_BUNDLE_CASES])
def test_hostile_bundle_next_to_a_good_one_in_a_directory(
    case: Any, tmp_path: Path, insight_home: Path
) -> None:
    world = tmp_path / "world"
    folder = world / "import"
    place(case, folder / "a" / case.name)
    neighbour = build_session("neighbour", sut_name="other-api", start=BASE_TIME + timedelta(days=3))
    (folder / "b").mkdir()
    (folder / "b" / "neighbour.jsonl.gz").write_bytes(encode_bundle([neighbour]).data)

    class WithNeighbour:
        imported = case.imported | {"neighbour"}
        skipped = case.skipped

    result = import_hostile(WithNeighbour, world, folder, insight_home)
    check_messages(result, case.errors, folder / "a" / case.name)


def test_first_copy_of_a_duplicate_id_wins(tmp_path: Path) -> None:
    case = next(case for case in CASES if case.name == "duplicate_ids.jsonl.gz")
    source = tmp_path / case.name
    place(case, source)
    storage = InMemoryStorage()
    result = storage.import_sessions(source)
    assert (result["added"], result["skipped"], result["errors"]) == (2, 1, 0)
    first = storage.get_session_by_id("duplicate_ids-good-1")
    assert first is not None
    assert first.session_tags == {"branch": "main"}


def test_a_filtered_import_skips_a_misplaced_bundle_by_its_path(tmp_path: Path) -> None:
    """The partition in the path is what narrows a filtered import: documented, checked here."""
    case = next(case for case in CASES if case.name == "dir_partition_sut_mismatch")
    source = tmp_path / case.name
    place(case, source)
    storage = InMemoryStorage()
    result = storage.import_sessions(source, sut_name="checkout-api")
    assert (result["added"], result["errors"]) == (1, 0)  # the misplaced bundle is not even read
    assert [session.session_id for session in storage.load_sessions()] == [
        "dir_partition_sut_mismatch-good-1"
    ]
    result = storage.import_sessions(source, sut_name="elsewhere")
    assert (result["added"], result["errors"]) == (1, 1)  # read: its checkout-api session is an error
    assert result["error_messages"][0].endswith(
        "(session 'dir_partition_sut_mismatch-misplaced' not imported)"
    )


# -- export of hostile names ---------------------------------------------------------

HOSTILE_NAMES = [
    "../x",
    "../../../../etc",
    "a/b",
    "/abs/olute",
    "..",
    ".",
    ".hidden",
    "a\\..\\b",
    "%2e%2e%2f",
    "sut=a/date=2024-01-01",
    "v1/../..",
    " leading and trailing ",
    "CON",
    "チェック ✓ ü",
    "é" * 256,
    "s" * 256,
    "API",
    "api",
]


@pytest.mark.parametrize("kind", ["directory", "bundle", "document"])
def test_export_of_hostile_names_stays_inside_and_round_trips(
    tmp_path: Path, insight_home: Path, kind: str
) -> None:
    sessions = [
        build_session(
            f"../id/{index}" if index % 2 else f"id-{index}",
            sut_name=name,
            start=BASE_TIME + timedelta(days=index % 3, minutes=index),
            tests=2,
        )
        for index, name in enumerate(HOSTILE_NAMES)
    ]
    world = tmp_path / "world"
    export_dir = world / "out" / "inner"
    target = {
        "directory": export_dir,
        "bundle": export_dir / "all.jsonl.gz",
        "document": export_dir / "all.json",
    }[kind]
    (world / "neighbour.txt").parent.mkdir(parents=True)
    (world / "neighbour.txt").write_text("untouched")
    if kind != "directory":
        export_dir.mkdir(parents=True)  # a file target's directory must exist; only a directory is made
    tree, home_tree = snapshot(world, skip=export_dir), snapshot(insight_home)

    assert InMemoryStorage(sessions).export_sessions(target) == len(sessions)

    after = snapshot(world, skip=export_dir)
    assert after == {name: value for name, value in tree.items() if name != "out"} | {"out": "dir"}
    assert snapshot(insight_home) == home_tree
    written = [path for path in export_dir.rglob("*") if path.is_file()]
    assert written
    assert all(path.resolve().is_relative_to(export_dir.resolve()) for path in written)
    assert not any(path.name.startswith(".") for path in written)  # no temporary files left
    if kind == "directory":
        assert all(len(path.relative_to(export_dir).parts) == 4 for path in written)
        assert len(written) == len(
            {(session.sut_name, session.session_start_time.date()) for session in sessions}
        )

    again = JSONStorage(world / "store")
    result = again.import_sessions(target)
    assert (result["added"], result["errors"]) == (len(sessions), 0)
    assert by_id(again) == {session.session_id: session.to_dict() for session in sessions}
