"""Where exports go and imports come from: files, directories and registered URI schemes.

A *source* yields decoded sessions and error records; a *sink* writes
encoded sessions. Local paths and ``file://`` URIs are built in:

- a ``.json`` file: one export document (import also reads the 0.9 formats);
- a ``.jsonl.gz`` / ``.json.gz`` file: one bundle;
- a directory: the bundle layout ``v1/sut=<sut>/date=<day>/<id>.jsonl.gz``.

Other schemes come from the one scheme registry,
:data:`pytest_insight.storage.uris.SCHEMES`: ``s3`` is registered as
``pytest_insight.storage.s3:exchange_location``, so the S3 backend plugs in
by defining that callable (``uri -> object with records() and/or write()``);
:func:`register_location` (re-exported here) adds one.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import anyio
import anyio.to_thread

from pytest_insight.errors import (
    ConfigurationError,
    InvalidDataError,
    NotFoundError,
    StorageError,
    file_error,
)
from pytest_insight.exchange.file_sinks import BundleFileSink, DirectorySink, DocumentSink
from pytest_insight.format.bundle import EncodedSession
from pytest_insight.format.compression import ERRORS, GZIP_MAGIC, Gunzip
from pytest_insight.format.decoding import (
    BundleDecoder,
    DecodedItem,
    Limits,
    SessionLine,
    SourceItem,
    decode_document,
)
from pytest_insight.format.layout import BUNDLE_SUFFIX, BundleKey, encode_sut, parse_bundle_key
from pytest_insight.progress import ProgressCallback
from pytest_insight.storage.base import Scope
from pytest_insight.storage.uris import location_factory, location_schemes, register_location, split_uri

__all__ = [
    "Sink",
    "file_target",
    "Source",
    "open_sink",
    "open_source",
    "register_location",
]

_CHUNK = 1 << 20
_BUNDLE_SUFFIXES = (BUNDLE_SUFFIX, ".json.gz")
_JUNIT_SUFFIX = ".xml"
_GLOB = re.compile(r"[*?\[]")


@runtime_checkable
class Source(Protocol):
    """Where an import reads from."""

    @property
    def uri(self) -> str:
        """The location, as named in messages."""
        ...

    def records(
        self, scope: Scope, limits: Limits, progress: ProgressCallback | None = None
    ) -> AsyncIterator[SourceItem]:
        """Yield the sessions (at least those in ``scope``) and an error record per bad line or object.

        A source made of many objects reports ``("list", n, None)`` as it finds
        them and ``("transfer", n, found)`` as it reads them.

        Raises:
            StorageError: the location cannot be read (an I/O failure, not bad data).
        """
        ...


@runtime_checkable
class Sink(Protocol):
    """Where an export writes to."""

    @property
    def uri(self) -> str:
        """The location, as named in messages."""
        ...

    async def write(
        self, sessions: Sequence[EncodedSession], progress: ProgressCallback | None = None
    ) -> int:
        """Write ``sessions``; return how many were exported.

        Raises:
            StorageError: the location cannot be written.
        """
        ...


def _resolve(location: str | os.PathLike[str]) -> Path | Any:
    text = os.fspath(location)
    scheme, rest = split_uri(text, location_schemes())
    if not scheme:
        return Path(text).expanduser()
    if scheme == "file":
        return Path(rest).expanduser()
    try:
        factory = location_factory(scheme)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{text}: {exc}") from exc
    return factory(f"{scheme}://{rest}")


def open_source(location: str | os.PathLike[str] | Source) -> Source:
    """Return the import source at ``location`` (a source given as it is).

    Raises:
        NotFoundError: a local path that does not exist.
        ConfigurationError: an unsupported scheme, or one that cannot be read from.
    """
    if isinstance(location, Source):
        return location
    resolved = _resolve(location)
    if not isinstance(resolved, Path):
        if not isinstance(resolved, Source):
            raise ConfigurationError(f"{os.fspath(location)}: cannot import from this location")
        return resolved
    if resolved.is_dir():
        return DirectorySource(resolved)
    if resolved.is_file():
        if resolved.name.lower().endswith(_JUNIT_SUFFIX):
            from pytest_insight.exchange.junit_files import JUnitSource  # defusedxml only where XML is read

            return JUnitSource(resolved, whole=True)
        return FileSource(resolved, whole=True)
    if resolved.exists():
        raise ConfigurationError(f"{resolved}: not a file or directory")
    if _GLOB.search(str(resolved)):
        # "reports/*.xml" quoted so the shell left it alone: the files it matches, read as a directory's
        base = next((p for p in resolved.parents if not _GLOB.search(str(p))), Path())
        return DirectorySource(base, str(resolved.relative_to(base)))
    raise NotFoundError(f"{resolved}: no such file or directory", uri=str(resolved))


def file_target(path: Path) -> Path:
    """``path``, an export file whose directory exists: a typo in the path must not create directories.

    Raises:
        NotFoundError: the directory does not exist (only a directory target is created).
    """
    if not path.parent.is_dir():
        raise NotFoundError(
            f"{path}: no such directory {path.parent} (only a directory target is created)", uri=str(path)
        )
    return path


def open_sink(location: str | os.PathLike[str] | Sink) -> Sink:
    """Return the export sink at ``location``, chosen by suffix (see the module docstring); a sink as it is.

    Raises:
        ConfigurationError: an unsupported scheme or file type.
        NotFoundError: a file target whose directory does not exist.
    """
    if isinstance(location, Sink):
        return location
    resolved = _resolve(location)
    if not isinstance(resolved, Path):
        if not isinstance(resolved, Sink):
            raise ConfigurationError(f"{os.fspath(location)}: cannot export to this location")
        return resolved
    name = resolved.name.lower()
    if resolved.is_dir():
        return DirectorySink(resolved)
    if name.endswith((".json", _JUNIT_SUFFIX, *_BUNDLE_SUFFIXES, ".gz")):
        file_target(resolved)
        if name.endswith(_JUNIT_SUFFIX):
            from pytest_insight.exchange.junit_files import JUnitSink

            return JUnitSink(resolved)
        return DocumentSink(resolved) if name.endswith(".json") else BundleFileSink(resolved)
    if resolved.exists() or resolved.suffix:
        raise ConfigurationError(
            f"{resolved}: unsupported export target (use a .json, .jsonl.gz or .xml file, or a directory)"
        )
    return DirectorySink(resolved)


# -- sources ----------------------------------------------------------------


class FileSource:
    """One file: a bundle, uncompressed JSON Lines, an export document or a 0.9 file.

    The format comes from the content (gzip magic, else JSON); a file named
    ``.jsonl`` / ``.ndjson`` is read as uncompressed lines.
    """

    def __init__(self, path: Path, partition: BundleKey | None = None, *, whole: bool = False) -> None:
        """Read ``path``; when ``partition`` is given, a session outside it is an error record.

        ``whole``: the file is the whole import, so content that is not an
        export at all (another JSON file, a tarball, a binary) raises instead
        of being counted as one bad record.
        """
        self.path = path
        self.partition = partition
        self.whole = whole

    @property
    def uri(self) -> str:
        return str(self.path)

    async def records(
        self, scope: Scope, limits: Limits, progress: ProgressCallback | None = None
    ) -> AsyncIterator[SourceItem]:
        import aiofiles  # here, not at the top: a plugin's save never reads files and skips its import

        source = str(self.path)
        try:
            stream = await aiofiles.open(self.path, "rb")
            try:
                head = await stream.read(_CHUNK)
                if not head.startswith(GZIP_MAGIC) and not self.path.name.endswith((".jsonl", ".ndjson")):
                    data = head + await stream.read(max(limits.max_bytes + 1 - len(head), 0))
                    try:
                        for item in decode_document(data, source, limits):
                            yield self._checked(item, None)
                    except InvalidDataError as exc:
                        if self.whole:
                            raise
                        yield exc
                    return
                if self.whole and not _starts_like_lines(head):
                    raise InvalidDataError(
                        "not an export: the content is not JSON lines (a bundle is gzipped JSON lines)",
                        source=source,
                    )
                decoder = BundleDecoder(source, limits, compressed=head.startswith(GZIP_MAGIC))
                chunk = head
                try:
                    while chunk:
                        for item in decoder.feed(chunk):
                            yield self._checked(item, decoder.line, decoder.last_line)
                        chunk = await stream.read(_CHUNK)
                    for item in decoder.finish():
                        yield self._checked(item, decoder.line, decoder.last_line)
                except InvalidDataError as exc:
                    yield exc
            finally:
                # shielded: a cancelled import must still close the file (aiofiles' close is a thread call)
                with anyio.CancelScope(shield=True):
                    await stream.close()
        except OSError as exc:
            raise file_error(exc, source) from exc

    def _checked(self, item: DecodedItem, line: int | None, text: bytes | None = None) -> SourceItem:
        """Refuse a session whose SUT or UTC start day is not the partition its file lies in.

        The path is what narrows an import by SUT and date, so content that
        disagrees with it (a file moved or renamed) cannot be trusted either way.
        A session read from a line (``text``) comes with it.
        """
        if isinstance(item, InvalidDataError):
            return item
        misplaced = self.partition and self.partition.misplaced(item, str(self.path), line)
        return misplaced or (item if text is None else SessionLine(item, text))


class DirectorySource:
    """Every bundle (``*.jsonl.gz``, ``*.json.gz``) and JUnit report (``*.xml``) under a directory, or a glob.

    Bundles inside the layout are skipped when their SUT or day partition
    lies outside the scope, and a session in one that does not belong to its
    partition is an error record; other bundle files are always read. Files
    not named like a bundle (a README, hidden and temporary files) and hidden
    directories (``.hypothesis``, ``.git``) are ignored.
    """

    def __init__(self, root: Path, pattern: str | None = None) -> None:
        """Read the files under ``root``, or only those ``pattern`` (a glob, ``**`` included) matches."""
        self.root = root
        self.pattern = pattern

    @property
    def uri(self) -> str:
        return str(self.root / self.pattern) if self.pattern else str(self.root)

    async def records(
        self, scope: Scope, limits: Limits, progress: ProgressCallback | None = None
    ) -> AsyncIterator[SourceItem]:
        paths = await anyio.to_thread.run_sync(self._list, scope)
        if progress is not None:
            progress("list", len(paths), None)
        for done, path in enumerate(paths, start=1):
            source: Source = (
                _junit(path) if path.name.endswith(_JUNIT_SUFFIX) else FileSource(path, _layout_key(path))
            )
            async for item in source.records(scope, limits):
                yield item
            if progress is not None:
                progress("transfer", done, len(paths))

    def _list(self, scope: Scope) -> list[Path]:
        try:
            found = [
                path
                for path in (self.root.glob(self.pattern) if self.pattern else self.root.rglob("*"))
                if path.name.endswith((*_BUNDLE_SUFFIXES, _JUNIT_SUFFIX))
                and not any(part.startswith(".") for part in path.relative_to(self.root).parts)
                and path.is_file()
            ]
        except OSError as exc:
            raise StorageError(
                f"{self.root}: cannot list: {exc.strerror or exc}", uri=str(self.root)
            ) from exc
        return sorted(path for path in found if _in_scope(path, scope))


def _junit(path: Path) -> Source:
    from pytest_insight.exchange.junit_files import JUnitSource

    return JUnitSource(path)


def _starts_like_lines(head: bytes) -> bool:
    """Whether ``head`` (gzipped or not) starts as JSON lines do: with ``{`` after any blank space."""
    if head.startswith(GZIP_MAGIC):
        try:
            head = next(Gunzip().feed(head), b"")  # the stream's first piece is enough
        except ERRORS:
            return True  # corrupt gzip: the decoder names the problem
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"")


def _layout_key(path: Path) -> BundleKey | None:
    try:
        return parse_bundle_key("/".join(path.parts[-4:]))
    except InvalidDataError:
        return None


def _in_scope(path: Path, scope: Scope) -> bool:
    key = _layout_key(path)
    if key is None:
        return True  # not in the layout: nothing to narrow by, read it
    if scope.sut_name is not None and key.sut_part.casefold() != encode_sut(scope.sut_name).casefold():
        return False  # casefold: a case-insensitive filesystem may hold "sut=API" for "api"
    if scope.since is not None and key.day < scope.since.date():
        return False
    return scope.until is None or key.day <= scope.until.date()
