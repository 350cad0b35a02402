"""Decoding bundles and export documents: streaming, bounded, and precise about what is bad.

:class:`BundleDecoder` inflates gzip incrementally and yields each line's
session, or an :class:`~pytest_insight.errors.InvalidDataError` naming the
source, line and field, and goes on; :class:`Limits` bounds the
decompressed size of a source and of a line (gzip bombs) and the number of
bad records reported. :func:`decode_document` reads the ``.json`` export
document and the pytest-insight 0.9 files (``{"sessions": [...]}`` and a
bare list).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from pytest_insight.errors import BundleTooLargeError, ConfigurationError, InvalidDataError
from pytest_insight.format import compression
from pytest_insight.format.lines import SessionLine
from pytest_insight.model.fields import kind
from pytest_insight.model.lenient import read_line
from pytest_insight.model.sessions import SCHEMA_VERSION, TestSession

__all__ = [
    "BundleDecoder",
    "DecodedItem",
    "Limits",
    "SessionLine",
    "SourceItem",
    "decode_document",
    "iter_bundle",
]

_BLANK_RUN = re.compile(rb"\n*")  # always matches; a [^\n]+ search costs ~10 ns a byte on blank runs
_TOO_DEEP = "not valid JSON: nested too deeply"

T = TypeVar("T")

DecodedItem = TestSession | InvalidDataError
"""What decoding yields: a valid session, or the error of one bad line or source."""


SourceItem = DecodedItem | SessionLine
"""What an import source yields: a decoded item, or a session with its line."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on decoding, against gzip bombs and runaway lines.

    Attributes:
        max_bytes: most decompressed bytes read from one source (default 1 GiB).
        max_line_bytes: longest line (one session) accepted (default 64 MiB).
        max_errors: most bad sessions reported from one source; past it the
            source is given up with one more error (default 100).
    """

    max_bytes: int = 1 << 30
    max_line_bytes: int = 64 << 20
    max_errors: int = 100

    @classmethod
    def from_env(cls) -> Limits:
        """Read ``PYTEST_INSIGHT_MAX_BUNDLE_BYTES`` / ``PYTEST_INSIGHT_MAX_LINE_BYTES``, else defaults.

        Raises:
            ConfigurationError: a variable is set but is not a positive integer.
        """
        default = cls()
        return cls(
            max_bytes=_env_int("PYTEST_INSIGHT_MAX_BUNDLE_BYTES", default.max_bytes),
            max_line_bytes=_env_int("PYTEST_INSIGHT_MAX_LINE_BYTES", default.max_line_bytes),
        )


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise ConfigurationError(f"{name}={raw!r}: expected a positive number of bytes")
    return int(raw)


# -- encoding ---------------------------------------------------------------


class BundleDecoder:
    """Incremental decoder: feed bytes as they arrive, get sessions and per-line errors.

    Errors of one line are yielded as :class:`InvalidDataError` records
    (``source:line: field: reason``) and decoding goes on; errors of the
    whole source (corrupt or truncated gzip, size limits) are raised, after
    every session before them was yielded.
    """

    def __init__(self, source: str, limits: Limits | None = None, *, compressed: bool = True) -> None:
        self.source = source
        self.limits = limits or Limits()
        self._compressed = compressed
        self._gunzip = compression.Gunzip() if compressed else None
        self._pending = bytearray()
        self._line = 0
        self._total = 0
        self._fed = False
        self._errors = 0
        self.last_line = b""
        """The bytes of the last line decoded: the line of the session just yielded."""

    @property
    def line(self) -> int:
        """The number of the last line decoded: the line of the item just yielded."""
        return self._line

    def feed(self, chunk: bytes) -> Iterator[DecodedItem]:
        """Decode the next chunk of the source.

        Raises:
            BundleTooLargeError: a size limit was passed.
            InvalidDataError: the data is not gzip, or is corrupt.
        """
        if chunk and not self._fed:
            self._fed = True
            if self._gunzip is not None and (reason := compression.not_gzip(chunk)) is not None:
                raise InvalidDataError(reason, source=self.source)
        if self._gunzip is None:
            yield from self._text(chunk)
            return
        pieces = self._gunzip.feed(chunk)
        while True:
            try:
                piece = next(pieces, None)
            except compression.ERRORS as exc:
                raise InvalidDataError(f"corrupt gzip data: {exc}", source=self.source) from None
            if piece is None:
                return
            yield from self._text(piece)

    def finish(self) -> Iterator[DecodedItem]:
        """Decode what remains at the end of the source.

        Raises:
            InvalidDataError: the source is empty or its gzip stream is truncated.
        """
        if not self._fed:
            raise InvalidDataError("empty file", source=self.source)
        if self._gunzip is not None and self._gunzip.in_member:
            raise InvalidDataError(
                f"truncated gzip stream after {self._line} complete lines", source=self.source
            )
        if self._pending:
            line, self._pending = bytes(self._pending), bytearray()
            self._line += 1
            yield from self._decode_line(line)

    def _text(self, piece: bytes) -> Iterator[DecodedItem]:
        self._total += len(piece)
        if self._total > self.limits.max_bytes:
            raise BundleTooLargeError(
                f"more than {self.limits.max_bytes} bytes once decompressed (limit)", source=self.source
            )
        position = 0
        if self._pending:  # the line the previous piece left open
            end = piece.find(b"\n")
            if end < 0:
                self._pending += piece
                self._check_line(self._pending, self._line + 1)
                return
            self._pending += piece[:end]
            line, self._pending = bytes(self._pending), bytearray()
            self._line += 1
            self._check_line(line)
            yield from self._decode_line(line)
            position = end + 1
        while True:
            # a run of blank lines is skipped in one C loop, so a bomb of newlines costs no Python loop
            start = _BLANK_RUN.match(piece, position).end()  # type: ignore[union-attr]
            self._line += start - position
            if start == len(piece):
                return
            end = piece.find(b"\n", start)
            if end < 0:
                self._pending += piece[start:]
                self._check_line(self._pending, self._line + 1)
                return
            self._line += 1
            line = piece[start:end]
            self._check_line(line)
            yield from self._decode_line(line)
            position = end + 1

    def _check_line(self, line: bytes | bytearray, number: int | None = None) -> None:
        if len(line) > self.limits.max_line_bytes:
            raise BundleTooLargeError(
                f"line longer than {self.limits.max_line_bytes} bytes (limit)",
                source=self.source,
                line=number or self._line,
            )

    def _decode_line(self, line: bytes) -> Iterator[DecodedItem]:
        if not line.strip():
            return
        try:
            session = read_line(line)
        except InvalidDataError as exc:
            self._errors += 1
            if self._errors > self.limits.max_errors:  # a bomb of bad lines costs microseconds each
                raise InvalidDataError(
                    f"more than {self.limits.max_errors} bad lines (limit): the rest is not read",
                    source=self.source,
                    line=self._line,
                ) from None
            yield exc.located(self.source, self._line)
            return
        self.last_line = line
        yield session


def iter_bundle(
    chunks: Iterable[bytes], source: str, limits: Limits | None = None, *, compressed: bool = True
) -> Iterator[DecodedItem]:
    """Decode a bundle from byte chunks; a source-wide error ends it as the last record."""
    decoder = BundleDecoder(source, limits, compressed=compressed)
    try:
        for chunk in chunks:
            yield from decoder.feed(chunk)
        yield from decoder.finish()
    except InvalidDataError as exc:
        yield exc


def decode_document(data: bytes, source: str, limits: Limits | None = None) -> Iterator[DecodedItem]:
    """Decode a JSON export document, a 0.9 storage file or a 0.9 bare-list export.

    Accepted shapes: ``{"schema_version", "exported_at", "sessions": [...]}``,
    ``{"sessions": [...]}`` and ``[...]``. A bad session is yielded as an
    error record naming its index and field; the others still decode.

    Raises:
        BundleTooLargeError: ``data`` is above the size limit.
        InvalidDataError: the data is not JSON or not one of these shapes.
    """
    bounds = limits or Limits()
    if len(data) > bounds.max_bytes:
        raise BundleTooLargeError(f"more than {bounds.max_bytes} bytes (limit)", source=source)
    try:
        shaped = _DOCUMENT.decode(data)
    except (msgspec.MsgspecError, RecursionError):
        shaped = None  # not plainly one of the shapes: parsed below, which words what is wrong
    if shaped is not None:
        if isinstance(shaped, _Document):
            version = shaped.schema_version
            if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
                raise InvalidDataError(
                    f"schema version {version} is newer than this release reads ({SCHEMA_VERSION})",
                    source=source,
                    field="schema_version",
                )
        lines = shaped.sessions if isinstance(shaped, _Document) else shaped
        prefix = "sessions" if isinstance(shaped, _Document) else ""
        # each session's own text: canonical ones go straight through the schema
        yield from _records((bytes(raw) for raw in lines), read_line, source, prefix, bounds)
        return
    try:
        text = data.decode("utf-8-sig")
        if not text.strip():
            raise InvalidDataError("empty file", source=source)
        document = json.loads(text)
    except UnicodeDecodeError:
        raise InvalidDataError("not valid UTF-8", source=source) from None
    except json.JSONDecodeError as exc:
        raise InvalidDataError(f"not valid JSON: {exc.msg}", source=source, line=exc.lineno) from None
    except RecursionError:
        raise InvalidDataError(_TOO_DEEP, source=source) from None
    if isinstance(document, dict) and "sessions" in document and not isinstance(document["sessions"], list):
        raise InvalidDataError(
            f"expected a list of sessions, got {kind(document['sessions'])}", source=source, field="sessions"
        )
    prefix = "sessions"
    if isinstance(document, dict) and isinstance(document.get("sessions"), list):
        version = document.get("schema_version", 0)
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise InvalidDataError(
                f"schema version {version} is newer than this release reads ({SCHEMA_VERSION})",
                source=source,
                field="schema_version",
            )
        records: list[Any] = document["sessions"]
    elif isinstance(document, list):
        records, prefix = document, ""
    else:
        got = (
            f"an object with keys {sorted(document)[:5]}"
            if isinstance(document, dict)
            else type(document).__name__
        )
        raise InvalidDataError(
            f'expected an export document {{"sessions": [...]}} or a list of sessions, got {got}',
            source=source,
        )
    yield from _records(records, TestSession.from_dict, source, prefix, bounds)


class _Document(msgspec.Struct):
    """An export document (or a 0.9 storage file): each session kept as its JSON text."""

    sessions: list[msgspec.Raw]
    schema_version: Any = 0


_DOCUMENT = msgspec.json.Decoder(_Document | list[msgspec.Raw])


def _records(
    records: Iterable[T],
    read: Callable[[T], TestSession],
    source: str,
    prefix: str,
    bounds: Limits,
) -> Iterator[DecodedItem]:
    """Read each record of a document; a bad one is an error naming its index and field."""
    errors = 0
    for index, record in enumerate(records):
        try:
            yield read(record)
        except InvalidDataError as exc:
            errors += 1
            if errors > bounds.max_errors:
                raise InvalidDataError(
                    f"more than {bounds.max_errors} bad sessions (limit): the rest is not read", source=source
                ) from None
            where = f"{prefix}[{index}]"
            yield InvalidDataError(
                exc.reason, source=source, field=f"{where}.{exc.field}" if exc.field else where
            )
