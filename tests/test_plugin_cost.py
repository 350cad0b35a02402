"""What a recorded run loads and how it saves, which is what its overhead comes from.

Real pytest runs (pytester, in subprocesses) report what they had imported
once the session was saved; the figures themselves are benchmarks
(``python -m tests.bench.plugin``), not tests.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pytest_insight.core.storage import JSONStorage
from pytest_insight.model.session_ids import new_session_id
from pytest_insight.model.sessions import TestOutcome, TestResult, TestSession
from pytest_insight.storage.local.locking import FileLock
from pytest_insight.storage.local.store import LocalBackend

REPORTER = """
import json, sys

def pytest_unconfigure(config):
    hook = getattr(config.pluginmanager, "rewrite_hook", None)
    ours = {name: type(module.__loader__).__name__
            for name, module in sys.modules.items() if name.startswith("pytest_insight")}
    print("LOADED:", json.dumps({"modules": sorted(sys.modules), "loaders": ours,
                                 "hook_in_place": hook in sys.meta_path}))
"""

# What reading a store, the exchange and the analyses need, and a save to a local store does not.
NOT_FOR_A_SAVE = [
    "pytest_insight.format.decoding",
    "pytest_insight.format.bundle",
    "pytest_insight.format.compression",
    "isal",
    "pytest_insight.storage.base",
    "pytest_insight.storage.local.pack_shelf",
    "pytest_insight.storage.local.newest",
    "pytest_insight.core.profiles",  # the storage is named on the command line
    "pytest_insight.core.facade",
    "pytest_insight.core.storage",
    "pytest_insight.exchange.operations",
    "pytest_insight.analysis",
    "obstore",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("PYTEST_INSIGHT", "PYTEST_INSIGHT_STORAGE", "PYTEST_INSIGHT_PROFILE", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTEST_INSIGHT_HOME", str(tmp_path / "home"))


def loaded(result: pytest.RunResult) -> dict[str, object]:
    line = next(line for line in result.outlines if line.startswith("LOADED: "))
    found: dict[str, object] = json.loads(line.removeprefix("LOADED: "))
    return found


def test_saving_to_a_local_store_loads_only_what_writing_one_session_needs(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makeconftest(REPORTER)
    pytester.makepyfile(test_one="def test_one(): print('out')\ndef test_two(): pass")
    result = pytester.runpytest_subprocess("-s", "--insight", "--insight-storage", str(tmp_path / "store"))
    result.stdout.fnmatch_lines(["pytest-insight: saved session * (2 test results) to file://*"])
    modules = set(loaded(result)["modules"])  # type: ignore[call-overload]
    assert "pytest_insight.storage.local.writes" in modules  # the report is of a run that saved
    assert not modules & set(NOT_FOR_A_SAVE), sorted(modules & set(NOT_FOR_A_SAVE))


# What the known-flaky note of a failing run needs no more than a save does: it scans the store.
NOT_FOR_THE_NOTE = [
    "pytest_insight.format.decoding",
    "pytest_insight.format.bundle",
    "pytest_insight.format.compression",
    "isal",
    "pytest_insight.exchange.operations",
    "obstore",
]


def test_the_known_flaky_note_reads_the_store_without_the_bundle_format(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makeconftest(REPORTER)
    pytester.makepyfile(test_one="def test_one(): assert False")
    store = f"--insight-storage={tmp_path / 'store'}"
    pytester.runpytest_subprocess("--insight", store)  # a session in the store's history
    result = pytester.runpytest_subprocess("-s", "--insight", store)
    result.stdout.fnmatch_lines(["pytest-insight: saved session * (1 test results) to file://*"])
    modules = set(loaded(result)["modules"])  # type: ignore[call-overload]
    assert "pytest_insight.analysis.known_flaky" in modules  # the note was looked for
    assert not modules & set(NOT_FOR_THE_NOTE), sorted(modules & set(NOT_FOR_THE_NOTE))


@pytest.mark.parametrize("assertions", ["rewrite", "plain"])
def test_our_modules_skip_assertion_rewriting_and_the_tests_modules_keep_it(
    pytester: pytest.Pytester, tmp_path: Path, assertions: str
) -> None:
    pytester.makeconftest(REPORTER)
    # imported after pytest_configure, so after the plugin imported its modules
    pytester.makepyfile(test_one="def test_one():\n    found = 1\n    assert found == 2")
    record = ["--insight", "--insight-storage", str(tmp_path / "store")]
    result = pytester.runpytest_subprocess("-s", f"--assert={assertions}", *record)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["pytest-insight: saved session *"])
    report = loaded(result)
    loaders = report["loaders"]
    assert isinstance(loaders, dict)
    assert "pytest_insight.model.sessions" in loaders
    assert "pytest_insight.storage.local.store" in loaders
    rewritten = sorted(name for name, loader in loaders.items() if loader == "AssertionRewritingHook")
    # the entry point's own module is imported before any plugin code runs: only it is rewritten
    assert set(rewritten) <= {"pytest_insight", "pytest_insight.plugin", "pytest_insight.plugin.options"}
    if assertions == "rewrite":
        assert report["hook_in_place"] is True
        result.stdout.fnmatch_lines(["E       assert 1 == 2"])  # the test module was still rewritten


def recorded_session(sut: str = "api") -> TestSession:
    start = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
    results = [
        TestResult(f"t.py::test_{n}", TestOutcome.PASSED, start, start, 0.01, capstdout=f"line {n}\n")
        for n in range(3)
    ]
    return TestSession(
        sut_name=sut,
        session_id=new_session_id(sut, start),
        session_start_time=start,
        session_stop_time=start,
        session_duration=0.5,
        test_results=results,
    )


def store_files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()}


def test_the_plugins_save_writes_what_the_storage_apis_save_writes(tmp_path: Path) -> None:
    session = recorded_session()
    LocalBackend(tmp_path / "direct").save_recorded(session)
    JSONStorage(tmp_path / "facade").save_recorded_session(session)
    direct, facade = store_files(tmp_path / "direct"), store_files(tmp_path / "facade")
    assert direct == facade
    assert [name for name in direct if name.startswith("sessions/")]  # one session file
    assert not [name for name in direct if name.startswith("staging/")]  # nothing left staged
    assert JSONStorage(tmp_path / "direct").load_sessions() == [session]


def test_a_store_another_writer_holds_past_the_deadline_is_reported_not_saved(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    JSONStorage(store).save_recorded_session(recorded_session())  # the store exists, with one session
    pytester.makepyfile(test_one="def test_one(): pass")
    lock = FileLock(store / ".lock")
    lock.acquire()
    try:
        result = pytester.runpytest_subprocess(
            "--insight", f"--insight-storage={store}", "--insight-publish-timeout", "0.2"
        )
    finally:
        lock.release()
    assert result.ret == 0  # the tests' own status
    result.stdout.fnmatch_lines(
        ["pytest-insight: could not save session * to file://*: *locked by another writer (waited 0.2 s)"]
    )
    assert len(JSONStorage(store).load_sessions()) == 1  # what was stored is still there
