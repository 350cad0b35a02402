"""Local export targets: a JSON document, one bundle file, or the bundle layout in a directory.

Every file is written atomically (temporary file in the same directory,
fsync, ``os.replace``), so a reader never sees half of one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path

import anyio.to_thread

from pytest_insight.errors import StorageError
from pytest_insight.files import write_atomic
from pytest_insight.format.bundle import EncodedSession, encode_bundle, ordered, partition
from pytest_insight.format.compression import GzipWriter
from pytest_insight.format.layout import bundle_key
from pytest_insight.model.sessions import SCHEMA_VERSION
from pytest_insight.progress import ProgressCallback
from pytest_insight.tasks import run_concurrently

__all__ = ["BundleFileSink", "DirectorySink", "DocumentSink"]


_WRITERS = 8  # bundle files written at once: fsync waits overlap


class _FileSink:
    """A sink at one local path, named by it in messages."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def uri(self) -> str:
        return str(self.path)


class DocumentSink(_FileSink):
    """A ``.json`` export document: ``{"exported_at", "schema_version", "sessions": [...]}``.

    Written a session at a time: the document is never whole in memory.
    """

    async def write(
        self, sessions: Sequence[EncodedSession], progress: ProgressCallback | None = None
    ) -> int:
        stamp = datetime.now(UTC).isoformat()
        head = f'{{"exported_at":"{stamp}","schema_version":{SCHEMA_VERSION},"sessions":['.encode()

        def pieces() -> Iterator[bytes]:
            yield head
            for number, item in enumerate(ordered(sessions)):
                yield (b",\n" if number else b"\n") + item.line
            yield b"\n]}\n" if sessions else b"]}\n"

        await anyio.to_thread.run_sync(write_atomic, self.path, pieces())
        if progress is not None:
            progress("write", len(sessions), len(sessions))
        return len(sessions)


class BundleFileSink(_FileSink):
    """One bundle file holding every exported session, compressed a session at a time."""

    async def write(
        self, sessions: Sequence[EncodedSession], progress: ProgressCallback | None = None
    ) -> int:
        def pieces() -> Iterator[bytes]:
            gzip = GzipWriter()
            for item in ordered(sessions):
                yield gzip.compress(item.line + b"\n")
            yield gzip.flush()

        await anyio.to_thread.run_sync(write_atomic, self.path, pieces())
        if progress is not None:
            progress("write", len(sessions), len(sessions))
        return len(sessions)


class DirectorySink:
    """The bundle layout in a local directory: one bundle per SUT and UTC day.

    Bundle names come from their content, so writing the same sessions
    again finds every bundle present and writes nothing.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def uri(self) -> str:
        return str(self.root)

    async def write(
        self, sessions: Sequence[EncodedSession], progress: ProgressCallback | None = None
    ) -> int:
        done = created = 0
        await anyio.to_thread.run_sync(self._make_root)
        in_flight = anyio.Semaphore(_WRITERS)  # bundles between encoding and their file's fsync

        async def put(sut_name: str, day: date, members: Sequence[EncodedSession]) -> None:
            nonlocal done, created
            async with in_flight:
                bundle = await anyio.to_thread.run_sync(encode_bundle, members)
                target = self.root / bundle_key(sut_name, day, bundle.bundle_id)
                new = await anyio.to_thread.run_sync(self._put, target, bundle.data)
            created += new  # not ``created += await ...``: that reads ``created`` before the wait
            done += bundle.count
            if progress is not None:
                progress("write", done, len(sessions))

        groups = sorted(partition(sessions).items())
        await run_concurrently([partial(put, sut_name, day, members) for (sut_name, day), members in groups])
        if progress is not None:
            progress("new bundles", created, len(groups))
        return done

    def _make_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"{self.root}: cannot create: {exc.strerror or exc}", uri=str(self.root)
            ) from exc

    def _put(self, target: Path, data: bytes) -> bool:
        """Write one bundle file; False when it was already there."""
        if not target.resolve().is_relative_to(self.root.resolve()):
            raise StorageError(f"{target}: bundle path escapes {self.root}", uri=str(target))
        if target.is_file():
            # the name is the hash of the content: this bundle is there, whichever compressor wrote it
            return False
        write_atomic(target, data)
        return True
