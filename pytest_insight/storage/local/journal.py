"""The local store's commit journal: staging directories and their commit markers.

A transaction stages new session files and packs in
``<root>/staging/<uuid>/``, then commits by writing ``COMMIT`` there
atomically (temporary file, fsync, ``os.replace``) and rolls forward: every
staged file moves into place with ``os.replace``, deleted session files and
dropped packs are unlinked, the staging directory goes. The
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
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from pytest_insight import files
from pytest_insight.errors import CorruptStoreError
from pytest_insight.storage.local.packs import is_pack_file
from pytest_insight.storage.local.session_files import is_session_file

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

__all__ = [
    "MARKER",
    "Places",
    "Plan",
    "fsync_dir",
    "fsync_dirs",
    "read_marker",
    "recover",
    "roll_forward",
    "write_file",
    "write_marker",
]

MARKER = "COMMIT"
_SYNCERS = 8  # directories fsync'd at once

StoredPath = Callable[[str], Path]


def fsync_dir(path: Path, durable: bool = True) -> None:
    """fsync a directory, so that renames inside it survive a power loss."""
    if durable:
        files.fsync_dir(path)


def fsync_dirs(paths: Collection[Path], durable: bool = True) -> None:
    """fsync many directories at once: each fsync mostly waits for the disk, so they overlap."""
    if not durable or not paths:
        return
    if len(paths) == 1:  # saving one session: no pool to start (and to join at exit)
        fsync_dir(next(iter(paths)))
        return
    for _ in _syncers().map(fsync_dir, paths):
        pass


def _syncers() -> ThreadPoolExecutor:
    """One pool a process, started by its first commit of many files; a fork gets its own."""
    return _pool_of(os.getpid())


@functools.cache
def _pool_of(pid: int) -> ThreadPoolExecutor:
    from concurrent.futures import ThreadPoolExecutor

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


class Plan(msgspec.Struct, frozen=True):
    """What a commit changes, by file name.

    Attributes:
        put: staged session files that move into their shard directories.
        delete: session files to unlink.
        packs: staged pack files that move into the packs directory.
        drop: pack files to unlink.
    """

    put: Sequence[str] = ()
    delete: Sequence[str] = ()
    packs: Sequence[str] = ()
    drop: Sequence[str] = ()

    def __bool__(self) -> bool:
        return bool(self.put or self.delete or self.packs or self.drop)


class Places(msgspec.Struct, frozen=True):
    """Where a store keeps its files.

    Attributes:
        sessions_dir: holds a shard directory of session files per two hex digits.
        packs_dir: holds the pack files.
        stored: where a session file of this name lives.
    """

    sessions_dir: Path
    packs_dir: Path
    stored: StoredPath


def write_marker(staging: Path, plan: Plan, durable: bool) -> None:
    """Commit ``staging``: write its marker atomically. After this, recovery replays it."""
    staging.mkdir(parents=True, exist_ok=True)
    fsync_dir(staging.parent, durable)
    fsync_dir(staging, durable)
    marker = {
        "put": list(plan.put),
        "delete": list(plan.delete),
        "packs": list(plan.packs),
        "drop": list(plan.drop),
    }
    files.write_atomic(staging / MARKER, json.dumps(marker).encode("ascii"), durable=durable)


def read_marker(staging: Path) -> Plan:
    """Return the plan a marker commits (markers of earlier releases hold only put and delete).

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
    kinds = {"put": is_session_file, "delete": is_session_file, "packs": is_pack_file, "drop": is_pack_file}
    if not isinstance(plan, dict) or not all(
        isinstance(plan.get(key, []), list)
        and all(isinstance(n, str) and named(n) for n in plan.get(key, []))
        for key, named in kinds.items()
    ):
        raise CorruptStoreError(str(marker), 1, "commit marker is not {put: [...], delete: [...], ...}")
    return Plan(**{key: plan.get(key, []) for key in kinds})


def roll_forward(staging: Path, plan: Plan, places: Places, durable: bool) -> None:
    """Move a staging directory's files into place, then apply its removals; idempotent.

    New files go in before old ones go, so a reader racing the commit that
    finds a pack gone finds its surviving sessions in a new one.
    """
    touched: set[Path] = set()
    new_dirs: set[Path] = set()

    def ready(directory: Path) -> Path:
        if directory not in touched:
            if not directory.is_dir():
                if not directory.parent.is_dir():  # a new sessions directory, made with its shard
                    new_dirs.add(directory.parent)
                directory.mkdir(parents=True, exist_ok=True)
                new_dirs.add(directory)
            touched.add(directory)
        return directory

    for name in plan.packs:
        with contextlib.suppress(FileNotFoundError):  # moved by an earlier, interrupted roll-forward
            (staging / name).replace(ready(places.packs_dir) / name)
    for name in plan.put:
        with contextlib.suppress(FileNotFoundError):
            (staging / name).replace(ready(places.stored(name).parent) / name)
    for name in plan.delete:
        target = places.stored(name)
        target.unlink(missing_ok=True)
        touched.add(target.parent)
    for name in plan.drop:
        (places.packs_dir / name).unlink(missing_ok=True)
        touched.add(places.packs_dir)
    # Every change must be durable before the marker that replays them goes.
    fsync_dirs([directory for directory in touched if directory.is_dir()], durable)
    fsync_dirs({directory.parent for directory in new_dirs}, durable)
    (staging / MARKER).unlink(missing_ok=True)
    shutil.rmtree(staging)


def recover(staging_dir: Path, places: Places, durable: bool) -> None:
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
            roll_forward(leftover, read_marker(leftover), places, durable)
        elif leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()
