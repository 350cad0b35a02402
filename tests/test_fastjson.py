"""orjson's fast path gives exactly what ``json.loads`` gives, or leaves the text to it."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pytest_insight.core import fastjson


def exact(value: Any) -> Any:
    """``value`` with every type spelled out, so 1 != 1.0 and NaN == NaN."""
    if isinstance(value, dict):
        return ("dict", [(key, exact(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [exact(item) for item in value])
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    return (type(value).__name__, value)


def outcome(parse: Any, data: bytes) -> Any:
    try:
        return exact(parse(data))
    except (ValueError, RecursionError) as exc:
        return ("error", type(exc).__name__, str(exc))


def refuse(data: bytes) -> Any:
    raise AssertionError(f"json.loads was called for {data[:40]!r}")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


def test_orjson_is_the_parser_here() -> None:
    assert fastjson.BACKEND == "orjson"
    assert fastjson.loads(b'{"a": [1, 2.5, "\\u00e9", null]}', refuse) == {"a": [1, 2.5, "é", None]}


@given(json_values, st.booleans())
def test_any_json_value_reads_back_exactly_as_json_reads_it(value: Any, ascii_only: bool) -> None:
    try:
        data = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate written raw cannot be UTF-8
        return
    assert outcome(lambda d: fastjson.loads(d, json.loads), data) == outcome(json.loads, data)


@given(st.from_regex(rb"\A-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,40})?([eE][+-]?([0-9]{1,3}|0{17}[0-9]{2,4}))?\Z"))
@example(str(2**63 - 1).encode())
@example(str(2**63).encode())
@example(str(2**64 - 1).encode())
@example(str(2**64).encode())
@example(str(-(2**63)).encode())
@example(str(-(2**63) - 1).encode())
@example(b"123456789012345678.5")
@example(b"2.2250738585072011e-308")
@example(b"0.0003149579999997917")
@example(
    b"2.47032822920623272088284396434110686182529901307162382212792841250337753635104375932649918180817996e-324"
)
@example(b"1e0000000000000000000000000000005")
def test_numbers_read_as_json_reads_them(data: bytes) -> None:
    assert outcome(lambda d: fastjson.loads(d, json.loads), data) == outcome(json.loads, data)


@given(st.binary(max_size=40) | st.text(alphabet='{}[]":,.-+eE0123456789 \\nultrfasI\t\x00é', max_size=40))
@example(b"NaN")
@example(b"[1E400]")
@example(b'"\\ud800"')
@example(b"[" * 3000 + b"]" * 3000)
@example(b'{"a": 1, "a": 2}')
def test_any_text_is_accepted_or_refused_as_json_does(text: bytes | str) -> None:
    data = text.encode("utf-8") if isinstance(text, str) else text

    def standard(raw: bytes) -> Any:
        return json.loads(raw.decode("utf-8"))

    def caught(parse: Any) -> Any:
        try:
            return outcome(parse, data)
        except UnicodeDecodeError as exc:
            return ("error", "UnicodeDecodeError", str(exc))

    assert caught(lambda d: fastjson.loads(d, standard)) == caught(standard)


@pytest.mark.parametrize("padding", [0, 10_000])  # the text is looked at / the parsed values are
@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**30])
def test_an_integer_beyond_64_bits_is_left_to_json(number: int, padding: int) -> None:
    data = json.dumps({"captured": "x" * padding, "testing_system": {"memory": number}}).encode()
    with pytest.raises(AssertionError, match=r"json\.loads was called"):
        fastjson.loads(data, refuse)
    assert fastjson.loads(data, json.loads)["testing_system"]["memory"] == number


@pytest.mark.parametrize("padding", [0, 10_000])
@pytest.mark.parametrize("number", [2**64 - 1, -(2**63), 1e300, -1.5e19])
def test_the_largest_integers_orjson_reads_exactly_and_large_floats_stay_right(
    number: float, padding: int
) -> None:
    data = json.dumps({"captured": "x" * padding, "memory": number}).encode()
    value = fastjson.loads(data, json.loads)
    assert exact(value["memory"]) == exact(number)


@given(
    st.lists(
        st.integers(min_value=-(2**80), max_value=2**80)
        | st.sampled_from(["1" * 25, "-1" * 12, "0.5", "1e5"])
        | st.text(alphabet="0123456789abcdef -.:,[e", min_size=19, max_size=60),
        max_size=6,
    ),
    st.sampled_from(["", " ", "\n\t ", "\r\n" * 40]),
    st.sampled_from(["", "x" * 10_000]),  # the text is looked at / the parsed values are
)
def test_long_digit_runs_anywhere_read_back_exactly_as_json_reads_them(
    values: list[Any], space: str, padding: str
) -> None:
    items = [json.dumps(value) for value in [*values, padding]]
    data = ("[" + space + ("," + space).join(items) + space + "]").encode()
    assert outcome(lambda d: fastjson.loads(d, json.loads), data) == outcome(json.loads, data)


@pytest.mark.parametrize(
    "text",
    [
        "a1234567890123456789012",  # a random id
        "ts=1732612345678901234567 ns",
        "f1234567890123456789e1234567890123456789",
        '"quoted" 12345678901234567890/',
    ],
)
def test_a_long_digit_run_inside_a_string_stays_with_orjson(text: str) -> None:
    data = json.dumps({"captured": text, "tags": [text]}).encode()
    assert fastjson.loads(data, refuse) == {"captured": text, "tags": [text]}


def test_an_integer_after_a_digit_run_inside_a_string_is_still_found() -> None:
    data = json.dumps(["a1234567890123456789012", 0.12345678901234567890, 2**70]).encode()
    with pytest.raises(AssertionError, match=r"json\.loads was called"):
        fastjson.loads(data, refuse)
    assert fastjson.loads(data, json.loads)[2] == 2**70


def test_durations_with_long_fractions_stay_with_orjson() -> None:
    results = [{"nodeid": f"t{n}", "duration": 0.0003149579999997917 * n} for n in range(50)]
    data = json.dumps({"test_results": results}).encode()
    assert fastjson.loads(data, refuse) == {"test_results": results}


@pytest.mark.parametrize(
    "text", [": 12345678901234567890123", "x,12345678901234567890123", "[ -1234567890123456789012"]
)
def test_a_string_that_looks_like_a_number_before_its_run_is_left_to_json(text: str) -> None:
    data = json.dumps([text]).encode()
    with pytest.raises(AssertionError, match=r"json\.loads was called"):
        fastjson.loads(data, refuse)


def test_without_orjson_everything_goes_to_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastjson, "_fast", None)
    with pytest.raises(AssertionError, match=r"json\.loads was called"):
        fastjson.loads(b"[1]", refuse)
    assert fastjson.loads(b"[1]", json.loads) == [1]
