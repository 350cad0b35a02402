"""The plugin's session ids: readable, unique, and naming their own SUT and start second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pytest_insight.model.session_ids import id_start, names_itself, new_session_id
from pytest_insight.model.sessions import MAX_NAME_LENGTH, TestSession

START = datetime(2025, 3, 2, 23, 59, 58, 750_000, tzinfo=UTC)


def session(sut_name: str, start: datetime, session_id: str) -> TestSession:
    return TestSession(sut_name, session_id, start, start + timedelta(seconds=3))


@pytest.mark.parametrize(
    ("sut_name", "readable"),
    [
        ("checkout-api", "checkout-api"),
        ("web / ünïcode", "web_n_code"),
        ("///", "session"),
        ("x" * 200, "x" * 64),
    ],
)
def test_a_new_id_reads_as_sut_start_second_and_random_part(sut_name: str, readable: str) -> None:
    first, second = new_session_id(sut_name, START), new_session_id(sut_name, START)
    assert first != second
    assert first.startswith(f"{readable}-20250302T235958Z-")
    assert len(first) == len(readable) + 30 <= MAX_NAME_LENGTH
    assert id_start(first) == START.replace(microsecond=0)
    assert names_itself(session(sut_name, START, first))


def test_the_start_second_is_utc_whatever_the_zone_given() -> None:
    local = START.astimezone(timezone(timedelta(hours=5)))  # 04:59:58 the next day there
    made = new_session_id("api", local)
    assert "-20250302T235958Z-" in made
    assert names_itself(session("api", START, made))


@pytest.mark.parametrize(
    "session_id",
    [
        "hand-made-id",
        "api-20251302T000000Z-0123456789ab",
        "api-20250302T235958Z-0123456789AB",
        "api-20250302T235958Z-abc",
    ],
)
def test_other_ids_name_no_start(session_id: str) -> None:
    assert id_start(session_id) is None
    assert not names_itself(session("api", START, session_id))


def test_an_id_naming_another_sut_or_second_does_not_name_its_session() -> None:
    made = new_session_id("api", START)
    assert not names_itself(session("web", START, made))
    assert not names_itself(session("api", START + timedelta(seconds=2), made))
