"""The analyses on small, hand-made histories: each rule, and the records' fields."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from pytest_insight import analysis
from pytest_insight.analysis import (
    History,
    collect_history,
    daily_trends,
    diff_sessions,
    find_changes,
    find_flaky,
    find_slower,
    judge,
    wilson_lower_bound,
)
from pytest_insight.analysis.known_flaky import known_flaky, known_flaky_note
from pytest_insight.core.storage import InMemoryStorage, JSONStorage, Storage
from pytest_insight.model.sessions import TestOutcome, TestResult, TestSession
from pytest_insight.plugin import publish

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NODE = "tests/test_x.py::test_x"


def run(
    number: int,
    outcomes: dict[str, str],
    *,
    commit: str | None = None,
    host: str = "ci-1",
    durations: dict[str, float] | None = None,
    sut: str = "api",
) -> TestSession:
    """Session ``number`` (an hour apart) with one result per test; "rerun+passed" gives two results."""
    start = START + timedelta(hours=number)
    results = []
    for nodeid, outcome in outcomes.items():
        seconds = (durations or {}).get(nodeid, 0.1)
        for part in outcome.split("+"):
            text = f"boom in {nodeid}" if part in ("failed", "error") else ""
            results.append(TestResult(nodeid, TestOutcome(part), start, start, seconds, longreprtext=text))
    tags = {"commit": commit if commit is not None else f"c{number:02d}", "branch": "main"}
    return TestSession(
        sut,
        f"{sut}-{number:03d}",
        start,
        start + timedelta(minutes=1),
        60.0,
        tags,
        {"hostname": host},
        results,
    )


def history_of(pattern: str, *, per_commit: int = 1, node: str = NODE) -> History:
    """A history of one test from a pattern such as ``PPFFP`` (``R``: failed, then passed on a rerun)."""
    names = {"P": "passed", "F": "failed", "S": "skipped", "R": "rerun+passed"}
    sessions = [
        run(i, {node: names[letter]}, commit=f"c{i // per_commit:02d}") for i, letter in enumerate(pattern)
    ]
    return History.from_sessions(sessions)


@pytest.mark.parametrize(
    ("pattern", "per_commit", "kind"),
    [
        ("PPPPPP", 1, "steady"),
        ("FFFFFF", 1, "broken"),
        ("PPPFFF", 1, "changed"),  # a regression
        ("FFFPPP", 1, "changed"),  # a fix
        ("PPFFFPP", 1, "changed"),  # broke for three commits, then fixed
        ("PPFPPPFP", 1, "flaky"),  # lone failures between passes
        ("PPFPPP", 2, "flaky"),  # passed and failed on commit c01
        ("PPPRPP", 1, "flaky"),  # recovered on a rerun
        ("PSPSFSFF", 1, "changed"),  # skips do not count
        ("SSSS", 1, "unknown"),
    ],
)
def test_each_history_gets_its_verdict(pattern: str, per_commit: int, kind: str) -> None:
    history = history_of(pattern, per_commit=per_commit)
    assert judge(history.tests[("api", NODE)], history).kind == kind


def test_a_flaky_record_carries_its_evidence() -> None:
    history = history_of("PPFPPPFPPR", per_commit=2)
    [flaky] = find_flaky(history, min_runs=5)
    assert (flaky.runs, flaky.failures, flaky.rerun_recoveries) == (10, 2, 1)
    assert flaky.evidence == "rerun"
    assert flaky.mixed_commits == ("c01", "c03")
    assert flaky.flips == 4
    assert flaky.flip_rate == pytest.approx(4 / 9)
    assert flaky.recent == "PPFPPPFPPP"
    assert flaky.first_seen == START
    assert flaky.last_seen == START + timedelta(hours=9)
    assert flaky.confidence == pytest.approx(wilson_lower_bound(3, 10))
    assert flaky.last_failure == f"boom in {NODE}"


def test_min_runs_is_the_minimum_sample() -> None:
    assert find_flaky(history_of("PFPF"), min_runs=5) == []
    assert len(find_flaky(history_of("PFPFP"), min_runs=5)) == 1


def test_wilson_lower_bound() -> None:
    assert wilson_lower_bound(0, 0) == 0.0
    assert wilson_lower_bound(0, 10) == 0.0
    assert wilson_lower_bound(5, 10) == pytest.approx(0.2366, abs=1e-4)
    assert wilson_lower_bound(50, 100) > wilson_lower_bound(5, 10)


def test_failures_only_on_one_host_are_correlated() -> None:
    sessions = [
        run(i, {NODE: "failed" if i % 3 == 0 else "passed"}, host="ci-3" if i % 3 == 0 else f"ci-{i % 2}")
        for i in range(12)
    ]
    [flaky] = find_flaky(History.from_sessions(sessions))
    assert [(c.key, c.value, c.failures, c.runs_elsewhere) for c in flaky.correlations] == [
        ("host", "ci-3", 4, 8)
    ]
    assert str(flaky.correlations[0]) == "fails only with host=ci-3 (8 runs elsewhere all passed)"


def test_a_regression_names_last_good_and_first_bad_and_a_fix_is_apart() -> None:
    history = history_of("PPFFFPPPFFF")
    regressions, fixes = find_changes(history)
    [regression] = regressions
    assert (regression.before.commit, regression.after.commit) == ("c07", "c08")
    assert regression.still
    assert regression.runs_since == 3
    assert regression.failure == f"boom in {NODE}"
    [fix] = fixes
    assert (fix.before.commit, fix.after.commit, fix.still) == ("c04", "c05", False)


def test_a_duration_jump_is_found_and_noise_and_steady_slowness_are_not() -> None:
    noise = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02, 0.98, 1.1, 0.92, 1.0]
    sessions = [
        run(
            i,
            {"t::jump": "passed", "t::slow": "passed", "t::noisy": "passed"},
            durations={
                "t::jump": 0.2 * noise[i] * (3 if i >= 6 else 1),
                "t::slow": 4.0 * noise[i],
                "t::noisy": 0.2 * noise[(i * 7) % 10] * (2.5 if i == 4 else 1),  # one spike
            },
        )
        for i in range(10)
    ]
    [slower] = find_slower(History.from_sessions(sessions))
    assert slower.nodeid == "t::jump"
    assert slower.first_slow.commit == "c06"
    assert slower.last_fast.commit == "c05"
    assert slower.ratio == pytest.approx(3, rel=0.15)
    assert slower.runs_since == 4


def test_diff_of_two_sets() -> None:
    base = [run(0, {"a": "passed", "b": "failed", "c": "passed", "old": "passed", "slow": "passed"})]
    head = [
        run(
            1,
            {"a": "failed", "b": "passed", "c": "passed", "new": "passed", "slow": "passed"},
            durations={"slow": 0.5},
        ),
        run(
            2,
            {"a": "failed", "b": "passed", "c": "passed", "new": "passed", "slow": "passed"},
            durations={"slow": 0.6},
        ),
    ]
    found = diff_sessions(base, head)
    assert (found.base_sessions, found.head_sessions) == (1, 2)
    assert [(e.nodeid, e.base, e.head, e.failure) for e in found.newly_failing] == [
        ("a", "passed", "failed", "boom in a"),
    ]
    assert [e.nodeid for e in found.fixed] == ["b"]
    assert [e.nodeid for e in found.added] == ["new"]
    assert [e.nodeid for e in found.removed] == ["old"]
    assert [e.nodeid for e in found.slower] == ["slow"]
    assert found.slower[0].head_seconds == pytest.approx(0.55)


def test_daily_trends() -> None:
    hours = [0, 20, 30, 48]  # 09:00 on the 5th, 05:00 and 15:00 on the 6th, 09:00 on the 7th
    sessions = [run(h, {"a": "passed", "b": "failed" if i < 2 else "passed"}) for i, h in enumerate(hours)]
    days = daily_trends(History.from_sessions(sessions), {("api", "b")})
    assert [
        (d.day.isoformat(), d.sessions, d.passed, d.failed, d.failing_tests, d.flaky_tests) for d in days
    ] == [
        ("2026-01-05", 1, 1, 1, 1, 1),
        ("2026-01-06", 2, 3, 1, 1, 1),
        ("2026-01-07", 1, 2, 0, 0, 0),
    ]
    assert days[1].pass_rate == pytest.approx(0.75)


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_the_history_is_the_same_from_any_storage_in_any_order(kind: str, tmp_path: object) -> None:
    sessions = [run(i, {"a": "passed", "b": "failed" if i % 2 else "passed"}) for i in range(8)]
    storage: Storage = InMemoryStorage() if kind == "memory" else JSONStorage(str(tmp_path))
    storage.save_sessions(sessions[4:])  # two batches: the store may list them in any order
    storage.save_sessions(sessions[:4])
    history = collect_history(storage)
    expected = History.from_sessions(sessions)
    assert [s.session_id for s in history.sessions] == [s.session_id for s in expected.sessions]
    for key, test in expected.tests.items():
        got = history.tests[key]
        assert (got.outcomes, list(got.durations), list(got.sessions)) == (
            test.outcomes,
            list(test.durations),
            list(test.sessions),
        )
    assert history.sessions[0].context == {"branch": "main", "host": "ci-1"}


def test_a_history_of_only_some_tests_keeps_their_runs_as_the_whole_history_does() -> None:
    def with_subtest(number: int, part: str) -> TestSession:
        session = run(number, {"a": "failed" if number % 3 == 0 else "passed", "b": "passed", "t": "passed"})
        start = session.session_start_time
        if part == "failed":  # pytest 9 fails the test too: an echo, not a failure of its own
            session.test_results[2] = TestResult("t", TestOutcome.FAILED, start, start, 0.1)
        session.test_results.append(TestResult("t", TestOutcome(part), start, start, 0.1, subtest="[p]"))
        return session

    sessions = [with_subtest(i, "failed" if i in (2, 5) else "passed") for i in range(8)]
    whole = History.from_sessions(sessions)
    some = History.from_sessions(sessions, only={"a", "t"})
    assert sorted(some.tests) == [("api", "a"), ("api", "t")]
    for key in some.tests:
        got, expected = some.tests[key], whole.tests[key]
        assert (got.outcomes, list(got.sessions)) == (expected.outcomes, list(expected.sessions))
    assert b"\x01" not in some.tests[("api", "t")].outcomes  # its subtest's failures are not its own
    assert judge(some.tests[("api", "a")], some) == judge(whole.tests[("api", "a")], whole)


def test_the_known_flaky_note(tmp_path: object) -> None:
    storage = JSONStorage(str(tmp_path))
    storage.save_sessions(
        [
            run(i, {"a": "failed" if i in (1, 4) else "passed", "b": "passed" if i < 3 else "failed"})
            for i in range(8)
        ]
    )
    flaky = known_flaky(storage, "api", {"a", "b", "c"}, since=START)
    assert flaky == ["a"]
    assert known_flaky(storage, "other", {"a"}, since=START) == []
    assert known_flaky_note({"a", "b"}, flaky) == "pytest-insight: 1 of the 2 failures is known flaky: a"
    assert known_flaky_note({"a"}, []) is None
    many = known_flaky_note({"a", "b", "c", "d", "e"}, ["a", "b", "c", "d"])
    assert many == "pytest-insight: 4 of the 5 failures are known flaky: a, b, c and 1 more"


ANALYSIS_MODULES = [
    "pytest_insight.analysis",
    *(
        f"pytest_insight.analysis.{name}"
        for name in ("diff", "durations", "flaky", "history", "known_flaky", "reading", "regressions")
    ),
    *(f"pytest_insight.analysis.{name}" for name in ("report_charts", "report_page", "trends", "verdict")),
]


@pytest.mark.parametrize("name", ANALYSIS_MODULES)
def test_public_names(name: str) -> None:
    module = importlib.import_module(name)
    assert len(module.__all__) == len(set(module.__all__))
    for exported in module.__all__:
        assert hasattr(module, exported)
    for exported in analysis.__all__:
        assert getattr(analysis, exported).__doc__


def test_the_plugin_and_the_analyses_load_no_chart_renderer() -> None:
    code = (
        "import sys, pytest_insight.plugin\n"
        "loaded = {'pytest_insight.analysis', 'vl_convert'} & set(sys.modules)\n"
        "import pytest_insight.analysis, pytest_insight.cli.parser\n"
        "print(sorted(loaded), 'vl_convert' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[] False"


def note_for_run(storage: JSONStorage, recorded: TestSession, days: int = 30) -> str | None:
    """The plugin's known-flaky line for a run just recorded (its end of run asks only when tests failed)."""
    recorded.session_start_time += timedelta(days=30 - days)  # the note reads the 30 days before the run
    return anyio.run(publish._flaky_note, storage, recorded)


