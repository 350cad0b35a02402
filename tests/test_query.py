"""The Query builder: every filter, time zones, full context, summaries and the spec's examples."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_insight.analysis import History, find_flaky
from pytest_insight.core.profiles import create_profile
from pytest_insight.core.storage import InMemoryStorage, JSONStorage, Storage
from pytest_insight.errors import ConfigurationError, UnknownProfileError
from pytest_insight.model.sessions import RerunTestGroup, TestOutcome, TestResult, TestSession
from pytest_insight.query import summary
from pytest_insight.query.builder import Query, parse_time
from pytest_insight.query.summary import (
    QueryResult,
    Summary,
    TestStats,
    failing_tests,
    flaky_tests,
    outcome_counts,
    slowest_tests,
    summarize,
)
from pytest_insight.storage.scope import Scope

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def result(
    nodeid: str,
    outcome: str = "passed",
    *,
    duration: float = 0.1,
    at: datetime = T0,
    stdout: str = "",
    stderr: str = "",
    log: str = "",
    error: str = "",
    warning: bool = False,
) -> TestResult:
    return TestResult(
        nodeid=nodeid,
        outcome=TestOutcome.from_str(outcome),
        start_time=at,
        stop_time=at + timedelta(seconds=duration),
        duration=duration,
        capstdout=stdout,
        capstderr=stderr,
        caplog=log,
        longreprtext=error,
        has_warning=warning,
    )


def session(
    session_id: str,
    *results: TestResult,
    sut: str = "api",
    start: datetime = T0,
    tags: dict[str, str] | None = None,
) -> TestSession:
    rerun_ids = dict.fromkeys(r.nodeid for r in results if r.outcome is TestOutcome.RERUN)
    return TestSession(
        sut_name=sut,
        session_id=session_id,
        session_start_time=start,
        session_stop_time=start + timedelta(seconds=5),
        session_duration=5.0,
        session_tags=dict(tags or {}),
        testing_system={"hostname": f"host-{session_id}", "python_version": "3.12.1"},
        test_results=list(results),
        rerun_test_groups=[RerunTestGroup(n, [r for r in results if r.nodeid == n]) for n in rerun_ids],
    )


def ids(found: QueryResult) -> list[str]:
    return [s.session_id for s in found]


class RecordingStorage(InMemoryStorage):
    """An in-memory storage that remembers the scopes it was asked for."""

    def __init__(self, sessions: list[TestSession]) -> None:
        super().__init__(sessions)
        self.scopes: list[Scope | None] = []

    def load_sessions(self, scope: Scope | None = None) -> list[TestSession]:
        self.scopes.append(scope)
        return super().load_sessions(scope)


@pytest.fixture
def sessions() -> list[TestSession]:
    return [
        session(
            "api-1",
            result("tests/test_a.py::test_ok", stdout="hello from stdout"),
            result("tests/test_a.py::test_bad", "failed", duration=2.5, error="AssertionError: 1 != 2"),
            sut="api",
            start=T0,
            tags={"branch": "main", "ci": "github-actions"},
        ),
        session(
            "api-2",
            result("tests/test_a.py::test_ok", duration=0.2, stderr="deprecated call"),
            result("tests/test_a.py::test_bad", "passed", duration=0.3, warning=True),
            sut="api",
            start=T0 + timedelta(days=1),
            tags={"branch": "feature-x"},
        ),
        session(
            "web-1",
            result("tests/test_web.py::test_page[chrome]", "rerun", duration=1.0, log="INFO retrying"),
            result("tests/test_web.py::test_page[chrome]", "passed", duration=1.0),
            result("tests/test_web.py::test_skip", "SKIPPED", duration=0.0),
            sut="web",
            start=T0 + timedelta(days=2),
        ),
    ]


@pytest.fixture
def storage(sessions: list[TestSession]) -> RecordingStorage:
    return RecordingStorage(sessions)


# -- construction -------------------------------------------------------------


def test_query_accepts_a_profile_name_or_the_default_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sessions: list[TestSession]
) -> None:
    JSONStorage(tmp_path / "team").save_sessions(sessions)
    create_profile("team", str(tmp_path / "team"))
    assert ids(Query("team").for_sut("web").execute()) == ["web-1"]

    monkeypatch.setenv("PYTEST_INSIGHT_STORAGE", str(tmp_path / "team"))
    assert len(Query().execute()) == 3
    with pytest.raises(UnknownProfileError, match="team"):
        Query("nope")


# -- session filters ----------------------------------------------------------


def test_for_sut_is_pushed_down_to_the_storage(storage: RecordingStorage) -> None:
    assert ids(Query(storage).for_sut("api").execute()) == ["api-1", "api-2"]
    assert storage.scopes[-1] == Scope(sut_name="api")
    assert ids(Query(storage).for_sut("api").for_sut("web").execute()) == []


def test_time_window_is_pushed_down_to_the_storage(storage: RecordingStorage) -> None:
    found = Query(storage).after_date(T0 + timedelta(hours=1)).before_date("2025-03-12").execute()
    assert ids(found) == ["api-2"]
    assert storage.scopes[-1] == Scope(since=T0 + timedelta(hours=1), until=datetime(2025, 3, 12, tzinfo=UTC))


def test_in_last_days_hours_minutes() -> None:
    now = datetime.now(UTC)
    store = InMemoryStorage(
        [
            session("ten-minutes", start=now - timedelta(minutes=10)),
            session("two-hours", start=now - timedelta(hours=2)),
            session("two-days", start=now - timedelta(days=2)),
        ]
    )
    query = Query(store)
    assert ids(query.in_last_minutes(30).execute()) == ["ten-minutes"]
    assert ids(query.in_last_hours(3).execute()) == ["two-hours", "ten-minutes"]
    assert ids(query.in_last_days(1).execute()) == ["two-hours", "ten-minutes"]
    assert ids(query.in_last_days(3).execute()) == ["two-days", "two-hours", "ten-minutes"]
    with pytest.raises(ConfigurationError, match="days"):
        query.in_last_days(-1)


@pytest.mark.parametrize(
    "bound",
    [
        "2025-03-11",
        "2025-03-11T00:00:00",
        "2025-03-11T00:00:00+00:00",
        "2025-03-11T01:00:00+01:00",
        date(2025, 3, 11),
        datetime(2025, 3, 11),
        datetime(2025, 3, 10, 19, 0, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_before_and_after_date_split_at_the_same_utc_instant(
    storage: RecordingStorage, bound: object
) -> None:
    query = Query(storage)
    assert ids(query.before_date(bound).execute()) == ["api-1"]  # type: ignore[arg-type]
    assert ids(query.after_date(bound).execute()) == ["api-2", "web-1"]  # type: ignore[arg-type]


def test_after_date_is_inclusive_and_before_date_exclusive(storage: RecordingStorage) -> None:
    assert ids(Query(storage).after_date(T0).before_date(T0 + timedelta(days=1)).execute()) == ["api-1"]


def test_date_range_includes_both_ends(storage: RecordingStorage) -> None:
    query = Query(storage)
    assert ids(query.date_range("2025-03-11", "2025-03-12").execute()) == ["api-2", "web-1"]
    assert ids(query.date_range(T0, T0 + timedelta(days=1)).execute()) == ["api-1", "api-2"]
    assert ids(query.date_range(date(2025, 3, 10), date(2025, 3, 10)).execute()) == ["api-1"]
    with pytest.raises(ConfigurationError, match="before start"):
        query.date_range("2025-03-12", "2025-03-11")


def test_unparseable_dates_are_configuration_errors(storage: RecordingStorage) -> None:
    with pytest.raises(ConfigurationError, match="ISO 8601"):
        Query(storage).before_date("last tuesday")
    with pytest.raises(ConfigurationError, match="int"):
        Query(storage).after_date(20250101)  # type: ignore[arg-type]


@pytest.fixture(params=["America/Los_Angeles", "Asia/Kolkata"])
def machine_tz(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test with the process in another local time zone."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", request.param)
        time.tzset()
        yield request.param
    time.tzset()


def test_times_compare_in_utc_whatever_the_local_time_zone(machine_tz: str) -> None:
    assert time.strftime("%Z") not in {"UTC", "GMT"}
    store = InMemoryStorage(
        [
            session("new-years-eve", start=datetime(2024, 12, 31, 23, 30, tzinfo=UTC)),
            session("new-year", start=datetime(2025, 1, 1, 0, 30, tzinfo=UTC)),
        ]
    )
    query = Query(store)
    assert ids(query.before_date("2025-01-01").execute()) == ["new-years-eve"]
    assert ids(query.before_date(date(2025, 1, 1)).execute()) == ["new-years-eve"]
    assert ids(query.after_date("2025-01-01T00:00").execute()) == ["new-year"]
    assert ids(query.after_date(datetime(2025, 1, 1)).execute()) == ["new-year"]
    assert ids(query.date_range("2024-12-31", "2024-12-31").execute()) == ["new-years-eve"]
    assert parse_time("2025-01-01") == datetime(2025, 1, 1, tzinfo=UTC)

    now = datetime.now(UTC)
    recent = InMemoryStorage(
        [session("old", start=now - timedelta(minutes=90)), session("new", start=now - timedelta(minutes=30))]
    )
    assert ids(Query(recent).in_last_hours(1).execute()) == ["new"]


def test_with_session_tag(storage: RecordingStorage) -> None:
    query = Query(storage)
    assert ids(query.with_session_tag("branch").execute()) == ["api-1", "api-2"]
    assert ids(query.with_session_tag("branch", "main").execute()) == ["api-1"]
    assert ids(query.with_session_tag("ci", "gitlab-ci").execute()) == []


def test_with_session_id_pattern(storage: RecordingStorage) -> None:
    query = Query(storage)
    assert ids(query.with_session_id_pattern("api-*").execute()) == ["api-1", "api-2"]
    assert ids(query.with_session_id_pattern("*-1").execute()) == ["api-1", "web-1"]
    assert ids(query.with_session_id_pattern("API-*").execute()) == []


def test_with_reruns_and_with_warning(storage: RecordingStorage) -> None:
    assert ids(Query(storage).with_reruns().execute()) == ["web-1"]
    assert ids(Query(storage).with_warning().execute()) == ["api-2"]


# -- test filters -------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["failed", "FAILED", "Failed", TestOutcome.FAILED])
def test_with_outcome_in_any_case(storage: RecordingStorage, outcome: str | TestOutcome) -> None:
    assert ids(Query(storage).filter_by_test().with_outcome(outcome).apply().execute()) == ["api-1"]


def test_with_outcome_several_and_unknown(storage: RecordingStorage) -> None:
    found = Query(storage).filter_by_test().with_outcome("failed", "skipped").apply().execute()
    assert ids(found) == ["api-1", "web-1"]
    with pytest.raises(ConfigurationError, match="unknown outcome 'broken'"):
        Query(storage).filter_by_test().with_outcome("broken")


def test_with_nodeid_containing_and_matching(storage: RecordingStorage) -> None:
    tests = Query(storage).filter_by_test
    assert ids(tests().with_nodeid_containing("test_web").apply().execute()) == ["web-1"]
    assert ids(tests().with_nodeid_matching("*::test_page[[]*]").apply().execute()) == ["web-1"]
    assert ids(tests().with_nodeid_matching("test_page").apply().execute()) == []  # a glob is anchored
    assert ids(tests().with_nodeid_matching(r"test_page\[\w+\]", regex=True).apply().execute()) == ["web-1"]
    assert ids(tests().with_nodeid_matching(re.compile(r"test_(ok|bad)$")).apply().execute()) == [
        "api-1",
        "api-2",
    ]
    with pytest.raises(ConfigurationError, match="bad regex"):
        tests().with_nodeid_matching("(", regex=True)


def test_with_duration_between_includes_its_bounds(storage: RecordingStorage) -> None:
    tests = Query(storage).filter_by_test
    assert ids(tests().with_duration_between(2.5, 10).apply().execute()) == ["api-1"]
    assert ids(tests().with_duration_between(0.2, 0.3).apply().execute()) == ["api-2"]
    with pytest.raises(ConfigurationError, match="below min"):
        tests().with_duration_between(2, 1)


def test_with_error_and_output_containing(storage: RecordingStorage) -> None:
    tests = Query(storage).filter_by_test
    assert ids(tests().with_error_containing("1 != 2").apply().execute()) == ["api-1"]
    assert ids(tests().with_output_containing("hello from").apply().execute()) == ["api-1"]  # stdout
    assert ids(tests().with_output_containing("deprecated").apply().execute()) == ["api-2"]  # stderr
    assert ids(tests().with_output_containing("retrying").apply().execute()) == ["web-1"]  # log
    assert ids(tests().with_output_containing("nowhere").apply().execute()) == []


def test_conditions_of_one_filter_must_hold_for_the_same_test(storage: RecordingStorage) -> None:
    # api-1 has a failed test and a test printing "hello", but not one test doing both
    one_filter = Query(storage).filter_by_test().with_outcome("failed").with_output_containing("hello")
    assert ids(one_filter.apply().execute()) == []
    two_filters = (
        Query(storage)
        .filter_by_test()
        .with_outcome("failed")
        .apply()
        .filter_by_test()
        .with_output_containing("hello")
        .apply()
    )
    assert ids(two_filters.execute()) == ["api-1"]
    assert ids(Query(storage).filter_by_test().apply().execute()) == ["api-1", "api-2", "web-1"]


def test_results_keep_the_full_session_context(
    storage: RecordingStorage, sessions: list[TestSession]
) -> None:
    found = Query(storage).filter_by_test().with_outcome("rerun").apply().execute()
    assert found.sessions == [sessions[2]]  # every result, rerun group, tag and testing_system kept
    assert found[0].testing_system == {"hostname": "host-web-1", "python_version": "3.12.1"}
    assert len(found[0].test_results) == 3
    assert [r.outcome for r in found[0].rerun_test_groups[0].tests] == ["rerun", "passed"]
    assert [(s.session_id, r.outcome) for s, r in found.matching_tests()] == [("web-1", "rerun")]


def test_a_query_is_immutable_and_reusable(storage: RecordingStorage) -> None:
    query = Query(storage)
    failing = query.filter_by_test().with_outcome("failed").apply()
    web = query.for_sut("web")
    assert ids(failing.execute()) == ["api-1"]
    assert ids(web.execute()) == ["web-1"]
    assert ids(query.execute()) == ["api-1", "api-2", "web-1"]


def test_query_result_behaves_as_a_read_only_list(storage: RecordingStorage) -> None:
    found = Query(storage).execute()
    assert len(found) == 3
    assert found
    assert not Query(storage).for_sut("none").execute()
    assert found[-1].session_id == "web-1"
    assert isinstance(found[:2], QueryResult)
    assert found[:2].session_ids == ["api-1", "api-2"]
    assert [s.session_id for s in found] == found.session_ids == ["api-1", "api-2", "web-1"]
    assert found == found.sessions
    assert repr(found) == "QueryResult(3 sessions)"


# -- summaries -------------------------------------------------------------------


def test_summaries_name_failing_slow_and_flaky_tests(storage: RecordingStorage) -> None:
    found = Query(storage).execute()
    assert found.outcome_counts() == {
        TestOutcome.PASSED: 4,
        TestOutcome.FAILED: 1,
        TestOutcome.RERUN: 1,
        TestOutcome.SKIPPED: 1,
    }
    slowest = found.slowest_tests(2)
    assert [(s.nodeid, s.mean_duration) for s in slowest] == [
        ("tests/test_web.py::test_page[chrome]", 2.0),
        ("tests/test_a.py::test_bad", 1.4),
    ]
    failing = found.failing_tests()
    assert [s.nodeid for s in failing] == ["tests/test_a.py::test_bad"]
    assert failing[0].last_error == "AssertionError: 1 != 2"
    assert failing[0].last_failure == T0
    assert found.flaky_tests() == []  # one run each: fewer than insight flaky's --min-runs (5)
    flaky = {s.nodeid: s for s in found.flaky_tests(min_runs=1)}
    # test_bad failed, then passed: a fix, not flaky; test_page failed and passed on its rerun
    assert set(flaky) == {"tests/test_web.py::test_page[chrome]"}
    assert flaky["tests/test_web.py::test_page[chrome]"].reruns == 1
    stats = found.test_stats(min_runs=1)
    assert [stats[n].is_flaky for n in ("tests/test_a.py::test_ok", "tests/test_a.py::test_bad")] == [
        False,
        False,
    ]
    assert found.summarize(min_runs=1).flaky == found.flaky_tests(min_runs=1)


def test_summaries_call_flaky_what_insight_flaky_does() -> None:
    """Both outcomes on one commit: flaky; broke on one commit and stayed broken: a regression."""
    flaky = ["passed", "failed", "passed", "passed", "passed", "passed"]
    regressed = ["passed", "passed", "passed", "failed", "failed", "failed"]
    store = InMemoryStorage(
        [
            session(
                f"s{i}",
                result("t::flaky", flaky[i]),
                result("t::regressed", regressed[i]),
                start=T0 + timedelta(hours=i),
                tags={"commit": f"c{i // 3}"},
            )
            for i in range(6)
        ]
    )
    found = Query(store).execute()
    history = History.from_sessions(found)
    assert [s.nodeid for s in found.flaky_tests()] == [t.nodeid for t in find_flaky(history)] == ["t::flaky"]
    assert [s.nodeid for s in found.failing_tests()] == ["t::regressed", "t::flaky"]


def test_a_setup_error_counts_as_a_failure_and_a_teardown_error_is_not_a_pass() -> None:
    store = InMemoryStorage(
        [
            session("s1", result("t::a", "passed"), result("t::a", "error", error="teardown boom")),
            session("s2", result("t::a", "passed"), start=T0 + timedelta(hours=1)),
        ]
    )
    stats = Query(store).execute().test_stats(min_runs=1)["t::a"]
    # failed, then passed: fixed, not flaky
    assert (stats.runs, stats.failed_runs, stats.passed_runs, stats.is_flaky) == (2, 1, 1, False)


# -- the spec's examples, as written ------------------------------------------------


def test_spec_query_examples_run_as_written(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pytest_insight.core.storage import get_storage_instance

    monkeypatch.chdir(tmp_path)
    seeded: Storage = get_storage_instance()
    seeded.save_sessions(
        [
            session(
                "legacy-old", result("t::a", "failed"), sut="legacy-service", start=T0 - timedelta(days=400)
            ),
            session("legacy-new", result("t::a"), sut="legacy-service", start=T0),
            session(
                "svc-recent", result("t::b"), sut="my-service", start=datetime.now(UTC) - timedelta(days=1)
            ),
            session(
                "svc-old", result("t::b"), sut="my-service", start=datetime.now(UTC) - timedelta(days=40)
            ),
        ]
    )

    storage = get_storage_instance()
    query = Query(storage)

    # Find sessions with failing tests
    failing_sessions = query.filter_by_test().with_outcome("failed").apply().execute()
    assert [s.session_id for s in failing_sessions] == ["legacy-old"]

    # You can then use the SUT names from these sessions to export
    sut_names = {session.sut_name for session in failing_sessions}
    for sut_name in sut_names:
        storage.export_sessions(f"{sut_name}_failing.json", sut_name=sut_name)
    assert (tmp_path / "legacy-service_failing.json").is_file()

    # Select old sessions from a specific SUT
    old_sessions = query.for_sut("legacy-service").before_date("2025-01-01").execute()
    assert [s.session_id for s in old_sessions] == ["legacy-old"]

    # Clear only those sessions
    storage.clear_sessions(old_sessions)
    assert {s.session_id for s in storage.load_sessions()} == {"legacy-new", "svc-recent", "svc-old"}

    # Selectively clear sessions using Query
    query = Query(storage)
    sessions_to_clear = query.for_sut("my-service").in_last_days(30).execute()
    count = storage.clear_sessions(sessions_to_clear)
    assert count == 1
    assert {s.session_id for s in storage.load_sessions()} == {"legacy-new", "svc-old"}


def test_a_test_that_fails_every_rerun_is_failing_not_flaky() -> None:
    attempts = [result("t::broken", "rerun"), result("t::broken", "failed", error="still broken")]
    store = InMemoryStorage(
        [
            session("s1", *attempts),
            session("s2", *attempts, start=T0 + timedelta(hours=1)),
        ]
    )
    found = Query(store).execute()
    assert [entry.nodeid for entry in found.failing_tests()] == ["t::broken"]
    assert found.flaky_tests() == []
    assert found.test_stats()["t::broken"].reruns == 2


_RUNS = st.lists(
    st.lists(
        st.tuples(
            st.sampled_from(["t::a", "t::b", "t::c"]),
            st.sampled_from(list(TestOutcome)),
            st.floats(min_value=0, max_value=100),
            st.text(max_size=3),
        ),
        max_size=6,
    ),
    max_size=6,
)


def generated(runs: list[list[tuple[str, TestOutcome, float, str]]]) -> list[TestSession]:
    return [
        session(
            f"s{number}",
            *(result(nodeid, outcome, duration=d, error=text) for nodeid, outcome, d, text in results),
            start=T0 + timedelta(hours=number % 3),  # equal starts too: the later session's error wins
        )
        for number, results in enumerate(runs)
    ]


@given(_RUNS, st.booleans())
def test_a_test_with_one_result_in_a_session_counts_as_the_general_path_counts_it(
    runs: list[list[tuple[str, TestOutcome, float, str]]], repeated: bool
) -> None:
    sessions = generated(runs)
    if repeated:  # the same result object twice in a session is two results, as a list would hold it
        for each in sessions:
            each.test_results.extend(each.test_results[:1])
    expected: dict[str, TestStats] = {}
    for each in sessions:  # every node id's results as a list, even a list of one
        grouped: dict[str, list[TestResult]] = {}
        for item in each.test_results:
            grouped.setdefault(item.nodeid, []).append(item)
        for nodeid, results in grouped.items():
            run = (each.session_id, each.session_start_time)
            summary._add_run(expected.setdefault(nodeid, TestStats(nodeid)), run, results)
    assert summary._gathered(sessions) == expected


@given(_RUNS, st.integers(min_value=0, max_value=4))
def test_summarize_is_the_four_summaries_in_one_pass(
    runs: list[list[tuple[str, TestOutcome, float, str]]], top: int
) -> None:
    sessions = generated(runs)
    found = summarize(iter(sessions), top)  # any iterable, read once
    assert found == Summary(
        sessions=len(sessions),
        outcomes=outcome_counts(sessions),
        failing=failing_tests(sessions)[:top],
        slowest=slowest_tests(sessions, top),
        flaky=flaky_tests(sessions)[:top],
    )
    assert QueryResult(sessions).summarize(top) == found
