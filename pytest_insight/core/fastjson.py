"""Parse JSON through orjson where its result is the standard library's, else through ``json``.

A session of a thousand results is 300 KB of JSON, and parsing it was half
of decoding a real session. orjson parses it in under half the time. Its
result equals ``json.loads``'s except for integers beyond 64 bits, which it
reads as floats of 2**63 or more in magnitude. So orjson parses first, and
its result is kept unless it may hold such an integer: when it holds a float
that large (looked for in the values, where they are few for the text's
size), or when the text has a run of 19 digits that may be a number, not
part of a string (looked for in the text, where the values are many). Such
a text, and every text orjson refuses, is parsed again by ``json``: the
standard library then accepts what it always accepted (NaN, lone
surrogates, deep nesting up to its own limit) and words the error as
before. Without orjson installed, everything goes to ``json``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["BACKEND", "loads"]

try:
    import orjson
except ImportError:  # pragma: no cover - orjson has wheels wherever the tests run
    BACKEND = "json"
    _fast: Callable[[bytes], Any] | None = None
    _REFUSED: tuple[type[Exception], ...] = ()
else:
    BACKEND = "orjson"
    _fast = orjson.loads
    _REFUSED = (orjson.JSONDecodeError,)

_DIGIT_MAP = bytes(0x31 if 0x30 <= byte <= 0x39 else byte if byte == 0x2E else 0x30 for byte in range(256))
"""Digits to ``1``, ``.`` kept, the rest to ``0``: a digit run that follows a ``.`` is a fraction's."""
_LONG_DIGIT_RUN = b"1" * 19  # the shortest integer orjson may read as a float has 19 digits
_LONG_RUN_AFTER_OTHER = b"0" + _LONG_DIGIT_RUN  # such a run after a byte that is neither digit nor ``.``
_NUMBER_BYTES = frozenset(b"0123456789+-.eE")
_SPACE_BYTES = frozenset(b" \t\n\r")
_BEFORE_VALUE = frozenset(b":[,")
_LOOK_BACK = 64  # bytes looked through for a number's start; past that, a run is taken for a number
_LARGE = 2.0**63  # orjson reads integers from -2**63 to 2**64 - 1 exactly, any other as a float
# Looking through a parsed value costs about 60 ns a value, looking at the text 0.5 to 1.7 ns a byte:
# the values are looked through first only up to one per this many bytes, so a dense text (a session
# of many results) loses little before its text is looked at, and a sparse one (long captured
# output, long strings) is done at a fraction of the text's cost.
_BYTES_PER_NODE = 256


def loads(data: bytes, standard: Callable[[bytes], Any]) -> Any:
    """Parse ``data``: through orjson when it gives what ``standard`` would, else through ``standard``.

    Args:
        data: the JSON text, UTF-8.
        standard: the caller's ``json.loads`` call, which also raises the
            caller's errors for text that is not valid.

    Raises:
        Exception: what ``standard`` raises for ``data``.
    """
    if _fast is None:
        return standard(data)
    try:
        value = _fast(data)
    except _REFUSED:
        return standard(data)  # not necessarily invalid for json (NaN, a lone surrogate): let it decide
    exact = _without_large_float(value, len(data) // _BYTES_PER_NODE)
    if exact is None:  # too many values to look through: look at the text instead
        exact = not _may_hold_long_integer(data)
    return value if exact else standard(data)


def _without_large_float(value: Any, budget: int) -> bool | None:
    """Whether ``value`` holds no float of 2**63 or more in magnitude; None past ``budget`` values.

    An integer beyond 64 bits is such a float in orjson's result, and only
    then can its result differ from ``json``'s.
    """
    pending = [value]
    take, add = pending.pop, pending.extend
    while pending:
        budget -= 1
        if budget < 0:
            return None
        item = take()
        kind = type(item)
        if kind is dict:
            add(item.values())
        elif kind is list:
            add(item)
        elif kind is float and not -_LARGE < item < _LARGE:
            return False
    return True


def _may_hold_long_integer(data: bytes) -> bool:
    """Whether a run of 19 or more digits in ``data`` may be an integer, not a fraction or part of a string.

    Only valid JSON matters here (orjson refuses the rest). There, a run
    right after a ``.`` is a fraction, which orjson reads as ``json`` does
    (durations such as 0.0003149579999997917 are full of them); any other
    run is in a number when the bytes before it are number bytes
    (``0-9+-.eE``), then JSON whitespace, then ``:``, ``[``, ``,`` or the
    start of the text. A run inside a string may look like a number too; it
    is then left to ``json``, which is slower but never wrong.
    """
    digits = data.translate(_DIGIT_MAP)
    if digits.startswith(_LONG_DIGIT_RUN):
        return True
    found = digits.find(_LONG_RUN_AFTER_OTHER)
    while found >= 0:
        if _may_be_number(data, found + 1):
            return True
        found = digits.find(_LONG_RUN_AFTER_OTHER, found + len(_LONG_RUN_AFTER_OTHER))
    return False


def _may_be_number(data: bytes, first: int) -> bool:
    """Whether the digit run starting at ``first`` (not after a ``.``) may be part of a number."""
    at = first - 1
    stop = max(at - _LOOK_BACK, -1)
    while at > stop and data[at] in _NUMBER_BYTES:
        at -= 1
    while at > stop and data[at] in _SPACE_BYTES:
        at -= 1
    return at <= stop or data[at] in _BEFORE_VALUE
