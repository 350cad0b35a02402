"""Parse JSON through orjson where its result is the standard library's, else through ``json``.

A session of a thousand results is 300 KB of JSON, and parsing it was half
of decoding a real session. orjson parses it in under half the time. Its
result equals ``json.loads``'s except for integers beyond 64 bits, which it
reads as floats; those need a run of 19 digits, so a text holding one is
left to ``json``, as is every text orjson refuses: the standard library
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


def loads(data: bytes, standard: Callable[[bytes], Any]) -> Any:
    """Parse ``data``: through orjson when it gives what ``standard`` would, else through ``standard``.

    Args:
        data: the JSON text, UTF-8.
        standard: the caller's ``json.loads`` call, which also raises the
            caller's errors for text that is not valid.

    Raises:
        Exception: what ``standard`` raises for ``data``.
    """
    if _fast is not None and _LONG_DIGIT_RUN not in data.translate(_DIGIT_MAP):
        try:
            return _fast(data)
        except _REFUSED:
            pass  # not necessarily invalid for json (NaN, a lone surrogate): let it decide
    return standard(data)
