"""The one atomic file write: a reader sees the old file or the new one, never half of either.

Used for export files, the profiles file and the local store's commit
marker. The data goes to a temporary file in the same directory, is
fsync'd, replaces the target with ``os.replace``, and the directory is
fsync'd so that the rename survives a power loss.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

from pytest_insight.errors import StorageError

__all__ = ["fsync_dir", "write_atomic"]


def write_atomic(path: Path, data: bytes | Iterable[bytes], *, durable: bool = True) -> None:
    """Write ``data`` (bytes, or pieces of it) to ``path`` through a temporary file and ``os.replace``.

    Args:
        path: the file to write; its directory is created if missing.
        data: the content, whole or in pieces (a generator may raise part way).
        durable: fsync the file and its directory; only a store that was
            opened without durability turns this off.

    Raises:
        StorageError: the file cannot be written; no partial file is left.
    """
    temporary = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    created = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("xb") as stream:
            created = True
            for piece in [data] if isinstance(data, bytes) else data:
                stream.write(piece)
            stream.flush()
            if durable:
                os.fsync(stream.fileno())
        temporary.replace(path)
        created = False
        if durable:
            fsync_dir(path.parent)
    except OSError as exc:
        raise StorageError(f"{path}: cannot write: {exc.strerror or exc}", uri=str(path)) from exc
    finally:
        if created:  # failed part way, in the writing or in making the pieces: no partial file stays
            temporary.unlink(missing_ok=True)


def fsync_dir(path: Path) -> None:
    """fsync a directory, so that the renames inside it survive a power loss (POSIX; elsewhere nothing)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
