"""Field checks shared by the data model: names, times, durations, and a validating dict reader.

Every failure is an :class:`~pytest_insight.errors.InvalidDataError` whose
``field`` is the dotted path of the offending field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pytest_insight.errors import InvalidDataError

__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_DURATION_SECONDS",
    "MAX_NAME_LENGTH",
    "MAX_NESTING",
    "Record",
    "kind",
    "name_problem",
    "nesting_depth",
    "to_utc",
]

MAX_NAME_LENGTH = 256
"""Longest SUT name or session id accepted, in characters."""

MAX_DURATION_SECONDS = 366 * 24 * 3600.0
"""Longest duration accepted; anything above is taken as corrupt input."""

MAX_NESTING = 32
"""Deepest nesting of lists and objects accepted inside a free-form field (``testing_system``)."""

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""Earliest timestamp accepted from a file."""

LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""Latest timestamp accepted from a file."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def name_problem(value: str) -> str | None:
    """Say what makes ``value`` unfit as a SUT name or session id, or None when it is fine."""
    if not value.strip():
        return "must not be empty"
    if len(value) > MAX_NAME_LENGTH:
        return f"longer than {MAX_NAME_LENGTH} characters"
    if _CONTROL.search(value):
        return "must not contain control characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no file name or key can hold it
        return "not valid Unicode (lone surrogate)"
    return None


def to_utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime; naive values are taken as UTC."""
    zone = value.tzinfo
    if zone is UTC:  # what parsing "+00:00" gives: every decoded result passes here twice
        return value
    if zone is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class Record:
    """A dict under validation; every accessor names the field it failed on."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise InvalidDataError(f"expected an object, got {kind(data)}", field=path or None)
        self.data: Mapping[str, Any] = data
        self.path = path

    def path_of(self, name: str) -> str:
        """The dotted path of field ``name`` of this record."""
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, reason: str) -> InvalidDataError:
        return InvalidDataError(reason, field=self.path_of(name))

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    def required(self, name: str) -> Any:
        if name not in self.data or self.data[name] is None:
            raise self.fail(name, "missing required field")
        return self.data[name]

    def text(self, name: str, *, default: str | None = None, limit: int | None = None) -> str:
        if default is not None and self.data.get(name) is None:
            return default
        value = self.required(name)
        if not isinstance(value, str):
            raise self.fail(name, f"expected a string, got {kind(value)}")
        if limit is not None and len(value) > limit:
            raise self.fail(name, f"longer than {limit} characters")
        return value

    def name(self, name: str) -> str:
        value = self.text(name)
        problem = name_problem(value)
        if problem:
            raise self.fail(name, problem)
        return value

    def flag(self, name: str, *, default: bool) -> bool:
        value = self.data.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, f"expected true or false, got {kind(value)}")
        return value

    def optional_time(self, name: str) -> datetime | None:
        return None if self.data.get(name) is None else self.time(name)

    def time(self, name: str) -> datetime:
        value = self.required(name)
        if not isinstance(value, str):
            raise self.fail(name, f"expected an ISO 8601 timestamp, got {kind(value)}")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(name, f"not an ISO 8601 timestamp: {value[:64]!r}") from None
        try:
            utc: datetime | None = to_utc(parsed)
        except OverflowError:  # year 1 or 9999 shifted by its offset past the calendar
            utc = None
        if utc is None or not EARLIEST <= utc <= LATEST:
            raise self.fail(name, f"date out of range {EARLIEST.year}-{LATEST.year}: {value[:64]!r}")
        return utc

    def duration(self, name: str) -> float:
        value = self.required(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(name, f"expected a number of seconds, got {kind(value)}")
        try:
            seconds = float(value)
        except OverflowError:  # an integer too large for a float
            raise self.fail(name, f"absurd duration: {str(value)[:32]}... s") from None
        if not math.isfinite(seconds):
            raise self.fail(name, f"not a finite number: {value}")
        if seconds < 0:
            raise self.fail(name, f"negative duration: {value}")
        if seconds > MAX_DURATION_SECONDS:
            raise self.fail(name, f"absurd duration: {value} s")
        return seconds

    def sequence(self, name: str) -> list[Any]:
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(name, f"expected a list, got {kind(value)}")
        return value

    def mapping(self, name: str) -> dict[str, Any]:
        value = self.data.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(name, f"expected an object, got {kind(value)}")
        if nesting_depth(value) > MAX_NESTING:  # deeper data overflows the stack of copy and encode
            raise self.fail(name, f"nested deeper than {MAX_NESTING} levels")
        return dict(value)

    def string_map(self, name: str) -> dict[str, str]:
        value = self.mapping(name)
        for key, item in value.items():
            if not isinstance(item, str):
                raise self.fail(f"{name}.{key}", f"expected a string, got {kind(item)}")
        return value


def nesting_depth(value: object) -> int:
    """Nesting depth of lists and dicts in ``value``, without recursion."""
    deepest = 0
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, level = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_NESTING:
            break
        pending.extend((child, level + 1) for child in children)
    return deepest


def kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)
