"""The local JSON store: one file per session in a directory.

Layout under the store's root::

    <root>/.lock                                  flock'd by every writer; never deleted
    <root>/sessions/<2 hex>/<64 hex>.json         one session: its canonical bundle line + newline
    <root>/staging/<uuid>/<64 hex>.json           a transaction's new session files
    <root>/staging/<uuid>/COMMIT                  its commit marker: {"put": [...], "delete": [...]}

A session's file name is the SHA-256 of its id, so no id can name a path
outside the store (``../``, ``/``, NUL) and ids that differ only in letter
case never collide on case-insensitive filesystems. Saving one session
touches only its own file, whatever the store holds.

Writes: a transaction holds ``.lock`` from its first lookup to its commit.
It stages each new file in its own staging directory (fsync'd), then commits
by writing the ``COMMIT`` marker atomically (temporary file, fsync,
``os.replace``), then rolls forward: moves every staged file into place with
``os.replace``, unlinks the deleted files and removes its staging directory.
The marker is the commit point: a writer killed before it leaves a staging
directory without a marker, which the next writer discards; a writer killed
after it leaves one with a marker, which the next writer rolls forward (every
step is idempotent). So a batch is stored entirely or not at all. A
transaction that only writes one session skips the marker: its one rename is
atomic by itself.

Reads take no lock: every session file appears and changes by ``os.replace``,
so a reader sees a whole file or none (a reader racing a live commit may see
part of that batch). A reader that finds a commit marker a killed writer left
takes the lock and rolls it forward first, so a crash never shows half a
batch. Anything in ``sessions/`` that is not named like a session file is
ignored.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from pytest_insight.core.decoding import SessionLine
from pytest_insight.core.models import TestSession
from pytest_insight.errors import (
    ConfigurationError,
    InsightError,
    SessionExistsError,
    StorageError,
)
from pytest_insight.storage import journal
from pytest_insight.storage.base import EVERYTHING, Scope
from pytest_insight.storage.locking import DEFAULT_LOCK_TIMEOUT, FileLock
from pytest_insight.storage.session_files import decode_file, encode_file, is_session_file, session_file_name

__all__ = ["LocalBackend", "session_file_name"]

T = TypeVar("T")

_CHUNK = 256  # files per worker-thread hop
_WRITERS = 8  # worker threads writing (and fsyncing) staged files at once


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class LocalBackend:
    """Sessions as JSON files under ``root`` (see the module docstring for the layout).

    Args:
        root: the store's directory; created on the first write.
        lock_timeout: seconds a transaction waits for the store's lock.
        durable: fsync files and directories so that commits survive a power
            loss too. Without it a commit still survives the writer's own
            crash (SIGKILL) intact; turn it off only for scratch stores and
            benchmarks that fill a store fast.

    Raises:
        ConfigurationError: ``root`` is a file (for example a pytest-insight
            0.9 storage file), not a store directory.
    """

    def __init__(
        self, root: Path, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, durable: bool = True
    ) -> None:
        self.root = Path(root).absolute()
        self.lock_timeout = lock_timeout
        self.durable = durable
        self.sessions_dir = self.root / "sessions"
        self.staging_dir = self.root / "staging"
        self.lock_path = self.root / ".lock"
        self._check_root()

    def _check_root(self) -> None:
        if not self.root.is_file():
            return
        with self.root.open("rb") as file:
            start = file.read(512).lstrip()
        if start[:1] in (b"{", b"["):  # 0.9 kept {"sessions": [...]} or a bare list in one file
            raise ConfigurationError(
                f"{self.root} is a pytest-insight 0.9 storage file; "
                f"import it with `insight import {self.root}`"
            )
        raise ConfigurationError(f"{self.root} is a file, not a pytest-insight store directory")

    @property
    def uri(self) -> str:
        return f"file://{self.root}"

    def path_for(self, session_id: str) -> Path:
        """Return where the session with this id is (or would be) stored."""
        return self._stored(session_file_name(session_id))

    def _stored(self, name: str) -> Path:
        return self.sessions_dir / name[:2] / name

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking filesystem work in a worker thread, translating OS errors."""
        try:
            return await anyio.to_thread.run_sync(function, *args)
        except InsightError:
            raise
        except OSError as exc:
            where = exc.filename if exc.filename is not None else self.root
            raise StorageError(f"{where}: {exc.strerror or exc}", uri=self.uri) from exc

    # -- reading ---------------------------------------------------------------

    def _finish_commits(self) -> None:
        """Roll forward a commit a killed writer left half done, so no reader sees part of a batch.

        Takes the lock only when a commit marker is waiting (a live writer
        holds the lock until its roll-forward ends); a store this process
        cannot lock (read-only) is read as it is.
        """
        try:
            with os.scandir(self.staging_dir) as entries:
                waiting = any((Path(entry.path) / journal.MARKER).is_file() for entry in entries)
        except (FileNotFoundError, NotADirectoryError):
            return
        if not waiting or not os.access(self.root, os.W_OK):
            return
        lock = FileLock(self.lock_path, timeout=self.lock_timeout)
        lock.acquire()
        try:
            self.recover()
        finally:
            lock.release()

    def _list_files(self) -> list[Path]:
        self._check_root()
        self._finish_commits()
        try:
            shards = sorted(entry.path for entry in os.scandir(self.sessions_dir) if entry.is_dir())
        except FileNotFoundError:
            return []
        files: list[Path] = []
        for shard in shards:
            with os.scandir(shard) as entries:
                files.extend(Path(entry.path) for entry in entries if is_session_file(entry.name))
        return files

    @staticmethod
    def _read(paths: Iterable[Path]) -> Iterator[tuple[TestSession, bytes]]:
        for path in paths:
            try:
                data = path.read_bytes()
            except FileNotFoundError:  # deleted by a writer since it was listed
                continue
            yield decode_file(path, data), data

    @staticmethod
    def _read_files(paths: Iterable[Path]) -> list[TestSession]:
        return [session for session, _ in LocalBackend._read(paths)]

    @staticmethod
    def _read_lines(paths: Iterable[Path]) -> list[SessionLine]:
        return [SessionLine(session, data.removesuffix(b"\n")) for session, data in LocalBackend._read(paths)]

    async def scan(self, scope: Scope = EVERYTHING) -> AsyncIterator[TestSession]:
        paths = await self._run(self._list_files)
        for chunk in _chunks(paths):
            for session in await self._run(self._read_files, chunk):
                if scope.admits(session):
                    yield session

    async def scan_lines(self, scope: Scope = EVERYTHING) -> AsyncIterator[SessionLine]:
        """Like :meth:`scan`, each session with its file's line (an export reuses it)."""
        paths = await self._run(self._list_files)
        for chunk in _chunks(paths):
            for stored in await self._run(self._read_lines, chunk):
                if scope.admits(stored.session):
                    yield stored

    async def get(self, session_id: str) -> TestSession | None:
        await self._run(self._finish_commits)
        found = await self._run(self._read_files, [self.path_for(session_id)])
        return found[0] if found else None

    # -- writing ---------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_LocalTransaction]:
        lock = FileLock(self.lock_path, timeout=self.lock_timeout)
        await self._run(self._lock_and_recover, lock)
        try:
            transaction = _LocalTransaction(self)
            try:
                yield transaction
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._run(transaction.discard)
                raise
            with anyio.CancelScope(shield=True):
                await self._run(transaction.commit)
        finally:
            lock.release()

    def _lock_and_recover(self, lock: FileLock) -> None:
        self._check_root()
        self.root.mkdir(parents=True, exist_ok=True)
        lock.acquire()
        try:
            self.recover()
        except BaseException:
            lock.release()
            raise

    def recover(self) -> None:
        """Finish what killed writers left (see :mod:`pytest_insight.storage.journal`).

        Call only while holding the store's lock.

        Raises:
            CorruptStoreError: a commit marker cannot be parsed.
        """
        journal.recover(
            self.staging_dir,
            sessions_dir=self.sessions_dir,
            stored=self._stored,
            is_session_file=is_session_file,
            durable=self.durable,
        )

    def roll_forward(self, staging: Path, puts: Iterable[str], deletes: Iterable[str]) -> None:
        """Move a committed staging directory's files into place."""
        journal.roll_forward(
            staging, puts, deletes, sessions_dir=self.sessions_dir, stored=self._stored, durable=self.durable
        )


