"""Concurrent transfers with bounded memory: the download pipeline and parallel uploads.

Download pipeline::

    listing pages ──keys──▶ [key buffer] ──▶ N threads ──▶ [results] ──▶ verify + decode ──▶ consumer
                                              (GET)                    (on the event loop)

N is the backend's ``concurrency``. The downloads run in N worker threads
(:class:`~pytest_insight.storage.worker_threads.WorkerThreads`: one
``to_thread`` call each under one ``CapacityLimiter(N)``, lasting the whole
transfer), which hand the event loop their results in batches, not through
a thread hop per object. The key buffer holds a listing page of keys (at least
``2 * N``), so the next page is requested while the threads still have the
last one's keys: a server takes as long to list a page as the threads take
to download a few hundred bundles. At most ``2 * N`` keys are handed to the
threads whose bundle the consumer has not finished with, so at most
``2 * N`` bundles are in memory (being downloaded, waiting, or with the
consumer) however large the prefix is. Listing, downloading and the
consumer's work (merging into a store) overlap.

Failure policy: a bundle that cannot be read or decoded is handed on as a
:class:`StoredBundle` carrying the failure (the consumer counts it); a
failed listing or a programming error stops the pipeline and is raised to
the consumer as itself.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import aclosing
from datetime import date
from functools import partial
from typing import TYPE_CHECKING

import anyio

from pytest_insight.core.bundle import Bundle, EncodedSession, encode_bundle, partition
from pytest_insight.core.progress import ProgressCallback
from pytest_insight.storage.s3_listing import PAGE_KEYS
from pytest_insight.storage.worker_threads import WorkerThreads

if TYPE_CHECKING:
    from pytest_insight.core.decoding import Limits
    from pytest_insight.storage.s3 import S3Backend
    from pytest_insight.storage.s3_objects import StoredBundle
    from pytest_insight.storage.s3_reads import S3Reader

__all__ = ["KEY_BUFFER_FACTOR", "each_key", "read_bundles", "run_concurrently", "upload_sessions"]

KEY_BUFFER_FACTOR = 2
"""Keys handed to the download threads ahead of the consumer, per thread."""


async def each_key(keys: Iterable[str]) -> AsyncGenerator[str, None]:
    """Known keys as the async stream :func:`read_bundles` reads (a listing's stand-in)."""
    for key in keys:
        yield key


async def read_bundles(
    backend: S3Reader, keys: AsyncIterator[str], limits: Limits | None = None
) -> AsyncGenerator[StoredBundle, None]:
    """Download and decode the bundles at ``keys``, ``concurrency`` at a time, yielding each as it arrives.

    Bundles come in completion order, not key order. Stopping early (closing
    the generator) stops the downloads: those under way end, no other starts.

    Raises:
        StorageError: the listing failed.
        ConfigurationError: there are no credentials.
    """
    workers = backend.concurrency
    bounds = limits or backend.limits
    ahead = workers * KEY_BUFFER_FACTOR
    room = anyio.Semaphore(ahead)  # keys handed to the threads whose bundle the consumer has not finished
    key_send, key_receive = anyio.create_memory_object_stream[str](max(ahead, PAGE_KEYS))
    handed = taken = 0
    fed = False  # every key listed is handed to the threads
    failure: BaseException | None = None

    async def produce() -> None:
        nonlocal failure
        async with key_send, aclosing(keys) as listed:  # type: ignore[type-var]
            try:
                async for key in listed:
                    await key_send.send(key)
            except Exception as exc:  # handed to the consumer, raised there as itself
                failure = exc
                downloads.interrupt()

    async def feed() -> None:
        nonlocal handed, fed
        async with key_receive:
            async for key in key_receive:
                await room.acquire()
                downloads.submit(key)
                handed += 1
        fed = True
        downloads.interrupt()

    async with (
        WorkerThreads(partial(backend.fetch, limits=bounds), workers) as downloads,
        anyio.create_task_group() as group,
    ):
        try:
            group.start_soon(produce)
            group.start_soon(feed)
            while failure is None and not (fed and taken == handed):
                try:
                    batch = await downloads.results()
                except Exception as exc:  # from a download thread (no credentials, a bug): raised below
                    failure = exc
                    break
                for fetched in batch:
                    taken += 1
                    yield await backend.decode(fetched, bounds)
                    room.release()
        except GeneratorExit:
            pass  # the consumer stopped early: stop the transfers below, then end quietly
        finally:
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure


async def upload_sessions(
    backend: S3Backend, sessions: Sequence[EncodedSession], progress: ProgressCallback | None = None
) -> int:
    """Upload sessions as one bundle per SUT and day, ``concurrency`` at a time.

    Each bundle is read from ``sessions``, gzipped and uploaded in one of
    ``concurrency`` worker threads (see ``WorkerThreads``); a bundle already
    there (same content, same key) is left alone.

    Returns:
        The number of sessions exported.

    Raises:
        StorageError: an upload failed (no other starts; those under way end).
    """
    done = created = uploaded = 0

    def upload(job: tuple[tuple[str, date], Sequence[EncodedSession]]) -> tuple[str, Bundle, str | None]:
        (sut_name, day), group = job
        bundle = encode_bundle(group)
        key = backend.key_for(sut_name, day, bundle.bundle_id)
        return key, bundle, backend.store_bundle(key, bundle)

    groups = sorted(partition(sessions).items())
    async with WorkerThreads(upload, backend.concurrency) as threads:
        for job in groups:
            threads.submit(job)
        while uploaded < len(groups):
            for key, bundle, etag in await threads.results():
                backend.learn(key, bundle, etag)
                uploaded += 1
                created += etag is not None
                done += bundle.count
                if progress is not None:
                    progress("write", done, len(sessions))
    if progress is not None:
        progress("new bundles", created, len(groups))
    return done


async def run_concurrently(jobs: Sequence[Callable[[], Awaitable[None]]]) -> None:
    """Run ``jobs`` in one task group; the first failure cancels the rest and is raised as itself.

    Raises:
        Exception: what the first failing job raised (not wrapped in an ExceptionGroup).
    """
    failures: list[Exception] = []

    async def guarded(job: Callable[[], Awaitable[None]], scope: anyio.CancelScope) -> None:
        try:
            await job()
        except Exception as exc:  # collected and re-raised below, unwrapped
            failures.append(exc)
            scope.cancel()

    async with anyio.create_task_group() as group:
        for job in jobs:
            group.start_soon(guarded, job, group.cancel_scope)
    if failures:
        raise failures[0]
