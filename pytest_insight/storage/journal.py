"""The local store's commit journal: staging directories and their commit markers.

A transaction stages new session files in ``<root>/staging/<uuid>/``, then
commits by writing ``COMMIT`` there atomically (temporary file, fsync,
``os.replace``) and rolls forward: every staged file moves into place with
``os.replace``, deleted files are unlinked, the staging directory goes. The
marker is the commit point. :func:`recover`, run by the next writer under the
store's lock, rolls forward every staging directory that has a marker and
discards every one that has not; every step is idempotent, so a writer killed
anywhere leaves a batch stored entirely or not at all.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pytest_insight.errors import CorruptStoreError

__all__ = ["MARKER", "fsync_dir", "fsync_dirs", "recover", "roll_forward", "write_file", "write_marker"]

MARKER = "COMMIT"
_SYNCERS = 8  # directories fsync'd at once

IsSessionFile = Callable[[str], bool]
StoredPath = Callable[[str], Path]


def fsync_dir(path: Path, durable: bool = True) -> None:
    """fsync a directory, so that renames inside it survive a power loss."""
    if not durable:
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dirs(paths: Collection[Path], durable: bool = True) -> None:
    """fsync many directories at once: each fsync mostly waits for the disk, so they overlap."""
    if not durable or not paths:
        return
    for _ in _syncers().map(fsync_dir, paths):
        pass


def _syncers() -> ThreadPoolExecutor:
    """One pool a process (an import commits a batch every few hundred sessions); a fork gets its own."""
    return _pool_of(os.getpid())


@functools.cache
def _pool_of(pid: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(_SYNCERS, thread_name_prefix="pytest-insight-fsync")


def write_file(path: Path, data: bytes, durable: bool) -> None:
    """Write ``data`` to ``path`` (truncating it), fsync'd when ``durable``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def write_marker(staging: Path, puts: Sequence[str], deletes: Sequence[str], durable: bool) -> None:
    """Commit ``staging``: write its marker atomically. After this, recovery replays it."""
    staging.mkdir(parents=True, exist_ok=True)
    fsync_dir(staging.parent, durable)
    fsync_dir(staging, durable)
    pending = staging / (MARKER + ".tmp")
    write_file(pending, json.dumps({"put": list(puts), "delete": list(deletes)}).encode("ascii"), durable)
    pending.replace(staging / MARKER)
    fsync_dir(staging, durable)


def read_marker(staging: Path, is_session_file: IsSessionFile) -> tuple[list[str], list[str]]:
    """Return the file names a marker puts and deletes.

    Raises:
        CorruptStoreError: the marker cannot be parsed.
    """
    marker = staging / MARKER
    data = marker.read_bytes()
    try:
        plan = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptStoreError(
            str(marker), getattr(exc, "lineno", None), "unreadable commit marker"
        ) from exc
    if not isinstance(plan, dict) or not all(
        isinstance(plan.get(key), list) and all(isinstance(n, str) and is_session_file(n) for n in plan[key])
        for key in ("put", "delete")
    ):
        raise CorruptStoreError(str(marker), 1, "commit marker is not {put: [...], delete: [...]}")
    return plan["put"], plan["delete"]


def roll_forward(
    staging: Path,
    puts: Iterable[str],
    deletes: Iterable[str],
    *,
    sessions_dir: Path,
    stored: StoredPath,
    durable: bool,
) -> None:
    """Move a staging directory's files into place and apply its deletions; idempotent."""
    touched: set[Path] = set()
    for name in deletes:
        target = stored(name)
        target.unlink(missing_ok=True)
        touched.add(target.parent)
    new_shards = False
    ready: set[Path] = set()
    for name in puts:
        shard = stored(name).parent
        if shard not in ready:
            if not shard.is_dir():
                shard.mkdir(parents=True, exist_ok=True)
                new_shards = True
            ready.add(shard)
        with contextlib.suppress(FileNotFoundError):  # moved by an earlier, interrupted roll-forward
            (staging / name).replace(shard / name)
    touched |= ready
    # The renames must be durable before the marker that replays them goes.
    fsync_dirs([shard for shard in touched if shard.is_dir()], durable)
    if new_shards:
        fsync_dir(sessions_dir, durable)
    (staging / MARKER).unlink(missing_ok=True)
    shutil.rmtree(staging)


def recover(
    staging_dir: Path,
    *,
    sessions_dir: Path,
    stored: StoredPath,
    is_session_file: IsSessionFile,
    durable: bool,
) -> None:
    """Finish what killed writers left: roll committed staging directories forward, drop the rest.

    Call only while holding the store's lock.

    Raises:
        CorruptStoreError: a commit marker cannot be parsed.
    """
    try:
        leftovers = sorted(entry.path for entry in os.scandir(staging_dir))
    except FileNotFoundError:
        return
    for leftover in map(Path, leftovers):
        if (leftover / MARKER).is_file():
            puts, deletes = read_marker(leftover, is_session_file)
            roll_forward(leftover, puts, deletes, sessions_dir=sessions_dir, stored=stored, durable=durable)
        elif leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()
