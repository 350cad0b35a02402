"""The data model: outcome parsing, UTC handling, validation and exact round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_insight.errors import InvalidDataError
from pytest_insight.model.lenient import read_line
from pytest_insight.model.schema import decode_line, encode_line
from pytest_insight.model.sessions import (
    SCHEMA_VERSION,
    RerunTestGroup,
    TestOutcome,
    TestResult,
    TestSession,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["passed", "PASSED", "Passed", " passed "])
def test_outcome_parses_any_case(text: str) -> None:
    assert TestOutcome.from_str(text) is TestOutcome.PASSED


@pytest.mark.parametrize("text", ["", "pass", "unknown", "PASSED!"])
def test_unknown_outcome_is_an_error_not_a_default(text: str) -> None:
    with pytest.raises(InvalidDataError, match="unknown outcome"):
        TestOutcome.from_str(text)


def test_naive_datetimes_are_taken_as_utc() -> None:
    outcome: Any = "failed"  # a string, as code written against 0.9 passes it
    result = TestResult("t.py::a", outcome, datetime(2025, 1, 1, 8), datetime(2025, 1, 1, 9), 1.0)
    assert result.start_time == datetime(2025, 1, 1, 8, tzinfo=UTC)
    assert result.outcome is TestOutcome.FAILED


def test_aware_datetimes_are_converted_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    session = TestSession("sut", "id", datetime(2025, 1, 1, 10, tzinfo=plus_two), T0)
    assert session.session_start_time.tzinfo is UTC
    assert session.session_start_time.hour == 8
    assert session.to_dict()["session_start_time"] == "2025-01-01T08:00:00+00:00"


def _session_with_rerun() -> TestSession:
    first = TestResult("t.py::flaky", TestOutcome.RERUN, T0, T0 + timedelta(seconds=1), 1.0)
    second = TestResult("t.py::flaky", TestOutcome.PASSED, T0 + timedelta(seconds=1), T0, 0.5)
    other = TestResult("t.py::ok", TestOutcome.PASSED, T0, T0, 0.1, capstdout="hi", has_warning=True)
    return TestSession(
        sut_name="api",
        session_id="api-1",
        session_start_time=T0,
        session_stop_time=T0 + timedelta(seconds=2),
        session_duration=2.0,
        session_tags={"branch": "main"},
        testing_system={"host": "ci-1", "cores": 2},
        test_results=[first, other, second],
        rerun_test_groups=[RerunTestGroup("t.py::flaky", [first, second])],
    )


def test_rerun_attempts_are_stored_once() -> None:
    data = _session_with_rerun().to_dict()
    assert data["rerun_test_groups"] == [{"nodeid": "t.py::flaky", "final_outcome": "passed"}]
    restored = TestSession.from_dict(json.loads(json.dumps(data)))
    assert restored == _session_with_rerun()
    assert restored.rerun_test_groups[0].final_outcome is TestOutcome.PASSED
    assert [t.outcome for t in restored.rerun_test_groups[0].tests] == [TestOutcome.RERUN, TestOutcome.PASSED]


def test_rerun_groups_given_as_any_mapping_find_their_attempts() -> None:
    data = _session_with_rerun().to_dict()
    data["rerun_test_groups"] = [MappingProxyType(group) for group in data["rerun_test_groups"]]
    assert TestSession.from_dict(data) == _session_with_rerun()


def test_a_utc_zone_other_than_the_singleton_is_normalised() -> None:
    start = datetime(2025, 1, 1, 8, tzinfo=ZoneInfo("UTC"))
    result = TestResult("t.py::a", TestOutcome.PASSED, start, start, 0.0)
    assert result.start_time.tzinfo is UTC
    assert result.stop_time.tzinfo is UTC
    assert result.start_time == start


def test_final_outcome_must_match_last_attempt() -> None:
    data = _session_with_rerun().to_dict()
    data["rerun_test_groups"][0]["final_outcome"] = "failed"
    with pytest.raises(InvalidDataError, match=r"rerun_test_groups\[0\]\.final_outcome"):
        TestSession.from_dict(data)


def test_reads_the_0_9_layout() -> None:
    legacy = {
        "sut_name": "old-service",
        "session_id": "old-1",
        "session_start_time": "2024-06-01T10:00:00",
        "session_stop_time": "2024-06-01T10:00:05",
        "test_results": [
            {
                "nodeid": "t.py::a",
                "outcome": "failed",
                "start_time": "2024-06-01T10:00:01",
                "duration": 0.25,
                "longreprtext": "assert 1 == 2",
            }
        ],
        "rerun_test_groups": [
            {
                "nodeid": "t.py::b",
                "tests": [
                    {
                        "nodeid": "t.py::b",
                        "outcome": "rerun",
                        "start_time": "2024-06-01T10:00:02",
                        "duration": 1,
                    },
                    {
                        "nodeid": "t.py::b",
                        "outcome": "passed",
                        "start_time": "2024-06-01T10:00:03",
                        "duration": 1,
                    },
                ],
            }
        ],
        "session_tags": {"env": "ci"},
    }
    session = TestSession.from_dict(legacy)
    assert session.session_start_time == datetime(2024, 6, 1, 10, tzinfo=UTC)
    assert session.session_duration == 5.0
    assert session.test_results[0].outcome is TestOutcome.FAILED
    assert session.test_results[0].stop_time == session.test_results[0].start_time
    assert session.rerun_test_groups[0].final_outcome is TestOutcome.PASSED


def _valid() -> dict[str, Any]:
    return _session_with_rerun().to_dict()


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (lambda d: d.pop("sut_name"), "sut_name", "missing required field"),
        (lambda d: d.update(sut_name=3), "sut_name", "expected a string"),
        (lambda d: d.update(sut_name=""), "sut_name", "must not be empty"),
        (lambda d: d.update(session_id="a\x00b"), "session_id", "control characters"),
        (lambda d: d.update(session_id="x" * 10_000), "session_id", "longer than 256"),
        (lambda d: d.update(session_start_time="yesterday"), "session_start_time", "ISO 8601"),
        (lambda d: d.update(session_start_time="9999-01-01T00:00:00"), "session_start_time", "out of range"),
        (lambda d: d.update(session_duration=float("nan")), "session_duration", "finite"),
        (lambda d: d.update(session_duration=-1), "session_duration", "negative"),
        (lambda d: d.update(session_duration=1e12), "session_duration", "absurd"),
        (lambda d: d.update(session_duration="1"), "session_duration", "number of seconds"),
        (lambda d: d.update(session_tags={"a": 1}), "session_tags.a", "expected a string"),
        (lambda d: d.update(test_results={}), "test_results", "expected a list"),
        (
            lambda d: d["test_results"][1].update(outcome="weird"),
            "test_results[1].outcome",
            "unknown outcome",
        ),
        (lambda d: d["test_results"][0].pop("nodeid"), "test_results[0].nodeid", "missing"),
        (
            lambda d: d["test_results"][2].update(has_warning="no"),
            "test_results[2].has_warning",
            "true or false",
        ),
        (lambda d: d.update(schema_version=SCHEMA_VERSION + 1), "schema_version", "newer than this release"),
        (lambda d: d.update(schema_version="1"), "schema_version", "not a schema version"),
    ],
)
def test_invalid_fields_are_named(mutate: Any, field: str, reason: str) -> None:
    data = _valid()
    mutate(data)
    with pytest.raises(InvalidDataError, match=reason) as caught:
        TestSession.from_dict(data)
    assert caught.value.field == field
    assert field in str(caught.value)


@pytest.mark.parametrize("data", [[], "session", 42, None])
def test_a_session_must_be_an_object(data: object) -> None:
    with pytest.raises(InvalidDataError, match="expected an object"):
        TestSession.from_dict(data)


def test_error_location_renders_in_one_line() -> None:
    error = InvalidDataError("unknown outcome 'x'", field="test_results[0].outcome").located("a.jsonl.gz", 7)
    assert str(error) == "a.jsonl.gz:7: test_results[0].outcome: unknown outcome 'x'"
    assert (error.source, error.line, error.field) == ("a.jsonl.gz", 7, "test_results[0].outcome")


# -- property-based: the round trip is exact ---------------------------------------

utc_times = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2199, 12, 31),
    timezones=st.just(UTC),
)
names = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40).filter(
    str.strip
)
texts = st.text(max_size=50)
seconds = st.floats(min_value=0, max_value=86_400, allow_nan=False, allow_infinity=False)


@st.composite
def results(draw: st.DrawFn, nodeid: str | None = None) -> TestResult:
    return TestResult(
        nodeid=nodeid if nodeid is not None else draw(names),
        outcome=draw(st.sampled_from([o for o in TestOutcome if o is not TestOutcome.RERUN])),
        start_time=draw(utc_times),
        stop_time=draw(utc_times),
        duration=draw(seconds),
        caplog=draw(texts),
        capstdout=draw(texts),
        capstderr=draw(texts),
        longreprtext=draw(texts),
        has_warning=draw(st.booleans()),
    )


@st.composite
def sessions(draw: st.DrawFn) -> TestSession:
    plain = draw(st.lists(results(), max_size=5, unique_by=lambda r: r.nodeid))
    rerun_ids = draw(
        st.lists(names, max_size=2, unique=True).filter(lambda ids: not {r.nodeid for r in plain} & set(ids))
    )
    groups = []
    reruns: list[TestResult] = []
    for nodeid in rerun_ids:
        attempts = draw(st.lists(results(nodeid), min_size=1, max_size=3))
        for attempt in attempts[:-1]:
            attempt.outcome = TestOutcome.RERUN
        reruns.extend(attempts)
        groups.append(RerunTestGroup(nodeid, attempts))
    return TestSession(
        sut_name=draw(names),
        session_id=draw(names),
        session_start_time=draw(utc_times),
        session_stop_time=draw(utc_times),
        session_duration=draw(seconds),
        session_tags=draw(st.dictionaries(names, texts, max_size=3)),
        testing_system=draw(
            st.dictionaries(names, st.one_of(texts, st.integers(-(2**53), 2**53)), max_size=3)
        ),
        test_results=plain + reruns,
        rerun_test_groups=groups,
    )


@given(sessions())
def test_round_trip_through_json_is_exact(session: TestSession) -> None:
    text = json.dumps(session.to_dict(), allow_nan=False)
    assert TestSession.from_dict(json.loads(text)) == session


@given(sessions())
def test_to_dict_is_stable(session: TestSession) -> None:
    once = TestSession.from_dict(session.to_dict()).to_dict()
    assert once == session.to_dict()


# -- one schema: a line read directly and the same data read leniently agree ----------

_VALUES: list[object] = [
    None,
    True,
    0,
    -1,
    10**400,
    1.5,
    float("nan"),
    float("inf"),
    "",
    "PASSED",
    " failed ",
    "passed",
    "2025-03-01T12:00:00+00:00",
    "2025-03-01T12:00:00",
    "2025-03-01T13:00:00+01:00",
    "0001-01-01T00:00:00+00:30",
    "1969-12-31T23:59:59+00:00",
    "2200-01-01T00:00:00+00:00",
    "not a time",
    [],
    {},
]


def assert_line_reads_as_its_dict(data: dict[str, Any]) -> None:
    """The schema reading a line directly accepts nothing the lenient reader refuses, and builds the same."""
    line = json.dumps(data).encode()
    try:
        direct: TestSession | None = decode_line(line)
    except (msgspec.MsgspecError, InvalidDataError):
        direct = None
    try:
        lenient: TestSession | None = TestSession.from_dict(json.loads(line))
    except InvalidDataError:
        lenient = None
    assert direct is None or direct == lenient, data
    if lenient is not None:  # and what the line reader builds, by whichever path
        assert read_line(line) == lenient


@st.composite
def session_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """Sessions as written, with some fields of the session or of a result replaced or dropped."""
    data: dict[str, Any] = draw(sessions()).to_dict()
    holders = [data, *data["test_results"]]
    for _ in range(draw(st.integers(0, 3))):
        holder = draw(st.sampled_from(holders))
        name = draw(st.sampled_from([*holder, "extra"]))
        if draw(st.booleans()):
            holder.pop(name, None)
        else:
            holder[name] = draw(st.sampled_from(_VALUES))
    return data


@given(session_dicts())
def test_a_line_read_directly_is_what_the_lenient_reader_builds(data: dict[str, Any]) -> None:
    assert_line_reads_as_its_dict(data)


def test_lines_agree_on_every_odd_value_of_every_field() -> None:
    written = _valid()
    for name in [*written, *written["test_results"][0]]:
        for value in [..., *_VALUES]:
            data = json.loads(json.dumps(written))
            holder = data if name in data else data["test_results"][0]
            if value is ...:
                del holder[name]
            else:
                holder[name] = value
            assert_line_reads_as_its_dict(data)


@given(sessions())
def test_every_canonical_line_is_read_directly(session: TestSession) -> None:
    assert decode_line(encode_line(session)) == session
