"""The analyses with xdist workers and subtests, on hand-made histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_insight.analysis import History, collect_history, diff_sessions, find_flaky
from pytest_insight.analysis.flaky import worker_correlation
from pytest_insight.analysis.history import FAIL, PASS, SKIP
from pytest_insight.core.storage import InMemoryStorage, JSONStorage, Storage
from pytest_insight.model.sessions import TestOutcome, TestResult, TestSession

START = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
NODE = "tests/test_x.py::test_x"
PARTS = "tests/test_x.py::test_parts"

Report = tuple[str, str, str, str]  # node id, subtest label, outcome, worker


def session(number: int, *reports: Report, commit: str | None = None) -> TestSession:
    """Session ``number`` (an hour apart) of ``reports``, on commit ``c<number // 2>``."""
    start = START + timedelta(hours=number)
    results = [
        TestResult(
            nodeid,
            TestOutcome(outcome),
            start,
            start,
            0.1,
            longreprtext=f"boom in {nodeid} {label}" if outcome == "failed" else "",
            subtest=label,
            worker=worker,
        )
        for nodeid, label, outcome, worker in reports
    ]
    tags = {"commit": commit if commit is not None else f"c{number // 2:02d}"}
    return TestSession("api", f"api-{number:03d}", start, start, 60.0, tags, {"hostname": "ci"}, results)


def on_workers(failing: set[int], workers: list[str]) -> History:
    """One test, run ``i`` on ``workers[i]``, failing on the runs in ``failing``."""
    return History.from_sessions(
        session(i, (NODE, "", "failed" if i in failing else "passed", worker))
        for i, worker in enumerate(workers)
    )


ALTERNATING = ["gw0", "gw1"] * 6


def test_a_test_failing_on_every_run_of_one_worker_names_it() -> None:
    history = on_workers({1, 3, 5, 7, 9, 11}, ALTERNATING)
    [flaky] = find_flaky(history)
    assert [(c.key, c.value, c.failures, c.runs_elsewhere) for c in flaky.correlations] == [
        ("worker", "gw1", 6, 6)
    ]
    assert str(flaky.correlations[0]) == "fails only with worker=gw1 (6 runs elsewhere all passed)"


@pytest.mark.parametrize(
    ("failing", "why"),
    [
        ({1, 5}, "two failures on one of two workers happen by chance half the time"),
        ({1, 3, 5, 7}, "four: still about one time in sixteen"),
        ({1, 2, 5, 7, 9}, "one failure on gw0"),
    ],
)
def test_no_worker_is_named_where_chance_explains_it(failing: set[int], why: str) -> None:
    history = on_workers(failing, ALTERNATING)
    [test] = history.tests.values()
    assert worker_correlation(test, history) == (), why


def test_five_failures_on_one_of_two_workers_are_named() -> None:
    history = on_workers({1, 3, 5, 7, 9}, ALTERNATING)
    [test] = history.tests.values()
    assert [c.value for c in worker_correlation(test, history)] == ["gw1"]


def test_runs_without_a_worker_count_as_elsewhere_and_name_none() -> None:
    workers = ["", ""] * 3 + ["gw0", "gw1"] * 4
    history = on_workers({7, 9, 11, 13}, workers)
    [test] = history.tests.values()
    assert list(test.workers) == [0] * 6 + [1, 2] * 4  # padded when the first worker appeared
    assert history.worker_names == ["", "gw0", "gw1"]
    assert worker_correlation(test, history)[0].runs_elsewhere == 10
    without = on_workers({1, 3, 5}, [""] * 12)
    [test] = without.tests.values()
    assert (len(test.workers), worker_correlation(test, without)) == (0, ())


def test_a_run_keeps_the_worker_of_the_report_that_failed_it() -> None:
    # --dist each runs a test on every worker: one run, failed, on the worker where it failed
    history = History.from_sessions([session(0, (NODE, "", "failed", "gw1"), (NODE, "", "passed", "gw0"))])
    [test] = history.tests.values()
    assert (bytes(test.outcomes), history.worker_names[test.workers[0]]) == (bytes([FAIL]), "gw1")


def parts(number: int, failing_part: bool, *, body_fails: bool = False) -> TestSession:
    """pytest 9's reports of ``test_parts``: two subtests, then the test itself."""
    parent = "failed" if failing_part or body_fails else "passed"
    return session(
        number,
        (PARTS, "[part] (i=0)", "passed", "gw0"),
        (PARTS, "[part] (i=1)", "failed" if failing_part else "passed", "gw0"),
        (PARTS, "", parent, "gw0"),
    )


def test_a_subtest_is_a_test_of_its_own_and_its_echo_in_the_parent_is_not_counted() -> None:
    history = History.from_sessions([parts(0, False), parts(1, True), parts(2, False, body_fails=True)])
    assert set(history.tests) == {
        ("api", PARTS),
        ("api", f"{PARTS} [part] (i=0)"),
        ("api", f"{PARTS} [part] (i=1)"),
    }
    outcomes = {nodeid: bytes(test.outcomes) for (_, nodeid), test in history.tests.items()}
    assert outcomes == {
        f"{PARTS} [part] (i=0)": bytes([PASS, PASS, PASS]),
        f"{PARTS} [part] (i=1)": bytes([PASS, FAIL, PASS]),
        PARTS: bytes([PASS, SKIP, FAIL]),  # run 2 failed in its own body
    }
    assert history.tests[("api", PARTS)].last_failure == f"boom in {PARTS} "


def test_a_flipping_subtest_is_flaky_and_its_test_is_not() -> None:
    history = History.from_sessions(parts(i, i in (1, 4, 7)) for i in range(8))
    assert [test.nodeid for test in find_flaky(history)] == [f"{PARTS} [part] (i=1)"]


def test_a_diff_names_the_subtest_that_newly_fails_and_not_its_test() -> None:
    found = diff_sessions([parts(0, False)], [parts(1, True)])
    assert [entry.nodeid for entry in found.newly_failing] == [f"{PARTS} [part] (i=1)"]
    assert (found.added, found.removed) == ([], [])


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_workers_and_subtests_read_the_same_from_any_storage(kind: str, tmp_path: Path) -> None:
    sessions = [parts(i, i % 3 == 1) for i in range(6)] + [
        session(6 + i, (NODE, "", "failed" if i % 2 else "passed", f"gw{i % 2}")) for i in range(4)
    ]
    storage: Storage = InMemoryStorage() if kind == "memory" else JSONStorage(str(tmp_path))
    storage.save_sessions(sessions)
    history = collect_history(storage)
    expected = History.from_sessions(sessions)
    assert history.tests.keys() == expected.tests.keys()
    for key, test in expected.tests.items():
        got = history.tests[key]
        # worker numbers follow the order sessions were read in: compare the names
        names = [history.worker_names[code] for code in got.workers]
        assert (got.outcomes, names) == (test.outcomes, [expected.worker_names[c] for c in test.workers])