class _LocalTransaction:
    """Stages puts as files in a private staging directory; commits through its marker."""

    def __init__(self, backend: LocalBackend) -> None:
        self._backend = backend
        self._staging = backend.staging_dir / uuid.uuid4().hex
        self._puts: set[str] = set()
        self._deletes: set[str] = set()
        self._absent: set[str] = set()  # file names a lookup found missing (the lock keeps them so)
        self._committing = False

    async def lookup(self, session_ids: Collection[str]) -> dict[str, TestSession]:
        backend = self._backend
        found: dict[str, TestSession] = {}
        for chunk in _chunks(list(dict.fromkeys(session_ids))):
            paths = [backend.path_for(sid) for sid in chunk]
            sessions = await backend._run(backend._read_files, paths)
            for session in sessions:
                found[session.session_id] = session
            present = {session_file_name(session.session_id) for session in sessions}
            self._absent.update(path.name for path in paths if path.name not in present)
        return found

    async def stored_ids(self, session_ids: Collection[str]) -> set[str]:
        backend = self._backend
        found: set[str] = set()
        for chunk in _chunks(list(dict.fromkeys(session_ids))):
            names = [session_file_name(sid) for sid in chunk]
            present = set(await backend._run(self._present, names))
            found.update(sid for sid, name in zip(chunk, names, strict=True) if name in present)
            self._absent.update(name for name in names if name not in present)
        return found

    def _check_absent(self, names: Sequence[str], ids: Sequence[str]) -> None:
        for name, sid in zip(names, ids, strict=True):
            if name in self._puts:
                raise SessionExistsError(sid)
            if name in self._deletes or name in self._absent:
                continue
            if self._backend._stored(name).exists():
                raise SessionExistsError(sid)

    def _stage(self, batch: Sequence[tuple[str, bytes]]) -> None:
        self._staging.mkdir(parents=True, exist_ok=True)
        for name, data in batch:
            journal.write_file(self._staging / name, data, self._backend.durable)

    async def put(
        self,
        sessions: Sequence[TestSession],
        *,
        replace: bool = False,
        lines: Mapping[str, bytes] | None = None,
        minted: bool = False,  # unused: looking is one stat per session
    ) -> None:
        batch: dict[str, bytes] = {}
        ids: dict[str, str] = {}
        for session in sessions:
            name = session_file_name(session.session_id)
            if not replace and name in batch:
                raise SessionExistsError(session.session_id)
            line = lines.get(session.session_id) if lines else None
            batch[name] = encode_file(session) if line is None else line + b"\n"
            ids[name] = session.session_id
        names = list(batch)
        backend = self._backend
        if not replace:
            for chunk in _chunks(names):
                await backend._run(self._check_absent, chunk, [ids[name] for name in chunk])
        limiter = anyio.CapacityLimiter(_WRITERS)

        async def stage(chunk: Sequence[str]) -> None:
            async with limiter:
                await backend._run(self._stage, [(name, batch[name]) for name in chunk])

        async with anyio.create_task_group() as group:
            for chunk in _chunks(names, 64):
                group.start_soon(stage, chunk)
        self._puts.update(names)

    async def delete(self, session_ids: Collection[str] | None = None) -> int:
        backend = self._backend
        if session_ids is None:
            stored = {path.name for path in await backend._run(backend._list_files)}
            self._deletes |= stored
            return len(stored)
        names = list(dict.fromkeys(session_file_name(sid) for sid in session_ids))
        present = await backend._run(self._present, names)
        self._deletes.update(present)
        return len(present)

    def _present(self, names: Sequence[str]) -> list[str]:
        return [name for name in names if self._backend._stored(name).exists()]

    def commit(self) -> None:
        """Write the marker (the commit point), then roll forward. Runs in a worker thread."""
        puts, deletes = sorted(self._puts), sorted(self._deletes - self._puts)  # a put replaces anyway
        if not puts and not deletes:
            self.discard()
            return
        if len(puts) > 1 or deletes:  # a single rename is atomic by itself and needs no marker
            journal.write_marker(self._staging, puts, deletes, self._backend.durable)
            self._committing = True
        self._backend.roll_forward(self._staging, puts, deletes)

    def discard(self) -> None:
        """Drop the staged files, unless the commit point was passed (then recovery finishes it)."""
        if not self._committing and self._staging.exists():
            shutil.rmtree(self._staging)
