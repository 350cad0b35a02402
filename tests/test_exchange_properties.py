"""Property-based tests of the exchange: round trips through every format, merges against a reference model.

The reference model is a dict ``id -> session`` that applies the documented
strategy rules one session at a time, in source order: ``skip_existing``
keeps what is stored; ``replace_existing`` replaces different content, once
per id and source; ``keep_both`` stores different content as ``<id>-<n>``
(first free ``n``) unless it equals the stored session or a suffixed copy.
Identical content (same canonical dict without the id) is always skipped.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_insight.core.storage import InMemoryStorage, Storage
from pytest_insight.exchange import operations
from pytest_insight.exchange.operations import MergeStrategy
from pytest_insight.format.bundle import encode_bundle
from pytest_insight.format.layout import encode_sut
from pytest_insight.model.fields import name_problem
from pytest_insight.model.sessions import RerunTestGroup, TestOutcome, TestResult, TestSession
from pytest_insight.storage.local.store import LocalBackend
from pytest_insight.storage.memory import MemoryBackend
from pytest_insight.storage.scope import Scope

FORMATS = ["json", "jsonl.gz", "directory"]
SOURCE_FORMATS = ["json", "jsonl.gz", "jsonl", "directory"]
STRATEGIES = list(MergeStrategy)
BASE = datetime(2024, 5, 1, tzinfo=UTC)
PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

# -- strategies ---------------------------------------------------------------------------

names = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(
    lambda name: name_problem(name) is None
)
hostile_suts = (
    st.sampled_from(["api", "API", "../x", "a/b", ".", "..", ".hidden", "ü ✓", "%2F", "a-b", "a"]) | names
)
times = st.integers(min_value=0, max_value=3 * 24 * 3600 * 1000).map(
    lambda ms: BASE + timedelta(milliseconds=ms)
)
durations = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
json_leaf = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | durations | st.text(max_size=8)
json_values = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def sessions(draw: st.DrawFn, session_id: st.SearchStrategy[str] | None = None) -> TestSession:
    start = draw(times)
    results = [
        TestResult(
            nodeid=draw(st.sampled_from(["t.py::a", "t.py::b[ü]", "t.py::c"])),
            outcome=draw(st.sampled_from(list(TestOutcome))),
            start_time=start,
            stop_time=start + timedelta(seconds=draw(st.integers(0, 100))),
            duration=draw(durations),
            capstdout=draw(st.text(max_size=10)),
            longreprtext=draw(st.sampled_from(["", "AssertionError\n  at line 3"])),
            has_warning=draw(st.booleans()),
        )
        for _ in range(draw(st.integers(0, 4)))
    ]
    rerun_ids = draw(st.sets(st.sampled_from(sorted({result.nodeid for result in results}) or ["-"])))
    groups = [
        RerunTestGroup(nodeid, [result for result in results if result.nodeid == nodeid])
        for nodeid in sorted(rerun_ids)
        if any(result.nodeid == nodeid for result in results)
    ]
    return TestSession(
        sut_name=draw(hostile_suts),
        session_id=draw(session_id if session_id is not None else names),
        session_start_time=start,
        session_stop_time=start + timedelta(seconds=draw(st.integers(0, 600))),
        session_duration=draw(durations),
        session_tags=draw(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)),
        testing_system=draw(st.dictionaries(st.text(max_size=5), json_values, max_size=3)),
        test_results=results,
        rerun_test_groups=groups,
    )


def unique_by_id(items: list[TestSession]) -> list[TestSession]:
    return list({session.session_id: session for session in items}.values())


# ids from a small pool, some already suffixed, so collisions and suffix clashes happen
pooled_ids = st.sampled_from(["a", "b", "a-1", "a-2", "b-1", "c"])
# content from a small pool too, so identical-content skips happen
contents = st.lists(sessions(st.just("x")), min_size=1, max_size=3)


@st.composite
def pooled_sessions(draw: st.DrawFn, pool: list[TestSession]) -> TestSession:
    return dataclasses.replace(draw(st.sampled_from(pool)), session_id=draw(pooled_ids))


# -- helpers ------------------------------------------------------------------------------


@contextmanager
def workdir() -> Iterator[Path]:
    """A fresh directory per example (hypothesis reuses function-scoped fixtures)."""
    with tempfile.TemporaryDirectory(prefix="insight-props-") as name:
        yield Path(name)


def as_dicts(items: list[TestSession]) -> dict[str, dict[str, Any]]:
    return {session.session_id: session.to_dict() for session in items}


def write_source(items: list[TestSession], target: Path, form: str) -> Path:
    """Write ``items`` (duplicates kept) in ``form``; return the path to import."""
    if form == "directory":
        InMemoryStorage(unique_by_id(items)).export_sessions(target)  # ids are unique per bundle in a store
        return target
    path = target.with_name(target.name + "." + form)
    if form == "jsonl.gz":
        path.write_bytes(encode_bundle(items).data)
    elif form == "jsonl":  # uncompressed lines, in exactly the order given
        path.write_text("".join(json.dumps(session.to_dict()) + "\n" for session in items))
    else:
        path.write_text(
            json.dumps({"schema_version": 1, "sessions": [session.to_dict() for session in items]})
        )
    return path


def source_order(items: list[TestSession], form: str) -> list[TestSession]:
    """The order an import meets the sessions of a source written by :func:`write_source`."""
    by_time = sorted(items, key=lambda session: (session.session_start_time, session.session_id))
    if form == "jsonl":
        return list(items)
    if form == "json":
        return list(items)
    if form == "jsonl.gz":
        return by_time
    # a directory: bundle files in path order, each sorted by time; path parts compare one by one
    unique = sorted(unique_by_id(items), key=lambda session: (session.session_start_time, session.session_id))
    return sorted(
        unique, key=lambda session: (encode_sut(session.sut_name), session.session_start_time.date())
    )


def content(session: TestSession) -> dict[str, Any]:
    data = session.to_dict()
    del data["session_id"]
    return data


class Model:
    """The store as the documented strategy rules say it must be."""

    def __init__(self, strategy: MergeStrategy) -> None:
        self.strategy = strategy
        self.store: dict[str, TestSession] = {}

    def apply(self, source: list[TestSession]) -> dict[str, int]:
        counts = {"total": 0, "added": 0, "updated": 0, "skipped": 0}
        seen: set[str] = set()
        for session in source:
            counts["total"] += 1
            counts[self._one(session, seen)] += 1
        return counts

    def _one(self, session: TestSession, seen: set[str]) -> str:
        sid = session.session_id
        first = sid not in seen
        seen.add(sid)
        current = self.store.get(sid)
        if current is None:
            self.store[sid] = session
            return "added"
        if self.strategy is MergeStrategy.SKIP_EXISTING or content(current) == content(session):
            return "skipped"
        if self.strategy is MergeStrategy.REPLACE_EXISTING:
            if not first:
                return "skipped"
            self.store[sid] = session
            return "updated"
        number = 1
        while True:
            copy = self.store.get(f"{sid}-{number}")
            if copy is None:
                self.store[f"{sid}-{number}"] = dataclasses.replace(session, session_id=f"{sid}-{number}")
                return "added"
            if content(copy) == content(session):
                return "skipped"
            number += 1


def import_batched(
    storage: Storage, path: Path, strategy: MergeStrategy, batch_size: int
) -> operations.ImportStats:
    async def run() -> operations.ImportStats:
        return await operations.import_sessions(
            storage.backend, path, merge_strategy=strategy, scope=Scope(), batch_size=batch_size
        )

    return anyio.run(run)


def check_against_model(
    storage: Storage, model: Model, sources: list[tuple[list[TestSession], str]], root: Path, batch_size: int
) -> None:
    for index, (items, form) in enumerate(sources):
        path = write_source(items, root / f"source-{index}", form)
        expected = model.apply(source_order(items, form))
        result = import_batched(storage, path, model.strategy, batch_size)
        got = {name: result[name] for name in ("total", "added", "updated", "skipped")}
        assert got == expected, (index, form)
        assert result["errors"] == 0
        assert result["imported"] == expected["added"] + expected["updated"]
        assert as_dicts(storage.load_sessions()) == as_dicts(list(model.store.values())), (index, form)


# -- properties -----------------------------------------------------------------------------


@PROPERTY
@given(session=sessions())
def test_model_round_trip(session: TestSession) -> None:
    data = json.loads(json.dumps(session.to_dict()))
    assert TestSession.from_dict(data) == session
    assert TestSession.from_dict(data).to_dict() == session.to_dict()


@PROPERTY
@given(
    items=st.lists(sessions(), max_size=6).map(unique_by_id),
    form=st.sampled_from(FORMATS),
)
def test_export_then_import_into_an_empty_store_is_the_identity(items: list[TestSession], form: str) -> None:
    with workdir() as root:
        target = root / "out" if form == "directory" else root / f"out.{form}"
        assert InMemoryStorage(items).export_sessions(target) == len(items)
        if form == "directory":
            written = [path for path in root.rglob("*") if path.is_file()]
            assert all(path.resolve().is_relative_to(target.resolve()) for path in written)
        fresh = InMemoryStorage()
        result = fresh.import_sessions(target)
        assert (result["total"], result["added"], result["errors"]) == (len(items), len(items), 0)
        assert as_dicts(fresh.load_sessions()) == as_dicts(items)
        again = fresh.import_sessions(target)  # and re-importing changes nothing
        assert (again["added"], again["updated"], again["skipped"]) == (0, 0, len(items))


@PROPERTY
@given(data=st.data(), strategy=st.sampled_from(STRATEGIES), batch_size=st.integers(1, 4))
def test_any_sequence_of_imports_matches_the_reference_model(
    data: st.DataObject, strategy: MergeStrategy, batch_size: int
) -> None:
    pool = data.draw(contents, label="contents")
    initial = unique_by_id(data.draw(st.lists(pooled_sessions(pool), max_size=3), label="stored"))
    sources = data.draw(
        st.lists(
            st.tuples(
                st.lists(pooled_sessions(pool), min_size=1, max_size=5), st.sampled_from(SOURCE_FORMATS)
            ),
            min_size=1,
            max_size=3,
        ),
        label="sources",
    )
    storage = Storage(MemoryBackend(initial))
    model = Model(strategy)
    model.store = {session.session_id: session for session in initial}
    with workdir() as root:
        check_against_model(storage, model, sources, root, batch_size)


@pytest.mark.parametrize("pack_from", [1000, 2], ids=["files", "packs"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_sequence_of_imports_into_a_local_store_matches_the_model(
    tmp_path: Path, strategy: MergeStrategy, pack_from: int
) -> None:
    shared = TestSession("api", "x", BASE, BASE + timedelta(seconds=5), session_tags={"v": "1"})
    other = dataclasses.replace(shared, session_tags={"v": "2"})
    third = dataclasses.replace(shared, sut_name="../web", session_start_time=BASE + timedelta(days=1))
    ids = ["a", "a-1", "b", "a", "a-2", "b"]
    sources = [
        ([dataclasses.replace(shared, session_id=sid) for sid in ids[:3]], "jsonl.gz"),
        ([dataclasses.replace(other, session_id=sid) for sid in ids], "jsonl"),
        ([dataclasses.replace(third, session_id=sid) for sid in ids], "directory"),
        ([dataclasses.replace(other, session_id="a"), dataclasses.replace(third, session_id="a")], "json"),
    ]
    storage = Storage(LocalBackend(tmp_path / "store", pack_from=pack_from))
    storage.save_sessions([dataclasses.replace(third, session_id="a-1")])
    model = Model(strategy)
    model.store = {"a-1": dataclasses.replace(third, session_id="a-1")}
    check_against_model(storage, model, sources, tmp_path, batch_size=2)
    assert len(model.store) > 3  # the example exercised suffixes or replacements, not only adds