def test_the_note_for_a_run(tmp_path: Path) -> None:
    storage = JSONStorage(str(tmp_path / "store"))
    history = [run(i, {"a": "failed" if i in (1, 4) else "passed", "b": "passed"}) for i in range(8)]
    storage.save_sessions(history)
    assert note_for_run(storage, run(9, {"a": "failed", "b": "error"})) == (
        "pytest-insight: 1 of the 2 failures is known flaky: a"
    )
    assert note_for_run(storage, run(9, {"a": "failed"}), days=0) is None  # nothing in the window
    broken = JSONStorage(str(tmp_path / "broken"))
    broken.save_session(run(1, {"a": "failed"}))
    [stored] = (tmp_path / "broken" / "sessions").rglob("*.json")
    for damage in ("{not json", '{"rerun_test_groups":[],"sut_name":3}'):  # the second looks canonical
        stored.write_text(damage)
        note = note_for_run(broken, run(9, {"a": "failed"}))
        assert note is not None
        assert note.startswith("pytest-insight: could not read the history for known flaky tests: ")
        assert stored.name in note


def test_a_store_file_an_earlier_release_wrote_is_read_with_the_canonical_ones(tmp_path: Path) -> None:
    storage = JSONStorage(str(tmp_path / "store"))
    sessions = [run(i, {"a": "failed" if i in (1, 4) else "passed", "b": "passed"}) for i in range(8)]
    storage.save_sessions(sessions)
    [oldest] = [path for path in (tmp_path / "store").rglob("*.json") if b'"api-000"' in path.read_bytes()]
    # as an earlier release wrote it: unsorted keys, indented, over many lines
    oldest.write_text(json.dumps(sessions[0].to_dict(), indent=2), encoding="utf-8")
    assert not oldest.read_bytes().startswith(b'{"rerun_test_groups":')
    history = collect_history(storage)
    expected = History.from_sessions(sessions)
    assert [s.session_id for s in history.sessions] == [s.session_id for s in expected.sessions]
    assert history.tests[("api", "a")].outcomes == expected.tests[("api", "a")].outcomes


def test_the_note_names_a_known_flaky_subtest_by_its_own_id(tmp_path: Path) -> None:
    def with_subtest(number: int, outcome: str) -> TestSession:
        session = run(number, {"t.py::test_parts": "passed"})
        start = session.session_start_time
        part = TestResult("t.py::test_parts", TestOutcome(outcome), start, start, 0.1, subtest="[part] (i=2)")
        session.test_results.append(part)
        return session

    storage = JSONStorage(str(tmp_path / "store"))
    storage.save_sessions([with_subtest(i, "failed" if i in (1, 4) else "passed") for i in range(8)])
    assert note_for_run(storage, with_subtest(9, "failed")) == (
        "pytest-insight: 1 of the 1 failure is known flaky: t.py::test_parts [part] (i=2)"
    )
