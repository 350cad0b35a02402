"""Import sources on the local disk: one file (bundle, JSON lines, export document, 0.9 file) or a directory.

A file's format comes from its content, not its name. A directory is read
as the bundle layout where it follows it (partitions outside the import's
scope are skipped, a session outside its partition is an error record) and
as loose bundle and JUnit files where it does not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.to_thread

from pytest_insight.errors import InvalidDataError, StorageError, file_error
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
from pytest_insight.storage.scope import Scope

__all__ = ["BUNDLE_SUFFIXES", "JUNIT_SUFFIX", "DirectorySource", "FileSource"]

BUNDLE_SUFFIXES = (BUNDLE_SUFFIX, ".json.gz")
JUNIT_SUFFIX = ".xml"
_CHUNK = 1 << 20


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
            if path.name.endswith(JUNIT_SUFFIX):
                from pytest_insight.exchange.junit_files import (
                    JUnitSource,  # defusedxml only where XML is read
                )

                items = JUnitSource(path).records(scope, limits)
            else:
                items = FileSource(path, _layout_key(path)).records(scope, limits)
            async for item in items:
                yield item
            if progress is not None:
                progress("transfer", done, len(paths))

    def _list(self, scope: Scope) -> list[Path]:
        try:
            found = [
                path
                for path in (self.root.glob(self.pattern) if self.pattern else self.root.rglob("*"))
                if path.name.endswith((*BUNDLE_SUFFIXES, JUNIT_SUFFIX))
                and not any(part.startswith(".") for part in path.relative_to(self.root).parts)
                and path.is_file()
            ]
        except OSError as exc:
            raise StorageError(
                f"{self.root}: cannot list: {exc.strerror or exc}", uri=str(self.root)
            ) from exc
        return sorted(path for path in found if _in_scope(path, scope))


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
