"""The lenient reader: what is not canonical is made so, then validated by the one schema.

pytest-insight 0.9 files, outcomes in another letter case, naive or
non-UTC timestamps, nulls for empty fields, derived fields left out
(``stop_time``, ``session_duration``), any mapping for an object: each is
rewritten to its canonical form here, and :mod:`pytest_insight.model.schema`
then decides, as it does for a canonical line. This module never accepts what
the schema refuses; it only says why in our words: msgspec's error names a
path (``$.test_results[2].duration``), and the field there is explained by
:class:`~pytest_insight.model.fields.Record`, which reads the value as the
user wrote it and words what is wrong with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from pytest_insight.errors import InvalidDataError
from pytest_insight.model.fields import EARLIEST, LATEST, Record, kind, to_utc
from pytest_insight.model.schema import SessionRecord, beyond_schema, decode_line, from_record
from pytest_insight.model.sessions import SCHEMA_VERSION, TestOutcome, TestResult, TestSession

__all__ = ["parse_json", "read_line", "read_result", "read_session"]

_TEXTS = ("caplog", "capstdout", "capstderr", "longreprtext")
_RESULT = {
    "nodeid": "text",
    "outcome": "outcome",
    "start_time": "time",
    "stop_time": "time",
    "duration": "duration",
    "has_warning": "flag",
    **dict.fromkeys(_TEXTS, "text"),
}
_GROUP = {"nodeid": "text", "final_outcome": "optional_outcome", "tests": ("list", _RESULT)}
_SESSION: dict[str, Any] = {
    "sut_name": "name",
    "session_id": "name",
    "session_start_time": "time",
    "session_stop_time": "time",
    "session_duration": "duration",
    "session_tags": "string_map",
    "testing_system": "mapping",
    "test_results": ("list", _RESULT),
    "rerun_test_groups": ("list", _GROUP),
}
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"Object missing required field `(?P<name>[^`]+)`")
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_TOO_DEEP = "not valid JSON: nested too deeply"


def read_line(line: bytes) -> TestSession:
    """Read a session from one JSON line: through the schema directly when canonical, else made so first.

    Raises:
        InvalidDataError: the line is not JSON, or the schema refuses its session.
    """
    try:
        return decode_line(line)
    except (msgspec.MsgspecError, OverflowError):  # not canonical: read leniently, or say why not
        pass
    return read_session(parse_json(line))


def parse_json(line: bytes) -> Any:
    """Parse a JSON text as the standard library does (NaN, big integers), in our words when it is not JSON.

    Raises:
        InvalidDataError: the text is not UTF-8, not JSON, or nested too deeply.
    """
    try:
        return json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidDataError("not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InvalidDataError(f"not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise InvalidDataError(_TOO_DEEP) from None


def read_session(data: object) -> TestSession:
    """Read a session from its dict: canonical, from an earlier release, or written by hand.

    Raises:
        InvalidDataError: the schema refuses it, even once made canonical;
            ``field`` names the field as the user wrote it.
    """
    canonical, inline = _canonical_session(data)
    try:
        record = msgspec.convert(canonical, SessionRecord)
    except msgspec.ValidationError as exc:
        raise _explained(str(exc), data, _SESSION, "") from None
    bad = beyond_schema(record)
    if bad is not None:
        raise _explained(f"out of range: {bad}", data, _SESSION, "", bad)
    return from_record(record, inline)


def read_result(data: object, path: str = "") -> TestResult:
    """Read one test result from its dict, as :func:`read_session` reads those of a session.

    Raises:
        InvalidDataError: the schema refuses it; ``field`` is prefixed with ``path``.
    """
    return _convert_results([data], path, single=True)[0]


def _canonical_session(data: object) -> tuple[dict[str, Any], dict[int, list[TestResult]]]:
    """``data`` rewritten canonically, and the attempts of rerun groups that held them inline."""
    record = Record(data, "")  # refuses what is not an object
    version = record.get("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise InvalidDataError(f"not a schema version: {version!r}", field="schema_version")
    if version > SCHEMA_VERSION:
        raise InvalidDataError(
            f"schema version {version} is newer than this release reads ({SCHEMA_VERSION}); "
            "upgrade pytest-insight",
            field="schema_version",
        )
    out = dict(record.data)
    out["schema_version"] = SCHEMA_VERSION
    for name in ("session_tags", "testing_system"):
        value = out.get(name)
        if value is None:
            out.pop(name, None)
        elif isinstance(value, Mapping) and not isinstance(value, dict):
            out[name] = dict(value)
    _times(record, out, "session_start_time", "session_stop_time")
    start, stop = out.get("session_start_time"), out.get("session_stop_time")
    if out.get("session_duration") is None and isinstance(start, datetime) and isinstance(stop, datetime):
        out["session_duration"] = max((stop - start).total_seconds(), 0.0)
    results = out.get("test_results")
    if results is None:
        out.pop("test_results", None)
    elif isinstance(results, list):
        out["test_results"] = [
            _canonical_result(item, f"test_results[{n}]") for n, item in enumerate(results)
        ]
    inline: dict[int, list[TestResult]] = {}
    groups = out.get("rerun_test_groups")
    if groups is None:
        out.pop("rerun_test_groups", None)
    elif isinstance(groups, list):
        out["rerun_test_groups"] = [_canonical_group(item, n, inline) for n, item in enumerate(groups)]
    return out, inline


def _canonical_result(data: object, path: str) -> object:
    if not isinstance(data, Mapping):
        return data  # the schema refuses it, and says so
    out = dict(data)
    outcome = out.get("outcome")
    if isinstance(outcome, str):
        out["outcome"] = outcome.strip().lower()
    for name in _TEXTS:
        if name in out and out[name] is None:
            del out[name]
    _times(Record(data, path), out, "start_time", "stop_time")
    return out


def _canonical_group(data: object, index: int, inline: dict[int, list[TestResult]]) -> object:
    if not isinstance(data, Mapping):
        return data
    out = dict(data)
    outcome = out.get("final_outcome")
    if isinstance(outcome, str):
        out["final_outcome"] = outcome.strip().lower()
    out.setdefault("final_outcome", None)
    if "tests" in out:  # 0.9 kept the attempts inline, and no final outcome to check
        path = f"rerun_test_groups[{index}].tests"
        tests = Record(data, f"rerun_test_groups[{index}]").sequence("tests")
        inline[index] = _convert_results(tests, path)
        del out["tests"]
        out["final_outcome"] = None
    return out


def _convert_results(items: list[Any], path: str, *, single: bool = False) -> list[TestResult]:
    canonical = [_canonical_result(item, path if single else f"{path}[{n}]") for n, item in enumerate(items)]
    try:
        converted: list[TestResult] = msgspec.convert(canonical, list[TestResult])
    except msgspec.ValidationError as exc:
        message = str(exc)
        if single:  # the one result is the list's item 0: name it by ``path`` alone
            message = message.replace("- at `$[0]", "- at `$", 1)
            raise _explained(message, items[0], _RESULT, path) from None
        raise _explained(message, items, ("list", _RESULT), path) from None
    for number, result in enumerate(converted):
        for name in ("start_time", "stop_time"):
            if not EARLIEST <= getattr(result, name) <= LATEST:
                where = name if single else f"[{number}].{name}"
                fields = _RESULT if single else ("list", _RESULT)
                raise _explained("date out of range", items[0] if single else items, fields, path, where)
    return converted


def _times(record: Record, out: dict[str, Any], start: str, stop: str) -> None:
    """Parse ``start`` and ``stop`` (ISO 8601, naive taken as UTC) in ``out``; ``stop`` defaults to ``start``.

    A value that does not parse is left for the schema to refuse.
    """
    for name in (start, stop):
        value = out.get(name)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                continue
            try:
                out[name] = to_utc(parsed)
            except OverflowError:  # year 1 or 9999 shifted past the calendar
                record.time(name)  # raises, in the reader's words
    if out.get(stop) is None and start in out:
        out[stop] = out[start]


def _explained(
    message: str, data: object, fields: Any, where: str, path: str | None = None
) -> InvalidDataError:
    """The error for msgspec's ``message`` about ``data``, in our words, naming the field as written.

    ``path`` (``.name`` and ``[index]`` steps) overrides the one in the message.
    """
    found = _AT.match(message)
    reason = found["message"] if found else message
    steps = path if path is not None else (found["path"] or "") if found else ""
    if path is not None and not path.startswith(("[", ".")):
        steps = "." + path
    missing = _MISSING.search(reason)
    segments: list[str | int] = [
        name if name else (int(index) if index.isdigit() else index)
        for name, index in _SEGMENT.findall(steps)
    ]
    if missing:
        segments.append(missing["name"])
    _raise_ours(data, fields, where, segments)
    # our reader found nothing to say: msgspec's words, with the path as we write it
    field = where
    for step in segments:
        field = f"{field}[{step}]" if isinstance(step, int) else f"{field}.{step}" if field else str(step)
    text = reason.replace("`", "")
    return InvalidDataError(text[:1].lower() + text[1:], field=field or None)


def _raise_ours(data: object, fields: Any, where: str, segments: list[str | int]) -> None:
    """Walk ``segments`` down ``data`` and raise our error for the field they reach, if we see one."""
    holder, spec = data, fields
    for step in segments:
        if isinstance(spec, tuple):  # a list of records
            if not isinstance(holder, list):
                raise InvalidDataError(f"expected a list, got {kind(holder)}", field=where or None)
            if not isinstance(step, int) or step >= len(holder):
                return
            holder, spec, where = holder[step], spec[1], f"{where}[{step}]"
            continue
        record = Record(holder, where)  # raises when the holder is not an object
        if not isinstance(step, str) or step not in spec:
            return
        what = spec[step]
        if isinstance(what, tuple):
            items = record.sequence(step)
            holder, spec, where = items, what, record.path_of(step)
            continue
        _check(record, step, what)
        return
    if isinstance(spec, dict):
        Record(holder, where)


def _check(record: Record, name: str, what: str) -> None:
    """Read field ``name`` of ``record`` as ``what``; :class:`Record` raises in our words if it is bad."""
    if what == "name":
        record.name(name)
    elif what == "text":
        record.text(name, default="" if name in _TEXTS else None)
    elif what == "time":
        if name not in ("stop_time", "session_stop_time") or record.get(name) is not None:
            record.time(name)
    elif what == "duration":
        if name != "session_duration" or record.get(name) is not None:
            record.duration(name)
    elif what == "flag":
        record.flag(name, default=False)
    elif what == "string_map":
        record.string_map(name)
    elif what == "mapping":
        record.mapping(name)
    elif what == "outcome" or (what == "optional_outcome" and record.get(name) is not None):
        try:
            TestOutcome.from_str(record.required(name))
        except InvalidDataError as exc:
            raise record.fail(name, exc.reason) from None
