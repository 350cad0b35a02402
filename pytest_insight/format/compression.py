"""gzip through ISA-L (python-isal) when it is installed, else through zlib: the same format either way.

Every bundle is one pass of ISA-L's level 2: an order of magnitude faster
than zlib's level 6 for slightly larger output on session JSON, and ISA-L
inflates several times faster than zlib too (figures, and the command that
measures them: README, "Performance"). Without ISA-L, zlib's level 1 makes
the same trade. Either way the output is plain gzip: gunzip, DuckDB and
Athena read it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Protocol, cast

__all__ = [
    "BACKEND",
    "ERRORS",
    "GZIP_MAGIC",
    "LEVEL",
    "GzipWriter",
    "Gunzip",
    "Inflater",
    "gzip_compress",
    "inflater",
    "not_gzip",
]


class _Deflater(Protocol):
    """An incremental compressor, as ``zlib.compressobj`` returns."""

    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self, mode: int = ..., /) -> bytes: ...


class Inflater(Protocol):
    """An incremental gzip decompressor, as ``zlib.decompressobj(wbits=31)`` returns."""

    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    @property
    def unconsumed_tail(self) -> bytes: ...
    def decompress(self, data: bytes | memoryview, max_length: int = ..., /) -> bytes: ...


try:
    from isal import igzip, isal_zlib
except ImportError:  # pragma: no cover - isal has wheels wherever the tests run
    BACKEND = "zlib"
    ERRORS: tuple[type[Exception], ...] = (zlib.error,)
    LEVEL = 1

    def _compress(raw: bytes) -> bytes:
        return zlib.compress(raw, LEVEL, wbits=31)

    def _deflater() -> _Deflater:
        return zlib.compressobj(LEVEL, zlib.DEFLATED, 31)

    def _inflater() -> Inflater:
        return zlib.decompressobj(wbits=31)

else:
    BACKEND = "isal"
    ERRORS = (zlib.error, cast("type[Exception]", isal_zlib.error))  # typed as an instance in isal's stubs
    LEVEL = 2

    def _compress(raw: bytes) -> bytes:
        return igzip.compress(raw, compresslevel=LEVEL, mtime=0)

    def _deflater() -> _Deflater:
        return cast("_Deflater", isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, 31))

    def _inflater() -> Inflater:
        return isal_zlib.decompressobj(wbits=31)


_GZIP_OS_UNKNOWN = 255  # header byte 9: the libraries write the build platform; fixed, bytes match everywhere
_OS_BYTE = 9
_GATHER = 1 << 20  # input a GzipWriter compresses at once


def gzip_compress(raw: bytes) -> bytes:
    """Return ``raw`` as one gzip member with mtime 0 and no file name, the same bytes on every platform."""
    data = bytearray(_compress(raw))
    data[9] = _GZIP_OS_UNKNOWN
    return bytes(data)


GZIP_MAGIC = b"\x1f\x8b"
"""The first two bytes of every gzip member."""


def not_gzip(head: bytes) -> str | None:
    """Why data starting with ``head`` cannot be gzip, or None when it may be.

    ISA-L waits for a whole 10-byte header before it complains, so a short
    object of plain text would otherwise pass for a truncated gzip stream.
    """
    if not head or GZIP_MAGIC.startswith(head[:2]):
        return None
    return f"not gzip data (it starts with {head[:8]!r}); a bundle is gzipped JSON Lines"


def inflater() -> Inflater:
    """A new incremental decompressor for one gzip member (``decompress(data, max_length)``)."""
    return _inflater()


_IN_STEP = 64 << 10  # input handed to the inflater at once: what each call copies back as unconsumed_tail
_OUT_STEP = 1 << 20  # most bytes inflated per call, so a bomb never allocates more than this at once


class Gunzip:
    """Inflates a gzip stream fed in chunks of any size, in time linear in its size.

    Concatenated members form one stream, as gunzip reads them. Each piece
    it yields is at most 1 MiB, however well the input compresses (gzip
    bombs). A chunk is handed to the inflater 64 KiB at a time: an inflater
    given more input than it can use returns the rest as a new bytes object
    on every call, which made inflating one large chunk quadratic.
    """

    def __init__(self) -> None:
        self._inflate = _inflater()
        self.in_member = False
        """Whether the stream so far ends inside a member: at the end of the input, it was truncated."""

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        """Inflate the next chunk of the stream; yield what it holds, piece by piece.

        Raises:
            Exception: one of :data:`ERRORS`, for data that is not gzip or is corrupt.
        """
        view = memoryview(chunk)
        for start in range(0, len(view), _IN_STEP):
            yield from self._inflate_slice(view[start : start + _IN_STEP])

    def _inflate_slice(self, data: bytes | memoryview) -> Iterator[bytes]:
        inflate = self._inflate
        while data:
            self.in_member = True
            piece = inflate.decompress(data, _OUT_STEP)
            data = inflate.unconsumed_tail
            if piece:
                yield piece
            while len(piece) == _OUT_STEP and not data and not inflate.eof:
                piece = inflate.decompress(b"", _OUT_STEP)  # output still held inside the inflater
                if piece:
                    yield piece
            if inflate.eof:  # the next member, if any, starts in what this one did not use
                data = inflate.unused_data
                inflate = self._inflate = _inflater()
                self.in_member = False


class GzipWriter:
    """One gzip member made in pieces, so a large file is never whole in memory.

    Pieces are gathered a megabyte at a time before they are compressed:
    ISA-L compresses each call's input on its own, so many small pieces
    would compress worse, and an input smaller than a megabyte gets the very
    bytes of :func:`gzip_compress`. Call :meth:`compress` with each piece and
    write what it returns, then write what :meth:`flush` returns.
    """

    def __init__(self) -> None:
        self._pending = bytearray()
        self._deflater = _deflater()
        self._written = 0

    def compress(self, data: bytes) -> bytes:
        """Take ``data``; return the compressed bytes ready so far (often none)."""
        self._pending += data
        if len(self._pending) < _GATHER:
            return b""
        pending, self._pending = bytes(self._pending), bytearray()
        return self._out(self._deflater.compress(pending))

    def flush(self) -> bytes:
        """End the member: return the rest of it."""
        pending, self._pending = bytes(self._pending), bytearray()
        head = self._out(self._deflater.compress(pending)) if pending else b""
        return head + self._out(self._deflater.flush())

    def _out(self, data: bytes) -> bytes:
        start, self._written = self._written, self._written + len(data)
        if start <= _OS_BYTE < self._written:
            fixed = bytearray(data)
            fixed[_OS_BYTE - start] = _GZIP_OS_UNKNOWN
            return bytes(fixed)
        return data
