"""The hostile-input corpus: every case, how it is built, and what importing it must give.

Each case is one file (or one directory, for the bundle layout) in this
directory, named after the case. Most are committed; the ones too big to
commit (the gzip bomb, the 50 MB line) are ``generated`` at test time into a
temporary directory. Run this file to rebuild the committed ones::

    python tests/data/hostile/make_corpus.py

Every bundle line file holds a good session before and after the bad line,
so a test can check that good sessions next to bad ones are still imported.
The expectations are read by ``tests/test_hostile_input.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CASES", "CORPUS", "STORED_IDS", "Case", "Err", "good", "main"]

CORPUS = Path(__file__).parent
STORED_IDS = ("stored-0", "stored-1", "stored-2")
"""Ids the target store holds before every import (built by the test, sut ``checkout-api``)."""

DAY = "2024-05-01"
TIME = f"{DAY}T08:00:00+00:00"
BOMB_BYTES = 2 << 30  # decompressed size of the gzip bomb: twice the default 1 GiB limit
LINE_BOMB_BYTES = 100 << 20  # one line above the default 64 MiB line limit
BIG_LINE_BYTES = 50 << 20  # the 50 MB single line, below the line limit


@dataclass(frozen=True)
class Err:
    """One expected error: a fragment of its reason, and where it must say it is."""

    reason: str
    line: int | None = None
    field: str | None = None
    file: str | None = None  # inside a directory case: the bundle's path relative to the case


@dataclass(frozen=True)
class Case:
    """A corpus case: ``build(path)`` writes it at ``path``; importing it gives these errors and ids."""

    name: str
    build: Callable[[Path], None]
    errors: tuple[Err, ...] = ()
    imported: frozenset[str] = field(default_factory=frozenset)
    skipped: int = 0
    generated: bool = False

    @property
    def is_dir(self) -> bool:
        return "." not in self.name


# -- building blocks ------------------------------------------------------------


def good(session_id: str, *, sut: str = "checkout-api", start: str = TIME, **fields: Any) -> dict[str, Any]:
    """A valid session dict with one passing and one failing test."""
    session: dict[str, Any] = {
        "schema_version": 1,
        "sut_name": sut,
        "session_id": session_id,
        "session_start_time": start,
        "session_stop_time": start.replace("08:00:00", "08:00:02"),
        "session_duration": 2.0,
        "session_tags": {"branch": "main"},
        "testing_system": {"hostname": "ci-7", "python": "3.11.7"},
        "test_results": [
            _result("tests/test_a.py::test_ok", "passed", start),
            _result("tests/test_a.py::test_bad", "failed", start),
        ],
        "rerun_test_groups": [],
    }
    session.update(fields)
    return session


def _result(nodeid: str, outcome: str, start: str, **fields: Any) -> dict[str, Any]:
    result = {
        "nodeid": nodeid,
        "outcome": outcome,
        "start_time": start,
        "stop_time": start.replace("08:00:00", "08:00:01"),
        "duration": 1.0,
        "caplog": "",
        "capstdout": "out\n",
        "capstderr": "",
        "longreprtext": "AssertionError" if outcome == "failed" else "",
        "has_warning": False,
    }
    result.update(fields)
    return result


def line(data: Any) -> bytes:
    """One JSON line; NaN and infinities come out as the bare tokens ``NaN`` / ``Infinity``."""
    return json.dumps(data, sort_keys=True).encode("utf-8", "surrogatepass")


def gz(raw: bytes, level: int = 6) -> bytes:
    """Gzip with a fixed header (no time, no name, OS byte 255)."""
    data = bytearray(gzip.compress(raw, compresslevel=level, mtime=0))
    data[9] = 255
    return bytes(data)


def _ids(name: str) -> tuple[str, str]:
    return f"{name}-good-1", f"{name}-good-2"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _bundle_path(root: Path, sut_part: str, day: str, data: bytes) -> Path:
    bundle_id = hashlib.sha256(data).hexdigest()[:32]
    return root / "v1" / f"sut={sut_part}" / f"date={day}" / f"{bundle_id}.jsonl.gz"


CASES: list[Case] = []


def _add(case: Case) -> None:
    CASES.append(case)


def raw_file(name: str, data: bytes, *errors: Err, imported: frozenset[str] = frozenset()) -> None:
    """A case whose file is ``data`` as is."""
    _add(Case(name, lambda path: _write(path, data), errors, imported))


def bad_line(
    name: str, bad: bytes, *errors: Err, accepted: str | None = None, suffix: str = ".jsonl.gz"
) -> None:
    """A bundle of three lines: good, ``bad``, good; ``accepted`` is the id ``bad`` holds if it is valid."""
    first, second = _ids(name)
    raw = line(good(first)) + b"\n" + bad + b"\n" + line(good(second)) + b"\n"
    data = gz(raw) if suffix.endswith(".gz") else raw
    imported = {first, second} | ({accepted} if accepted else set())
    _add(Case(name + suffix, lambda path: _write(path, data), errors, frozenset(imported)))


def bad_session(name: str, field_name: str, reason: str, **fields: Any) -> None:
    """Line 2 is a session with ``fields`` overridden (a value of ``...`` removes the field)."""
    session = good(f"{name}-bad")
    for key, value in fields.items():
        if value is ...:
            del session[key]
        else:
            session[key] = value
    bad_line(name, line(session), Err(reason, line=2, field=field_name))


def bad_result(name: str, field_name: str, reason: str, **fields: Any) -> None:
    """Line 2 is a session whose first test result has ``fields`` overridden (``...`` removes)."""
    result = _result("tests/test_a.py::test_ok", "passed", TIME)
    for key, value in fields.items():
        if value is ...:
            del result[key]
        else:
            result[key] = value
    bad_line(
        name,
        line(good(f"{name}-bad", test_results=[result])),
        Err(reason, line=2, field=f"test_results[0].{field_name}"),
    )


def accepted_session(name: str, session_id: str, **fields: Any) -> None:
    """Line 2 is odd but valid: it must be imported, and nothing written outside the store."""
    bad_line(name, line(good(session_id, **fields)), accepted=session_id)


def document(name: str, data: bytes, *errors: Err, imported: frozenset[str] = frozenset()) -> None:
    raw_file(name + ".json", data, *errors, imported=imported)


def document_with(name: str, bad: Any, field_name: str, reason: str) -> None:
    """An export document holding good, ``bad``, good."""
    first, second = _ids(name)
    text = json.dumps({"schema_version": 1, "sessions": [good(first), bad, good(second)]}).encode()
    document(name, text, Err(reason, field=field_name), imported=frozenset({first, second}))


# -- whole files that are not a bundle or document -------------------------------

raw_file("empty_file.jsonl.gz", b"", Err("empty file"))
raw_file("empty_document.json", b"", Err("empty file"))
raw_file("whitespace_only.json", b"  \n\n\t \n", Err("empty file"))
raw_file("not_gzip.jsonl.gz", b"\xfe\xff" + random.Random(6).randbytes(4094), Err("not valid UTF-8"))
raw_file(
    "corrupt_gzip.jsonl.gz", b"\x1f\x8b\x08\x00" + random.Random(7).randbytes(2044), Err("corrupt gzip data")
)


def _truncated() -> None:
    name = "truncated_gzip"
    lines = [line(good(f"{name}-{index}")) + b"\n" for index in range(4)]
    raw = b"".join(lines)
    # level 0 stores the bytes as they are (gzip header 10 bytes, block header 5), so the
    # cut lands in the middle of line 3 whatever zlib built the file
    cut = 10 + 5 + len(lines[0]) + len(lines[1]) + len(lines[2]) // 2
    data = gz(raw, level=0)[:cut]
    raw_file(
        name + ".jsonl.gz",
        data,
        Err("truncated gzip stream after 2 complete lines"),
        imported=frozenset({f"{name}-0", f"{name}-1"}),
    )


_truncated()


def _trailing(name: str, tail: Callable[[bytes], bytes], reason: str, *, kept: bool) -> None:
    first, second = _ids(name)
    data = tail(gz(line(good(first)) + b"\n" + line(good(second)) + b"\n"))
    raw_file(name + ".jsonl.gz", data, Err(reason), imported=frozenset({first, second} if kept else ()))


# garbage after a complete gzip member: the member's sessions are whole and are imported
_trailing("gzip_trailing_garbage", lambda data: data + b"this is not gzip", "corrupt gzip data", kept=True)
# a damaged CRC fails the inflate call that returns the member's last bytes: in a file this
# small that is all of it, so nothing is imported (in a large one, the lines of the
# megabytes before the end would be, as with a truncated file)
_trailing(
    "gzip_bad_crc",
    lambda data: data[:-8] + bytes([data[-8] ^ 0xFF]) + data[-7:],
    "corrupt gzip data",  # the rest of the message is the inflate library's (ISA-L or zlib)
    kept=False,
)


def _concatenated(path: Path) -> None:
    first, second = _ids("concatenated_gzip_members")
    _write(path, gz(line(good(first)) + b"\n") + gz(line(good(second)) + b"\n"))


_add(
    Case(
        "concatenated_gzip_members.jsonl.gz",
        _concatenated,
        imported=frozenset(_ids("concatenated_gzip_members")),
    )
)


# -- size limits (generated at test time: too big to commit) ----------------------


def _bomb(path: Path) -> None:
    """A good line, then 2 GiB of newlines as repeated gzip members: ~2 MB on disk."""
    first, _ = _ids("gzip_bomb")
    member = gz(b"\n" * (64 << 20), level=9)
    with path.open("wb") as stream:
        stream.write(gz(line(good(first)) + b"\n"))
        for _ in range(BOMB_BYTES // (64 << 20)):
            stream.write(member)


_add(
    Case(
        "gzip_bomb.jsonl.gz",
        _bomb,
        (Err("more than 1073741824 bytes once decompressed (limit)"),),
        frozenset({_ids("gzip_bomb")[0]}),
        generated=True,
    )
)


def _line_bomb(path: Path) -> None:
    """A good line, then one line of 100 MiB: above the 64 MiB line limit."""
    first, _ = _ids("line_bomb")
    with path.open("wb") as stream:
        stream.write(gz(line(good(first)) + b"\n" + b'{"sut_name": "' + b"x" * LINE_BOMB_BYTES, level=9))


_add(
    Case(
        "line_bomb.jsonl.gz",
        _line_bomb,
        (Err("line longer than 67108864 bytes (limit)", line=2),),
        frozenset({_ids("line_bomb")[0]}),
        generated=True,
    )
)


def _bad_line_bomb(path: Path) -> None:
    """A good line, then 1 GiB of two-byte bad lines ("x"): ~1 MB on disk, half a billion errors."""
    first, _ = _ids("bad_line_bomb")
    member = gz(b"x\n" * (8 << 20), level=9)
    with path.open("wb") as stream:
        stream.write(gz(line(good(first)) + b"\n"))
        for _ in range((1 << 30) // len(b"x\n" * (8 << 20))):
            stream.write(member)


_add(
    Case(
        "bad_line_bomb.jsonl.gz",
        _bad_line_bomb,
        (
            *tuple(Err("not valid JSON: Expecting value", line=number) for number in range(2, 102)),
            Err("more than 100 bad lines (limit): the rest is not read", line=102),
        ),
        frozenset({_ids("bad_line_bomb")[0]}),
        generated=True,
    )
)


def _big_line(path: Path) -> None:
    """Good, one 50 MB line that is not JSON, good: uncompressed JSON Lines."""
    first, second = _ids("single_line_50mb")
    with path.open("wb") as stream:
        stream.write(line(good(first)) + b"\n")
        stream.write(b'{"sut_name": "' + b"x" * BIG_LINE_BYTES + b"\n")
        stream.write(line(good(second)) + b"\n")


_add(
    Case(
        "single_line_50mb.jsonl",
        _big_line,
        (Err("not valid JSON: Unterminated string", line=2),),
        frozenset(_ids("single_line_50mb")),
        generated=True,
    )
)

# -- JSON of the wrong shape -----------------------------------------------------

document("shape_number", b"42", Err("expected an export document"))
document("shape_string", b'"sessions"', Err("expected an export document"))
document("shape_null", b"null", Err("expected an export document"))
document("shape_object_without_sessions", b'{"results": [1, 2]}', Err("got an object with keys ['results']"))
document(
    "shape_sessions_not_a_list",
    b'{"sessions": {"id": 1}}',
    Err("expected a list of sessions", field="sessions"),
)
document("shape_not_json", b"{'sessions': []}", Err("not valid JSON", line=1))
document("deep_nesting_document", b"[" * 5000 + b"]" * 5000, Err("nested too deeply"))
document(
    "future_schema_version_document",
    b'{"schema_version": 99, "sessions": []}',
    Err("schema version 99 is newer", field="schema_version"),
)
document("invalid_utf8_document", b'{"sessions": [{"sut_name": "\xff\xfe"}]}', Err("not valid UTF-8"))
document_with("document_session_not_an_object", 7, "sessions[1]", "expected an object, got a number")
document_with(
    "document_bad_field", good("x", session_duration=-3), "sessions[1].session_duration", "negative"
)
bad_line("line_not_an_object", b"[1, 2, 3]", Err("expected an object, got a list", line=2))
bad_line("line_not_json", b"{oops", Err("not valid JSON", line=2))
bad_line("deep_nesting_line", b"[" * 100_000 + b"]" * 100_000, Err("nested too deeply", line=2))
bad_line(
    "invalid_utf8_line",
    line(good("bad-utf8")).replace(b"checkout", b"check\xff\xfeout"),
    Err("not valid UTF-8", line=2),
)

# -- wrong types per field ---------------------------------------------------------

bad_session("type_sut_name_number", "sut_name", "expected a string, got a number", sut_name=42)
bad_session("type_session_id_list", "session_id", "expected a string, got a list", session_id=["a"])
bad_session(
    "type_start_time_number",
    "session_start_time",
    "expected an ISO 8601 timestamp",
    session_start_time=1714550400,
)
bad_session(
    "type_test_results_object", "test_results", "expected a list, got an object", test_results={"a": 1}
)
bad_session("type_result_null", "test_results[0]", "expected an object, got null", test_results=[None])
bad_session(
    "type_tags_value_number",
    "session_tags.branch",
    "expected a string, got a number",
    session_tags={"branch": 1},
)
bad_session(
    "type_testing_system_list", "testing_system", "expected an object, got a list", testing_system=[1]
)
bad_session("type_schema_version_string", "schema_version", "not a schema version", schema_version="1")
bad_session(
    "type_duration_boolean",
    "session_duration",
    "expected a number of seconds, got a boolean",
    session_duration=True,
)
bad_result(
    "type_result_duration_string", "duration", "expected a number of seconds, got a string", duration="1.0"
)
bad_result("type_has_warning_string", "has_warning", "expected true or false", has_warning="yes")

# -- missing required fields -------------------------------------------------------

bad_session("missing_session_id", "session_id", "missing required field", session_id=...)
bad_session("missing_sut_name", "sut_name", "missing required field", sut_name=...)
bad_session("missing_start_time", "session_start_time", "missing required field", session_start_time=...)
bad_session("null_session_id", "session_id", "missing required field", session_id=None)
bad_result("missing_result_nodeid", "nodeid", "missing required field", nodeid=...)
bad_result("missing_result_outcome", "outcome", "missing required field", outcome=...)

# -- values: outcomes, versions, numbers, dates --------------------------------------

bad_result("unknown_outcome", "outcome", "unknown outcome 'exploded'", outcome="exploded")
bad_session(
    "unknown_final_outcome",
    "rerun_test_groups[0].final_outcome",
    "unknown outcome 'flaky'",
    rerun_test_groups=[{"nodeid": "tests/test_a.py::test_ok", "final_outcome": "flaky"}],
)
bad_session("future_schema_version", "schema_version", "schema version 99 is newer", schema_version=99)
bad_result("nan_duration", "duration", "not a finite number: nan", duration=float("nan"))
bad_session(
    "infinity_duration", "session_duration", "not a finite number: inf", session_duration=float("inf")
)
bad_result("minus_infinity_duration", "duration", "not a finite number: -inf", duration=float("-inf"))
bad_result("huge_integer_duration", "duration", "absurd duration", duration=10**400)
bad_session("negative_duration", "session_duration", "negative duration: -1.5", session_duration=-1.5)
bad_result("absurd_duration", "duration", "absurd duration: 1000000000000.0 s", duration=1e12)
bad_session(
    "date_year_9999",
    "session_start_time",
    "date out of range",
    session_start_time="9999-12-31T23:59:59-01:00",
)
bad_session(
    "date_year_1", "session_start_time", "date out of range", session_start_time="0001-01-01T00:00:00+01:00"
)
bad_session(
    "date_before_1970",
    "session_start_time",
    "date out of range",
    session_start_time="1900-01-01T00:00:00+00:00",
)
bad_session(
    "date_not_a_date",
    "session_stop_time",
    "not an ISO 8601 timestamp",
    session_stop_time="2024-13-45T00:00:00",
)
bad_result(
    "date_bad_offset", "start_time", "not an ISO 8601 timestamp", start_time="2024-05-01T08:00:00+25:00"
)
bad_session(
    "deep_testing_system",
    "testing_system",
    "nested deeper than 32 levels",
    testing_system=json.loads('{"a": ' * 500 + "1" + "}" * 500),
)

# -- names and ids ------------------------------------------------------------------

accepted_session("session_id_dot_dot", "../../../outside")
accepted_session("session_id_slashes", "/etc/passwd")
accepted_session("sut_name_dot_dot", "sut-dot-dot", sut_name="../../etc")
accepted_session("sut_name_absolute", "sut-absolute", sut_name="/tmp/evil")
accepted_session("sut_name_unicode", "sut-unicode", sut_name="チェック ✓ ü")
accepted_session(
    "nodeid_10000_characters", "long-nodeid", test_results=[_result("t" * 10_000, "passed", TIME)]
)
accepted_session("unknown_extra_fields", "extra-fields", future_field={"x": 1}, another=[1, 2])
bad_session("sut_name_nul", "sut_name", "must not contain control characters", sut_name="api\u0000x")
bad_session("session_id_nul", "session_id", "must not contain control characters", session_id="id\u0000x")
bad_session("sut_name_escape_sequence", "sut_name", "control characters", sut_name="\u001b[31mred")
bad_session("session_id_newline", "session_id", "control characters", session_id="a\nb")
bad_session("sut_name_10000_characters", "sut_name", "longer than 256 characters", sut_name="s" * 10_000)
bad_session(
    "session_id_10000_characters", "session_id", "longer than 256 characters", session_id="i" * 10_000
)
bad_session("sut_name_lone_surrogate", "sut_name", "lone surrogate", sut_name="api\ud800")
bad_session("sut_name_blank", "sut_name", "must not be empty", sut_name="   ")

# -- duplicates ---------------------------------------------------------------------


def _duplicates(path: Path) -> None:
    first, second = _ids("duplicate_ids")
    again = good(first, session_tags={"branch": "other"})  # same id, other content: first copy wins
    _write(path, gz(b"\n".join(line(item) for item in (good(first), again, good(second))) + b"\n"))


_add(Case("duplicate_ids.jsonl.gz", _duplicates, imported=frozenset(_ids("duplicate_ids")), skipped=1))


def _stored_duplicate(path: Path) -> None:
    first, second = _ids("duplicate_of_stored")
    clash = good(STORED_IDS[1], sut="someone-else")  # an id the store holds: left as it is
    _write(path, gz(b"\n".join(line(item) for item in (good(first), clash, good(second))) + b"\n"))


_add(
    Case(
        "duplicate_of_stored.jsonl.gz",
        _stored_duplicate,
        imported=frozenset(_ids("duplicate_of_stored")),
        skipped=1,
    )
)

# -- encodings ----------------------------------------------------------------------

_bom = _ids("bom_document")
raw_file(
    "bom_document.json",
    b"\xef\xbb\xbf" + json.dumps({"sessions": [good(_bom[0]), good(_bom[1])]}).encode(),
    imported=frozenset(_bom),
)
_crlf = _ids("crlf_lines")
raw_file(
    "crlf_lines.jsonl",
    line(good(_crlf[0])) + b"\r\n\r\n" + line(good(_crlf[1])) + b"\r\n",
    imported=frozenset(_crlf),
)

# -- directories in the bundle layout ---------------------------------------------------


def _partition(name: str, sut_part: str, day: str, field_name: str, reason: str) -> None:
    first, second = _ids(name)
    right = gz(line(good(first)) + b"\n")
    wrong = gz(line(good(f"{name}-misplaced")) + b"\n" + line(good(second, sut="elsewhere")) + b"\n")
    wrong_path = _bundle_path(Path(), sut_part, day, wrong)

    def build(root: Path) -> None:
        _write(_bundle_path(root, "checkout-api", DAY, right), right)
        _write(root / wrong_path, wrong)

    errors: tuple[Err, ...] = (Err(reason, line=1, field=field_name, file=wrong_path.as_posix()),)
    if field_name == "session_start_time":  # the second session is also in the wrong SUT
        errors += (Err("'elsewhere' does not match", line=2, field="sut_name", file=wrong_path.as_posix()),)
    _add(
        Case(
            name, build, errors, frozenset({first} if field_name == "session_start_time" else {first, second})
        )
    )


# a bundle moved into another SUT's partition: its checkout-api session is refused, the
# session of the SUT the partition names ("elsewhere") is not
_partition("dir_partition_sut_mismatch", "elsewhere", DAY, "sut_name", "'checkout-api' does not match")
_partition(
    "dir_partition_date_mismatch",
    "checkout-api",
    "2023-01-01",
    "session_start_time",
    "2024-05-01 does not match",
)


def _stray(root: Path) -> None:
    first, second = _ids("dir_stray_files")
    _write(root / "README.txt", b"exported by the nightly job\n")
    _write(root / "notes.json", b'{"sessions": "ignored: not named like a bundle"}')
    _write(root / ".partial.jsonl.gz", b"a hidden temporary file: ignored")
    _write(root / "v1" / "sut=checkout-api" / "date=2024-05-01" / "not-a-bundle.txt", b"ignored")
    _write(
        root / "v1" / "sut=checkout-api" / "date=2024-05-01" / "looks-like.jsonl.gz" / "keep.txt",
        b"a directory",
    )
    nested = gz(line(good(first)) + b"\n")  # outside the layout, named like a bundle: read
    _write(_bundle_path(root / "v1" / "sut=checkout-api" / "extra", "checkout-api", DAY, nested), nested)
    loose = gz(line(good(second)) + b"\n")
    _write(root / "loose.jsonl.gz", loose)


_add(Case("dir_stray_files", _stray, imported=frozenset(_ids("dir_stray_files"))))


def _garbage_bundle(root: Path) -> None:
    first, _ = _ids("dir_garbage_bundle")
    right = gz(line(good(first)) + b"\n")
    _write(_bundle_path(root, "checkout-api", DAY, right), right)
    _write(root / "v1" / "sut=checkout-api" / "date=2024-05-02" / ("0" * 32 + ".jsonl.gz"), b"hello\n")


_add(
    Case(
        "dir_garbage_bundle",
        _garbage_bundle,
        (
            Err(
                "not valid JSON", line=1, file="v1/sut=checkout-api/date=2024-05-02/" + "0" * 32 + ".jsonl.gz"
            ),
        ),
        frozenset({_ids("dir_garbage_bundle")[0]}),
    )
)


def _symlinks(root: Path) -> None:
    first, _ = _ids("dir_symlink_loop")
    right = gz(line(good(first)) + b"\n")
    _write(_bundle_path(root, "checkout-api", DAY, right), right)
    (root / "v1" / "loop").symlink_to(root, target_is_directory=True)  # must not be walked forever


_add(Case("dir_symlink_loop", _symlinks, imported=frozenset({_ids("dir_symlink_loop")[0]}), generated=True))


def main() -> int:
    """Rebuild every committed case in this directory."""
    names = {case.name for case in CASES}
    assert len(names) == len(CASES), "case names must be unique"
    for case in CASES:
        if case.generated:
            continue
        target = CORPUS / case.name
        if target.is_dir():
            shutil.rmtree(target)
        case.build(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
