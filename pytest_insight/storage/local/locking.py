"""An inter-process file lock (``fcntl.flock``) with a timeout.

The lock file is created on first use and never deleted: deleting it while
another process waits on it would let two processes hold "the" lock at once,
each on a different inode.

Locks taken through separate :class:`FileLock` objects exclude each other even
inside one process, because ``flock`` belongs to the open file description.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from pytest_insight.errors import StorageError, StoreLockedError

__all__ = ["DEFAULT_LOCK_TIMEOUT", "FileLock"]

DEFAULT_LOCK_TIMEOUT = 60.0
"""Seconds to wait for a store lock before giving up."""

_FIRST_PAUSE = 0.0005
_LONGEST_PAUSE = 0.02


class FileLock:
    """An exclusive lock on ``path``, shared by every process that opens it.

    Args:
        path: the lock file; created (with its parent directory) when missing.
        timeout: seconds :meth:`acquire` waits before raising.
    """

    def __init__(self, path: Path, *, timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, waiting up to ``timeout`` seconds (blocks the calling thread).

        Raises:
            StoreLockedError: another holder kept the lock for the whole timeout.
            StorageError: the lock file cannot be created or opened.
            RuntimeError: this object already holds the lock.
        """
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: lock already held by this object")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(
                f"{self.path}: cannot open lock file: {exc.strerror}", uri=str(self.path)
            ) from exc
        try:
            self._wait(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _wait(self, fd: int) -> None:
        # flock has no timeout of its own: poll without blocking, backing off.
        deadline = time.monotonic() + self.timeout
        pause = _FIRST_PAUSE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StoreLockedError(
                        f"{self.path}: store is locked by another writer (waited {self.timeout:g} s)",
                        uri=str(self.path),
                    ) from None
                time.sleep(min(pause, remaining))
                pause = min(pause * 2, _LONGEST_PAUSE)
            else:
                return

    def release(self) -> None:
        """Release the lock; the lock file stays. Does nothing when not held."""
        fd, self._fd = self._fd, None
        if fd is not None:
            # Closing the descriptor drops the flock; the file itself is kept.
            os.close(fd)
