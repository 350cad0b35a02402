"""Worker threads that work through items and hand their results to the event loop in batches.

``anyio.to_thread.run_sync`` costs about 170 µs of CPU a call (a future, a
cancel scope, the limiter, a wake-up through the event loop), which is half
of what downloading a 55 KB bundle costs. :class:`WorkerThreads` pays that
once a thread for a whole transfer: each of its ``to_thread`` calls takes
items from a queue as they come and leaves each result in a buffer; the
event loop takes the results from that buffer and sleeps on a socket only
when the buffer is empty, so one wake-up covers every result that arrived
meanwhile.

Failure policy: an exception the work raises is the result of that item and
is raised where the event loop takes it.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections import deque
from collections.abc import Callable
from functools import partial
from types import TracebackType
from typing import Generic, TypeVar

import anyio
import anyio.to_thread

__all__ = ["WorkerThreads"]

T = TypeVar("T")
R = TypeVar("R")

_STOP = object()


class WorkerThreads(Generic[T, R]):
    """``threads`` worker threads calling ``work`` on each item submitted; results come in completion order.

    Each thread is one ``anyio.to_thread.run_sync`` call under one
    ``CapacityLimiter(threads)``, in a task group of its own, that lasts the
    whole transfer. Use it as an async context manager: leaving it stops the
    threads and waits for the items they are working on (their results are
    dropped); items not started yet are never started.
    """

    def __init__(self, work: Callable[[T], R], threads: int) -> None:
        self._work = work
        self._threads = threads
        self._limiter = anyio.CapacityLimiter(threads)
        self._group = anyio.create_task_group()
        self._todo: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._done: deque[tuple[R, None] | tuple[None, BaseException]] = deque()
        self._lock = threading.Lock()
        self._waiting = False  # the event loop sleeps until a result comes: wake it
        self._stopping = False
        self._interrupted = False
        self._wake_up, self._bell = socket.socketpair()
        self._wake_up.setblocking(False)
        self._bell.setblocking(False)

    async def __aenter__(self) -> WorkerThreads[T, R]:
        await self._group.__aenter__()
        for _ in range(self._threads):
            self._group.start_soon(partial(anyio.to_thread.run_sync, self._run, limiter=self._limiter))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stopping = True
        for _ in range(self._threads):
            self._todo.put(_STOP)
        try:
            # Not told of ``error``: it would come back inside an ExceptionGroup. The threads end on
            # their own (they are told to stop), so there is nothing to cancel, only to wait for.
            await self._group.__aexit__(None, None, None)
        finally:
            self._wake_up.close()
            self._bell.close()

    def submit(self, item: T) -> None:
        """Queue ``item`` for the next free thread."""
        self._todo.put(item)

    def interrupt(self) -> None:
        """Have the :meth:`results` call waiting now, or the next one, return at once (on the event loop)."""
        with self._lock:
            self._interrupted = True
            ring, self._waiting = self._waiting, False
        if ring:
            self._ring()

    async def results(self) -> list[R]:
        """Wait for results; return every one there is, in completion order (none after :meth:`interrupt`).

        Raises:
            Exception: what the work raised for one of them (the others are dropped).
        """
        while True:
            with self._lock:
                if self._done or self._interrupted:
                    done, self._done = self._done, deque()
                    self._interrupted = False
                    break
                self._waiting = True
            await anyio.wait_readable(self._wake_up)
            with contextlib.suppress(BlockingIOError):  # rung for results already taken
                self._wake_up.recv(4096)
        for _, error in done:
            if error is not None:
                raise error
        return [result for result, _ in done]  # type: ignore[misc]  # error None: a result

    def _ring(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full of unread rings: the loop wakes anyway
            self._bell.send(b"\0")

    def _run(self) -> None:
        while True:
            item = self._todo.get()
            if item is _STOP or self._stopping:
                return
            outcome: tuple[R, None] | tuple[None, BaseException]
            try:
                outcome = (self._work(item), None)  # type: ignore[arg-type]  # only T is ever submitted
            except BaseException as exc:  # handed to the event loop, raised there
                outcome = (None, exc)
            with self._lock:
                self._done.append(outcome)
                ring, self._waiting = self._waiting, False
            if ring:
                self._ring()
