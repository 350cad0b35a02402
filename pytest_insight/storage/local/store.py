"""The local JSON store: a file per session, and a pack file per bulk commit.

Layout under the store's root::

    <root>/.lock                                  flock'd by every writer; never deleted
    <root>/sessions/<2 hex>/<64 hex>.json         one session: its canonical bundle line + newline
    <root>/packs/<32 hex>.pack                    many sessions' lines and their index
    <root>/staging/<uuid>/                        a transaction's new session files and packs
    <root>/staging/<uuid>/COMMIT                  its commit marker: {"put": [...], "delete": [...], ...}

A session file's name is the SHA-256 of its session's id, so no id can name
a path outside the store (``../``, ``/``, NUL) and ids that differ only in
letter case never collide on case-insensitive filesystems. A commit of fewer
than ``pack_from`` sessions writes a file each, so saving one session
touches only its own file whatever the store holds; a larger commit (an
import's batch) writes one pack (:mod:`pytest_insight.storage.local.packs`),
which costs a file where a file a session cost one each. Every session is
stored in one place, a file or a pack: replacing or deleting a packed
session writes the pack's other sessions into a new pack.

Writes: a transaction holds ``.lock`` from its first lookup to its commit.
It stages its new files in its own staging directory (fsync'd), then commits
by writing the ``COMMIT`` marker atomically (temporary file, fsync,
``os.replace``), then rolls forward (:mod:`pytest_insight.storage.local.journal`):
moves every staged file into place with ``os.replace``, then unlinks the
deleted files and dropped packs and removes its staging directory. The
marker is the commit point: a writer killed before it leaves a staging
directory without a marker, which the next writer discards; a writer killed
after it leaves one with a marker, which the next writer rolls forward (every
step is idempotent). So a batch is stored entirely or not at all. A
transaction that only writes one session file skips the marker: its one
rename is atomic by itself.

Reads take no lock: every file appears and changes by ``os.replace``, so a
reader sees a whole file or none (a reader racing a live commit may see part
of that batch). A reader that finds a pack gone looks again: the pack's other
sessions are in the new one, moved in before the old one went. A reader that
finds a commit marker a killed writer left takes the lock and rolls it
forward first, so a crash never shows half a batch. Anything in
``sessions/`` or ``packs/`` that is not named like a session file or a pack
is ignored.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from pytest_insight.errors import ConfigurationError, CorruptStoreError, InsightError, StorageError
from pytest_insight.model.session_ids import names_itself
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.local import journal
from pytest_insight.storage.local.locking import DEFAULT_LOCK_TIMEOUT, FileLock
from pytest_insight.storage.local.session_files import (
    decode_file,
    is_session_file,
    session_file_name,
)
from pytest_insight.storage.local.writes import LocalTransaction
from pytest_insight.storage.scope import EVERYTHING, Scope

if TYPE_CHECKING:
    from pytest_insight.format.lines import EncodedSession, SessionLine, StoredLine
    from pytest_insight.storage.local.pack_shelf import Found, PackShelf
    from pytest_insight.storage.local.packs import PackIndex

__all__ = ["PACK_FROM", "LocalBackend", "session_file_name"]

T = TypeVar("T")

PACK_FROM = 32
"""A commit of at least this many sessions writes them into one pack, not a file each."""

_CHUNK = 256  # files (or a pack's sessions) per worker-thread hop
_CHUNK_BYTES = 8 << 20  # most bytes of a pack's lines read in one hop


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _pack_chunks(names: Sequence[str], index: PackIndex) -> Iterator[Sequence[str]]:
    """``names`` in chunks of at most ``_CHUNK`` sessions and ``_CHUNK_BYTES`` of lines.

    A scan holds a chunk's lines at once: 256 real-shaped sessions of a
    thousand results are 256 MB, so large sessions come fewer at a time.
    """
    chunk: list[str] = []
    size = 0
    for name in names:
        length = index[name].length
        if chunk and (len(chunk) >= _CHUNK or size + length > _CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(name)
        size += length
    if chunk:
        yield chunk


class LocalBackend:
    """Sessions as JSON files and packs under ``root`` (see the module docstring for the layout).

    Args:
        root: the store's directory; created on the first write.
        lock_timeout: seconds a transaction waits for the store's lock.
        durable: fsync files and directories so that commits survive a power
            loss too. Without it a commit still survives the writer's own
            crash (SIGKILL) intact; turn it off only for scratch stores and
            benchmarks that fill a store fast.
        pack_from: a commit of at least this many sessions writes them into
            one pack file instead of a file each.

    Raises:
        ConfigurationError: ``root`` is a file (for example a pytest-insight
            0.9 storage file), not a store directory.
    """

    def __init__(
        self,
        root: Path,
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        durable: bool = True,
        pack_from: int = PACK_FROM,
    ) -> None:
        self.root = Path(root).absolute()
        self.lock_timeout = lock_timeout
        self.durable = durable
        self.pack_from = max(1, pack_from)
        self.sessions_dir = self.root / "sessions"
        self.packs_dir = self.root / "packs"
        self.staging_dir = self.root / "staging"
        self.lock_path = self.root / ".lock"
        self.places = journal.Places(self.sessions_dir, self.packs_dir, self.session_path)
        self._check_root()

    @functools.cached_property
    def shelf(self) -> PackShelf:
        """The store's packs. Reading them loads the decoders, which saving one session does without."""
        from pytest_insight.storage.local.pack_shelf import PackShelf

        return PackShelf(self.packs_dir)

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
        """Return where the session with this id is stored when it has a file of its own."""
        return self.session_path(session_file_name(session_id))

    def session_path(self, name: str) -> Path:
        """Where the session file of this name is (or would be)."""
        return self.sessions_dir / name[:2] / name

    async def in_thread(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking filesystem work in a worker thread, translating OS errors."""
        return await anyio.to_thread.run_sync(self.translating, function, *args)

    def translating(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking filesystem work here, translating OS errors into :class:`StorageError`."""
        try:
            return function(*args)
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

    def list_files(self) -> list[Path]:
        """The store's session files, once a commit a killed writer left is finished."""
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
    def _contents(paths: Iterable[Path]) -> Iterator[tuple[Path, bytes]]:
        for path in paths:
            try:
                yield path, path.read_bytes()
            except FileNotFoundError:  # deleted by a writer since it was listed
                continue

    @staticmethod
    def _read(paths: Iterable[Path]) -> list[Found]:
        return [(path.name, decode_file(path, data), data) for path, data in LocalBackend._contents(paths)]

    @staticmethod
    def _read_undecoded(paths: Iterable[Path]) -> list[tuple[str, TestSession | None, bytes]]:
        """As :meth:`_read`, with no session (None) for a file that holds a canonical line."""
        from pytest_insight.format.lines import is_canonical

        return [
            (path.name, None if is_canonical(data) else decode_file(path, data), data)
            for path, data in LocalBackend._contents(paths)
        ]

    @staticmethod
    def read_files(paths: Iterable[Path]) -> list[TestSession]:
        """The sessions in these session files (a file deleted meanwhile is left out)."""
        return [session for _, session, _ in LocalBackend._read(paths)]

    async def _scan_stored(
        self, scope: Scope, *, reuse: bool, undecoded: bool = False
    ) -> AsyncIterator[SessionLine | EncodedSession | StoredLine]:
        """Yield every stored session inside ``scope`` once, even while writers move sessions.

        A session moves between files and packs only in a commit that adds
        or drops a pack, and a commit moves new files in before it removes
        old ones. So when the packs are the same after the session files were
        read as before, and none went while being read, nothing moved unseen;
        otherwise the files and the new packs are read again (sessions
        already yielded are skipped). A pack's sessions outside ``scope`` are
        left unread: its index says each one's SUT and start time. With
        ``undecoded``, a canonical session file comes as its line alone, unchecked
        against ``scope`` (see :meth:`scan_undecoded`).
        """
        from pytest_insight.format.lines import SessionLine, StoredLine

        seen: set[str] = set()  # session file names yielded
        read_packs: set[str] = set()
        listed = await self.in_thread(self.shelf.names)
        while True:
            paths = [path for path in await self.in_thread(self.list_files) if path.name not in seen]
            for chunk in _chunks(paths):
                found: Sequence[tuple[str, TestSession | None, bytes]]
                if undecoded:
                    found = await self.in_thread(self._read_undecoded, chunk)
                else:
                    found = await self.in_thread(self._read, chunk)
                for name, session, data in found:
                    seen.add(name)
                    if session is None:
                        yield StoredLine(data.removesuffix(b"\n"), str(self.session_path(name)))
                    elif scope.admits(session):
                        yield SessionLine(session, data.removesuffix(b"\n"))
            current = await self.in_thread(self.shelf.names)
            vanished = False
            for pack in current:
                if pack in read_packs:
                    continue
                read_packs.add(pack)
                index = await self.in_thread(self.shelf.index, pack)
                vanished |= index is None
                wanted = [
                    name
                    for name, entry in (index or {}).items()
                    if name not in seen and scope.admits_key(entry.key.sut_name, entry.key.start)
                ]
                for names in _pack_chunks(wanted, index or {}):
                    batch = await self.in_thread(self.shelf.items, pack, names, reuse)
                    if batch is None:
                        vanished = True
                        break
                    for name, item in batch:
                        seen.add(name)
                        yield item
            if not vanished and current == listed:
                return
            listed = current

    async def scan(self, scope: Scope = EVERYTHING) -> AsyncIterator[TestSession]:
        from pytest_insight.format.lines import SessionLine

        async for item in self._scan_stored(scope, reuse=False):
            if isinstance(item, SessionLine):  # always, without reuse
                yield item.session

    async def scan_lines(self, scope: Scope = EVERYTHING) -> AsyncIterator[SessionLine | EncodedSession]:
        """Like :meth:`scan`, each session with its stored line (an export reuses it).

        A packed session whose line is canonical comes as an
        :class:`~pytest_insight.format.bundle.EncodedSession` built from its
        pack's index, without decoding the line.
        """
        from pytest_insight.format.lines import EncodedSession, SessionLine

        async for item in self._scan_stored(scope, reuse=True):
            if isinstance(item, SessionLine | EncodedSession):  # always: no undecoded lines asked for
                yield item

    async def scan_undecoded(
        self, scope: Scope = EVERYTHING
    ) -> AsyncIterator[SessionLine | EncodedSession | StoredLine]:
        """Like :meth:`scan_lines`, but a session file that holds a canonical line comes undecoded.

        Such a file comes as a :class:`~pytest_insight.format.lines.StoredLine`,
        whether or not it is inside ``scope``: for a reader that decodes only
        the fields it uses (the analyses, :mod:`pytest_insight.analysis.reading`)
        and checks the scope from them, which spares decoding each session twice.
        """
        async for item in self._scan_stored(scope, reuse=True, undecoded=True):
            yield item

    async def get(self, session_id: str) -> TestSession | None:
        return await self.in_thread(self._get, session_id)

    async def newest(self, limit: int, scope: Scope) -> list[TestSession]:
        """The ``limit`` newest sessions inside ``scope``, decoding only those (see :mod:`.newest`)."""
        from pytest_insight.storage.local import newest

        try:
            return await self.in_thread(newest.newest, self, limit, scope)
        except newest.Moved:  # a writer moved sessions meanwhile: the scan copes with that
            found = [session async for session in self.scan(scope) if scope.admits(session)]
            found.sort(key=lambda session: (session.session_start_time, session.session_id), reverse=True)
            return found[:limit]

    def _get(self, session_id: str) -> TestSession | None:
        self._finish_commits()
        name = session_file_name(session_id)
        listed = self.shelf.names()
        while True:  # looks again when a commit moved sessions meanwhile (see _scan_stored)
            found = self._read([self.session_path(name)])
            if found:
                return found[0][1]
            current = self.shelf.names()
            vanished = False
            for pack in current:
                held = self.shelf.holding(pack, [name])
                if held is not None and not held:
                    continue
                in_pack = None if held is None else self.shelf.read(pack, [name])
                if in_pack is None:
                    vanished = True
                    continue
                if not in_pack:
                    where = str(self.packs_dir / pack)
                    raise CorruptStoreError(where, None, "its names line holds a session its index does not")
                return in_pack[0][1]
            if not vanished and current == listed:
                return None
            listed = current

    # -- writing ---------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[LocalTransaction]:
        lock = FileLock(self.lock_path, timeout=self.lock_timeout)
        await self.in_thread(self._lock_and_recover, lock)
        try:
            transaction = LocalTransaction(self)
            try:
                yield transaction
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self.in_thread(transaction.discard)
                raise
            with anyio.CancelScope(shield=True):
                await self.in_thread(transaction.commit)
        finally:
            lock.release()

    def save_recorded(self, session: TestSession) -> None:
        """Store a session this process just recorded, in the calling thread, with no event loop.

        The same commit as :meth:`~pytest_insight.core.facade.Storage.save_recorded_session`
        makes through :meth:`transaction` (one session file, one rename), for
        the plugin's end of a run: it loads only what writing needs, neither
        the readers nor anyio's worker threads.

        Raises:
            SessionExistsError: the id was not minted for this session and is already stored.
            StoreLockedError: another writer held the store's lock for ``lock_timeout`` seconds.
            StorageError: the store cannot be written.
        """
        self.translating(self._save_recorded, session)

    def _save_recorded(self, session: TestSession) -> None:
        lock = FileLock(self.lock_path, timeout=self.lock_timeout)
        self._lock_and_recover(lock)
        try:
            transaction = LocalTransaction(self)
            try:
                transaction.put_now([session], minted=names_itself(session))
            except BaseException:
                transaction.discard()
                raise
            transaction.commit()
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
        """Finish what killed writers left (see :mod:`pytest_insight.storage.local.journal`).

        Call only while holding the store's lock.

        Raises:
            CorruptStoreError: a commit marker cannot be parsed.
        """
        journal.recover(self.staging_dir, self.places, self.durable)
