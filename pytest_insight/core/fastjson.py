"""Parse JSON through orjson where its result is the standard library's, else through ``json``.

A session of a thousand results is 300 KB of JSON, and parsing it was half
of decoding a real session. orjson parses it in under half the time. Its
result equals ``json.loads``'s except for integers beyond 64 bits, which it
reads as floats; those need a run of 19 digits, so a text where such a
run may be a number is left to ``json``, as is every text orjson refuses
(a run inside a string, as in a random id or a nanosecond timestamp in a
log, does not count: see :func:`_may_hold_long_integer`). The standard library
then accepts what it always accepted (NaN, lone surrogates, deep nesting up
to its own limit) and words the error as before. Without orjson installed,
everything goes to ``json``.
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

_DIGIT_MAP = bytes(0x31 if 0x30 <= byte <= 0x39 else 0x30 for byte in range(256))  # digits to 1, the rest 0
_LONG_DIGIT_RUN = b"1" * 19  # the shortest integer orjson may read as a float has 19 digits
_NUMBER_BYTES = frozenset(b"0123456789+-.eE")
_SPACE_BYTES = frozenset(b" \t\n\r")
_BEFORE_VALUE = frozenset(b":[,")
_LOOK_BACK = 64  # bytes looked through for a number's start; past that, a run is taken for a number


def loads(data: bytes, standard: Callable[[bytes], Any]) -> Any:
    """Parse ``data``: through orjson when it gives what ``standard`` would, else through ``standard``.

    Args:
        data: the JSON text, UTF-8.
        standard: the caller's ``json.loads`` call, which also raises the
            caller's errors for text that is not valid.

    Raises:
        Exception: what ``standard`` raises for ``data``.
    """
    if _fast is not None and not _may_hold_long_integer(data):
        try:
            return _fast(data)
        except _REFUSED:
            pass  # not necessarily invalid for json (NaN, a lone surrogate): let it decide
    return standard(data)


def _may_hold_long_integer(data: bytes) -> bool:
    """Whether a run of 19 or more digits in ``data`` may be part of a number, not of a string.

    Only valid JSON matters here (orjson refuses the rest). There, a run is
    in a number when the bytes before it are number bytes (``0-9+-.eE``),
    then JSON whitespace, then ``:``, ``[``, ``,`` or the start of the text.
    A run inside a string may look so too; it is then left to ``json``,
    which is slower but never wrong.
    """
    digits = data.translate(_DIGIT_MAP)
    found = digits.find(_LONG_DIGIT_RUN)
    while found >= 0:
        if _may_be_number(data, digits.rfind(b"0", 0, found) + 1):
            return True
        end = digits.find(b"0", found)  # the first byte after the run
        if end < 0:
            return False
        found = digits.find(_LONG_DIGIT_RUN, end)
    return False


def _may_be_number(data: bytes, first: int) -> bool:
    """Whether the digit run starting at ``first`` may be part of a number token."""
    at = first - 1
    stop = max(at - _LOOK_BACK, -1)
    while at > stop and data[at] in _NUMBER_BYTES:
        at -= 1
    while at > stop and data[at] in _SPACE_BYTES:
        at -= 1
    return at <= stop or data[at] in _BEFORE_VALUE
