"""The bundle codec and the partition layout: determinism, streaming decode, limits, legacy files, keys."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_insight.errors import BundleTooLargeError, ConfigurationError, InvalidDataError
from pytest_insight.format.bundle import (
    CANONICAL_START,
    content_digest,
    encode_bundle,
    encode_or_reuse,
    encode_session,
)
from pytest_insight.format.decoding import BundleDecoder, DecodedItem, Limits, decode_document, iter_bundle
from pytest_insight.format.layout import bundle_key, decode_sut, encode_sut, parse_bundle_key
from pytest_insight.model.sessions import TestOutcome, TestSession
from pytest_insight.storage.s3.codec import decode_verified

DATA = Path(__file__).parent / "data"
Make = Callable[..., TestSession]


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def split(items: list[DecodedItem]) -> tuple[list[TestSession], list[InvalidDataError]]:
    sessions = [item for item in items if isinstance(item, TestSession)]
    errors = [item for item in items if isinstance(item, InvalidDataError)]
    return sessions, errors


@pytest.fixture
def sessions(make_session: Make) -> list[TestSession]:
    return [make_session(sut_name="api" if n % 2 else "web") for n in range(6)]


# -- encoding -----------------------------------------------------------------


def test_same_sessions_give_same_bytes_and_id_in_any_order(sessions: list[TestSession]) -> None:
    first = encode_bundle(sessions)
    second = encode_bundle(list(reversed(sessions)))
    assert first.data == second.data
    assert first.bundle_id == second.bundle_id
    raw = gzip.decompress(first.data)
    assert first.bundle_id == hashlib.sha256(raw).hexdigest()[:32]
    assert re.fullmatch(r"[0-9a-f]{32}", first.bundle_id)
    assert first.count == len(sessions)


def test_every_encoded_line_starts_as_a_reused_line_must(sessions: list[TestSession]) -> None:
    start = sessions[0].session_start_time
    for session in [*sessions, TestSession("sut", "bare", start, start)]:
        line = encode_session(session).line
        assert line.startswith(CANONICAL_START)  # else exports re-encode every stored session
        assert encode_or_reuse(session, line).line is line


def test_different_sessions_give_a_different_id(sessions: list[TestSession]) -> None:
    assert encode_bundle(sessions).bundle_id != encode_bundle(sessions[:-1]).bundle_id


def test_gzip_header_has_no_time_no_name_and_a_fixed_os_byte(sessions: list[TestSession]) -> None:
    data = encode_bundle(sessions).data
    assert data[:3] == b"\x1f\x8b\x08"
    assert data[3] == 0  # flags: no FNAME, no comment, no extra
    assert data[4:8] == b"\0\0\0\0"  # mtime 0
    assert data[9] == 255


def test_lines_are_sorted_canonical_json_with_schema_version(sessions: list[TestSession]) -> None:
    raw = gzip.decompress(encode_bundle(sessions).data)
    assert raw.endswith(b"\n")
    lines = raw.split(b"\n")[:-1]
    assert len(lines) == len(sessions)
    records = [json.loads(line) for line in lines]
    assert all(record["schema_version"] == 1 for record in records)
    keys = [(r["session_start_time"], r["session_id"]) for r in records]
    assert keys == sorted(keys)
    for line, record in zip(lines, records, strict=True):
        # sorted keys, no spaces, UTF-8 as it is: what msgspec writes for the same values
        assert line == msgspec.json.encode(record, order="sorted")


def test_round_trip_through_the_streaming_decoder(sessions: list[TestSession]) -> None:
    data = encode_bundle(sessions).data
    decoded, errors = split(list(iter_bundle(chunked(data, 7), "b.jsonl.gz")))
    assert errors == []
    expected = sorted(sessions, key=lambda s: (s.session_start_time, s.session_id))
    assert [s.to_dict() for s in decoded] == [s.to_dict() for s in expected]


def test_content_digest_ignores_the_id_only(make_session: Make) -> None:
    one = make_session("a")
    same = make_session("b", start=one.session_start_time)
    assert content_digest(one) == content_digest(same)
    same.session_tags["extra"] = "x"
    assert content_digest(one) != content_digest(same)


def test_a_session_json_cannot_carry_is_refused_with_its_id(make_session: Make) -> None:
    session = make_session("nan-session")
    session.session_duration = float("nan")
    with pytest.raises(InvalidDataError, match="nan-session"):
        encode_session(session)


# -- decoding -----------------------------------------------------------------


def test_bad_lines_are_reported_with_line_numbers_and_good_ones_still_decode(
    sessions: list[TestSession],
) -> None:
    good = [json.dumps(s.to_dict()).encode() for s in sessions[:3]]
    broken = sessions[3].to_dict()
    broken["test_results"][0]["outcome"] = "exploded"
    lines = [good[0], b"{not json", good[1], json.dumps(broken).encode(), b"", b"\xff\xfe", good[2]]
    data = gzip.compress(b"\n".join(lines) + b"\n")
    decoded, errors = split(list(iter_bundle([data], "src.jsonl.gz")))
    assert [s.session_id for s in decoded] == [s.session_id for s in sessions[:3]]
    assert [str(e) for e in errors] == [
        "src.jsonl.gz:2: not valid JSON: Expecting property name enclosed in double quotes",
        "src.jsonl.gz:4: test_results[0].outcome: unknown outcome 'exploded' "
        "(expected one of: passed, failed, skipped, xfailed, xpassed, rerun, error)",
        "src.jsonl.gz:6: not valid UTF-8",
    ]
    assert [e.line for e in errors] == [2, 4, 6]


def test_a_truncated_gzip_yields_what_came_before_then_one_error(make_session: Make) -> None:
    many = [make_session(tests=30) for _ in range(40)]
    data = encode_bundle(many).data
    cut = data[: len(data) * 2 // 3]
    decoded, errors = split(list(iter_bundle(chunked(cut, 4096), "cut.jsonl.gz")))
    assert 0 < len(decoded) < len(many)
    assert len(errors) == 1
    assert str(errors[0]).startswith("cut.jsonl.gz: truncated gzip stream after")
    assert errors[0].source == "cut.jsonl.gz"


def test_a_gzip_bomb_is_refused_quickly() -> None:
    bomb = gzip.compress(b"\n" * (128 << 20), compresslevel=9)
    assert len(bomb) < 200_000  # tiny on disk, 128 MiB inflated
    started = time.perf_counter()
    items = list(iter_bundle(chunked(bomb, 65536), "bomb.jsonl.gz", Limits(max_bytes=8 << 20)))
    assert time.perf_counter() - started < 5.0  # stops at the limit, never inflates the rest
    assert len(items) == 1
    assert isinstance(items[0], BundleTooLargeError)
    assert str(items[0]) == f"bomb.jsonl.gz: more than {8 << 20} bytes once decompressed (limit)"


def test_a_line_longer_than_the_limit_is_refused() -> None:
    data = gzip.compress(b"\0" * (4 << 20))
    items = list(iter_bundle([data], "long.jsonl.gz", Limits(max_line_bytes=1 << 20)))
    assert len(items) == 1
    assert isinstance(items[0], BundleTooLargeError)
    assert items[0].line == 1


def test_concatenated_gzip_members_decode_as_one_stream(sessions: list[TestSession]) -> None:
    data = encode_bundle(sessions[:2]).data + encode_bundle(sessions[2:]).data
    decoded, errors = split(list(iter_bundle(chunked(data, 100), "cat.jsonl.gz")))
    assert errors == []
    assert len(decoded) == len(sessions)


def test_garbage_and_empty_input_are_errors_of_the_source() -> None:
    (garbage,) = list(iter_bundle([b"\x1f\x8bnot really gzip"], "g.jsonl.gz"))
    assert isinstance(garbage, InvalidDataError)
    assert str(garbage).startswith("g.jsonl.gz: corrupt gzip data")
    (empty,) = list(iter_bundle([], "e.jsonl.gz"))
    assert str(empty) == "e.jsonl.gz: empty file"


@pytest.mark.parametrize("data", [b"garbage\n", b'{"session_id": "a"}\n', b"PK\x03\x04"])
@pytest.mark.parametrize("size", [1, 1 << 16])
def test_data_that_is_not_gzip_is_named_so_however_short(data: bytes, size: int) -> None:
    (error,) = list(iter_bundle(chunked(data, size), "plain.jsonl.gz"))
    assert isinstance(error, InvalidDataError)
    assert str(error).startswith("plain.jsonl.gz: not gzip data (it starts with ")
    assert str(error).endswith("a bundle is gzipped JSON Lines")
    _, _, (verified,) = decode_verified(data, "s3://b/k", "0" * 32, Limits())
    assert str(verified).startswith("s3://b/k: not gzip data")


def test_uncompressed_lines_decode_too(sessions: list[TestSession]) -> None:
    raw = gzip.decompress(encode_bundle(sessions).data)
    decoder = BundleDecoder("plain.jsonl", compressed=False)
    items = [item for chunk in chunked(raw, 50) for item in decoder.feed(chunk)]
    items += list(decoder.finish())
    assert len(split(items)[0]) == len(sessions)


def test_limits_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Limits.from_env() == Limits(max_bytes=1 << 30, max_line_bytes=64 << 20)
    monkeypatch.setenv("PYTEST_INSIGHT_MAX_BUNDLE_BYTES", "1000")
    monkeypatch.setenv("PYTEST_INSIGHT_MAX_LINE_BYTES", "100")
    assert Limits.from_env() == Limits(max_bytes=1000, max_line_bytes=100)
    monkeypatch.setenv("PYTEST_INSIGHT_MAX_LINE_BYTES", "-5")
    with pytest.raises(ConfigurationError, match="PYTEST_INSIGHT_MAX_LINE_BYTES"):
        Limits.from_env()


# -- documents and 0.9 files --------------------------------------------------


def test_reads_a_09_storage_file() -> None:
    path = DATA / "v09_storage.json"
    decoded, errors = split(list(decode_document(path.read_bytes(), str(path))))
    assert errors == []
    assert [s.session_id for s in decoded] == ["legacy-1", "legacy-2", "legacy-3"]
    first = decoded[0]
    assert first.session_start_time.tzinfo is not None
    assert first.session_start_time.isoformat() == "2024-03-01T09:00:00+00:00"
    assert first.test_results[1].outcome is TestOutcome.FAILED
    assert first.rerun_test_groups[0].final_outcome is TestOutcome.PASSED
    assert len(first.rerun_test_groups[0].tests) == 2


def test_reads_a_09_bare_list_export() -> None:
    path = DATA / "v09_export.json"
    decoded, errors = split(list(decode_document(path.read_bytes(), str(path))))
    assert errors == []
    assert [(s.session_id, s.sut_name) for s in decoded] == [
        ("legacy-4", "legacy-api"),
        ("legacy-5", "legacy-web"),
    ]


def test_a_bad_session_in_a_document_names_its_index_and_field(sessions: list[TestSession]) -> None:
    records = [s.to_dict() for s in sessions[:3]]
    del records[1]["session_start_time"]
    document = json.dumps({"schema_version": 1, "exported_at": "x", "sessions": records}).encode()
    decoded, errors = split(list(decode_document(document, "doc.json")))
    assert len(decoded) == 2
    assert [str(e) for e in errors] == ["doc.json: sessions[1].session_start_time: missing required field"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"runs": []}', "doc.json: expected an export document"),
        (b'"text"', "doc.json: expected an export document"),
        (b"{broken", "doc.json:1: not valid JSON"),
        (b'{"schema_version": 9, "sessions": []}', "doc.json: schema_version: schema version 9 is newer"),
    ],
)
def test_a_document_of_the_wrong_shape_is_one_error_naming_the_file(content: bytes, message: str) -> None:
    with pytest.raises(InvalidDataError) as caught:
        list(decode_document(content, "doc.json"))
    assert str(caught.value).startswith(message)


def test_a_document_above_the_limit_is_refused() -> None:
    with pytest.raises(BundleTooLargeError):
        list(decode_document(b"[" + b" " * 100 + b"]", "big.json", Limits(max_bytes=50)))


# -- layout -------------------------------------------------------------------

HOSTILE = [
    "../etc",
    "..",
    ".",
    "/",
    "a/b",
    "a\\b",
    "nul\x00byte",
    "line\nbreak",
    "100%",
    ".hidden",
    "ü-sut",
    " ",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_sut_names_stay_one_segment_and_decode_back(name: str) -> None:
    part = encode_sut(name)
    assert re.fullmatch(r"[A-Za-z0-9_%-][A-Za-z0-9._%-]*", part)
    assert part not in {".", ".."}
    assert decode_sut(part) == name
    key = bundle_key(name, date(2024, 5, 1), "0" * 32)
    assert key.count("/") == 3
    parsed = parse_bundle_key(key)
    assert (parsed.sut_name, parsed.day, parsed.bundle_id) == (name, date(2024, 5, 1), "0" * 32)


@given(st.text(min_size=1, max_size=80))
def test_any_name_encodes_to_a_safe_segment(name: str) -> None:
    try:
        part = encode_sut(name)
    except InvalidDataError:
        assert any(0xD800 <= ord(char) <= 0xDFFF for char in name)  # lone surrogates are not UTF-8
        return
    assert "/" not in part
    assert not part.startswith(".")
    assert len(part) <= 180
    if "~" in part:  # a long name, cut and hashed: the key still parses, the name is not in it
        assert parse_bundle_key(bundle_key(name, date(2024, 1, 1), "c" * 32)).sut_part == part
    else:
        assert decode_sut(part) == name


def test_long_names_are_cut_with_a_hash_and_stay_distinct() -> None:
    first, second = "x" * 250 + "1", "x" * 250 + "2"
    parts = encode_sut(first), encode_sut(second)
    assert parts[0] != parts[1]
    assert all(len(part) <= 180 for part in parts)
    key = parse_bundle_key(bundle_key(first, date(2024, 1, 2), "a" * 32))
    assert key.sut_part == parts[0]
    assert key.sut_name is None


def test_key_with_prefix_round_trips() -> None:
    key = bundle_key("api", date(2024, 1, 2), "b" * 32, prefix="team/ci/")
    assert key == f"team/ci/v1/sut=api/date=2024-01-02/{'b' * 32}.jsonl.gz"
    assert parse_bundle_key(key, prefix="team/ci").sut_name == "api"


@pytest.mark.parametrize(
    "key",
    [
        "v1/sut=api/date=2024-01-02/" + "b" * 32 + ".json",
        "v2/sut=api/date=2024-01-02/" + "b" * 32 + ".jsonl.gz",
        "v1/sut=api/date=2024-13-02/" + "b" * 32 + ".jsonl.gz",
        "v1/sut=api/date=2024-01-02/" + "B" * 32 + ".jsonl.gz",
        "v1/sut=api/date=2024-01-02/extra/" + "b" * 32 + ".jsonl.gz",
        "v1/sut=../date=2024-01-02/" + "b" * 32 + ".jsonl.gz",
        "v1/sut=a%2f/date=2024-01-02/" + "b" * 32 + ".jsonl.gz",
        "v1/sut=.x/date=2024-01-02/" + "b" * 32 + ".jsonl.gz",
        "v1/sut=/date=2024-01-02/" + "b" * 32 + ".jsonl.gz",
        "other/v1/sut=api/date=2024-01-02/" + "b" * 32 + ".jsonl.gz",
    ],
)
def test_keys_outside_the_layout_are_rejected(key: str) -> None:
    with pytest.raises(InvalidDataError):
        parse_bundle_key(key)


def test_a_key_outside_the_prefix_is_rejected() -> None:
    with pytest.raises(InvalidDataError, match="not under prefix"):
        parse_bundle_key(bundle_key("api", date(2024, 1, 2), "b" * 32, prefix="a"), prefix="b")


def test_gzip_bomb_fixture_really_inflates() -> None:
    # guards the bomb test: the payload must be far above the limit it is tested with
    bomb = gzip.compress(b"\n" * (32 << 20))
    assert len(zlib.decompress(bomb, wbits=31)) == 32 << 20
