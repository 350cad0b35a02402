"""WorkerThreads: plain threads whose results reach the event loop in batches."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import anyio.lowlevel
import pytest

from pytest_insight.storage.worker_threads import WorkerThreads

PATIENCE = 10.0  # seconds a test waits for a thread before it fails (never reached when things work)
T = TypeVar("T")


async def within(run: Callable[[], Awaitable[T]]) -> T:
    """``run()``, failing instead of hanging when a wake-up is lost."""
    with anyio.fail_after(PATIENCE):
        return await run()


def test_every_result_comes_back_once_from_as_many_threads_as_asked() -> None:
    idents: set[int] = set()
    everyone = threading.Barrier(4, timeout=PATIENCE)  # passes only once 4 threads work at the same time

    def work(item: int) -> int:
        idents.add(threading.get_ident())
        if item < 4:
            everyone.wait()
        return item * 10

    async def run() -> list[int]:
        results: list[int] = []
        async with WorkerThreads(work, 4) as threads:
            for item in range(200):
                threads.submit(item)
            while len(results) < 200:
                results += await threads.results()
        return results

    assert sorted(anyio.run(within, run)) == [item * 10 for item in range(200)]
    assert len(idents) == 4


def test_a_result_waits_on_the_loop_without_holding_it() -> None:
    release = threading.Event()

    def work(item: str) -> str:
        release.wait(PATIENCE)
        return item

    async def run() -> list[str]:
        ticks = 0
        async with WorkerThreads(work, 1) as threads:
            threads.submit("done")
            async with anyio.create_task_group() as group:

                async def tick() -> None:
                    nonlocal ticks
                    for _ in range(3):
                        ticks += 1
                        await anyio.lowlevel.checkpoint()
                    release.set()

                group.start_soon(tick)
                results = await threads.results()
        assert ticks == 3  # the loop ran another task while the result was awaited
        return results

    assert anyio.run(within, run) == ["done"]


def test_what_the_work_raises_is_raised_where_the_results_are_taken() -> None:
    def work(item: int) -> int:
        if item == 3:
            raise LookupError("no such item")
        return item

    async def run() -> None:
        async with WorkerThreads(work, 2) as threads:
            for item in range(6):
                threads.submit(item)
            while True:
                await threads.results()

    with pytest.raises(LookupError, match="no such item"):
        anyio.run(within, run)


def test_interrupt_wakes_a_waiting_taker_with_nothing() -> None:
    async def run() -> list[list[object]]:
        woken: list[list[object]] = []
        threads: WorkerThreads[object, object]
        async with WorkerThreads(_same, 1) as threads, anyio.create_task_group() as group:
            group.start_soon(_interrupt_soon, threads)
            woken.append(await threads.results())
        return woken

    assert anyio.run(within, run) == [[]]


def _same(item: object) -> object:
    return item


async def _interrupt_soon(threads: WorkerThreads[object, object]) -> None:
    await anyio.lowlevel.checkpoint()
    threads.interrupt()


def test_leaving_waits_for_the_work_under_way_and_never_starts_the_rest() -> None:
    started: list[int] = []
    finished: list[int] = []
    first_started = threading.Event()
    release = threading.Event()

    def work(item: int) -> int:
        started.append(item)
        first_started.set()
        release.wait(PATIENCE)
        finished.append(item)
        return item

    async def run() -> None:
        async with anyio.create_task_group() as group:
            async with WorkerThreads(work, 1) as threads:
                for item in range(5):
                    threads.submit(item)
                await anyio.to_thread.run_sync(first_started.wait, PATIENCE)
                group.start_soon(_set, release)  # runs once leaving the block has begun
            assert finished == [0]  # the work under way ended before the block was left

    anyio.run(within, run)
    assert started == [0]


async def _set(event: threading.Event) -> None:
    event.set()


def test_a_cancelled_wait_loses_no_result() -> None:
    started = threading.Event()
    block = threading.Event()

    def work(item: int) -> int:
        started.set()
        block.wait(PATIENCE)
        return item

    async def run() -> list[int]:
        async with WorkerThreads(work, 2) as threads:
            threads.submit(7)
            await anyio.to_thread.run_sync(started.wait, PATIENCE)
            with anyio.CancelScope() as scope:
                scope.cancel()
                await threads.results()
            block.set()
            return await threads.results()

    assert anyio.run(within, run) == [7]


def test_the_threads_are_anyio_worker_threads_under_one_capacity_limiter() -> None:
    everyone = threading.Barrier(4, timeout=PATIENCE)  # the three threads and the test

    def work(item: int) -> int:
        everyone.wait()
        return item

    async def run() -> tuple[float, float]:
        async with WorkerThreads(work, 3) as threads:
            for item in range(3):
                threads.submit(item)
            await anyio.to_thread.run_sync(everyone.wait)  # all three threads are at work now
            limiter = threads._limiter
            return limiter.borrowed_tokens, limiter.total_tokens

    assert anyio.run(within, run) == (3, 3)
