"""gzip through ISA-L (python-isal) when it is installed, else through zlib: the same format either way.

ISA-L inflates bundles about 2.5 times and deflates them about 10 times
faster than zlib (``python -m tests.bench.s3`` measures both), which is what
bounds export and import on a small CI machine. Bundles are compressed at
ISA-L's level 1; zlib, the fallback, uses its level 6, about as small.
"""

from __future__ import annotations

import zlib
from typing import Protocol, cast

__all__ = ["ERRORS", "BACKEND", "Inflater", "gzip_compress", "inflater"]


class Inflater(Protocol):
    """An incremental gzip decompressor, as ``zlib.decompressobj(wbits=31)`` returns."""

    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    @property
    def unconsumed_tail(self) -> bytes: ...
    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...


try:
    from isal import igzip, isal_zlib
except ImportError:  # pragma: no cover - isal has wheels wherever the tests run
    BACKEND = "zlib"
    ERRORS: tuple[type[Exception], ...] = (zlib.error,)

    def _compress(raw: bytes) -> bytes:
        return zlib.compress(raw, 6, wbits=31)

    def _inflater() -> Inflater:
        return zlib.decompressobj(wbits=31)

else:
    BACKEND = "isal"
    ERRORS = (zlib.error, cast("type[Exception]", isal_zlib.error))  # typed as an instance in isal's stubs

    def _compress(raw: bytes) -> bytes:
        return igzip.compress(raw, compresslevel=1, mtime=0)

    def _inflater() -> Inflater:
        return isal_zlib.decompressobj(wbits=31)


_GZIP_OS_UNKNOWN = 255  # header byte 9: the libraries write the build platform; fixed, bytes match everywhere


def gzip_compress(raw: bytes) -> bytes:
    """Return ``raw`` as one gzip member with mtime 0 and no file name, the same bytes on every platform."""
    data = bytearray(_compress(raw))
    data[9] = _GZIP_OS_UNKNOWN
    return bytes(data)


def inflater() -> Inflater:
    """A new incremental decompressor for one gzip member (``decompress(data, max_length)``)."""
    return _inflater()
