"""Concurrent transfers with bounded memory: the download pipeline and parallel uploads.

Download pipeline::

    listing pages ──keys──▶ N concurrent GETs ──▶ verify + decode ──▶ [results] ──▶ consumer

N is the bucket's ``concurrency``. Each request is obstore's blocking call in
a worker thread (see :mod:`~pytest_insight.storage.s3.bucket`): the bytes move
in obstore's own runtime, outside the GIL, and decoding runs on the event
loop. At most ``2 * N``
keys are taken from the listing whose bundle the consumer has not finished
with, so at most ``2 * N`` bundles are in memory (being downloaded, waiting,
or with the consumer) however large the prefix is. Listing, downloading and
the consumer's work (merging into a store) overlap.

Cancelling (Ctrl-C, or a consumer that stops early) abandons the requests
under way at once: nothing waits for a worker thread to finish its transfer.

Failure policy: a bundle that cannot be read or decoded is handed on as a
:class:`~pytest_insight.storage.s3.objects.StoredBundle` carrying the failure
(the consumer counts it); a failed listing or a programming error stops the
pipeline and is raised to the consumer as itself.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from contextlib import aclosing, suppress
from datetime import date
from functools import partial

import anyio

from pytest_insight.errors import ConfigurationError
from pytest_insight.format.bundle import EncodedSession, encode_bundle, partition
from pytest_insight.format.decoding import Limits
from pytest_insight.format.layout import bundle_key
from pytest_insight.progress import ProgressCallback
from pytest_insight.storage.s3.bucket import Bucket
from pytest_insight.storage.s3.objects import StoredBundle, put_bundle, read_bundle
from pytest_insight.tasks import run_concurrently

__all__ = ["KEY_BUFFER_FACTOR", "each_key", "read_bundles", "run_concurrently", "upload_sessions"]

KEY_BUFFER_FACTOR = 2
"""Keys taken from the listing ahead of the consumer, per concurrent request."""


async def each_key(keys: Iterable[str]) -> AsyncGenerator[str, None]:
    """Known keys as the async stream :func:`read_bundles` reads (a listing's stand-in)."""
    for key in keys:
        yield key


async def read_bundles(
    bucket: Bucket, keys: AsyncIterator[str], limits: Limits | None = None
) -> AsyncGenerator[StoredBundle, None]:
    """Download and decode the bundles at ``keys``, ``concurrency`` at a time, yielding each as it arrives.

    Bundles come in completion order, not key order. Stopping early (closing
    the generator) cancels the downloads under way.

    Raises:
        StorageError: the listing failed.
        ConfigurationError: there are no credentials.
    """
    bounds = limits or bucket.limits
    ahead = bucket.concurrency * KEY_BUFFER_FACTOR
    room = anyio.Semaphore(ahead)  # keys taken whose bundle the consumer has not finished with
    requests = anyio.CapacityLimiter(bucket.concurrency)
    send, receive = anyio.create_memory_object_stream[StoredBundle | Exception](ahead)
    failure: BaseException | None = None

    async def transfer(key: str) -> None:
        try:
            async with requests:
                result: StoredBundle | Exception = await read_bundle(bucket, key, bounds)
        except Exception as exc:  # no credentials, a bug: handed to the consumer, raised there as itself
            result = exc
        with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await send.send(result)  # the consumer may have stopped: then nobody wants it

    async def produce() -> None:
        nonlocal failure
        async with send, anyio.create_task_group() as transfers:
            try:
                async with aclosing(keys) as listed:  # type: ignore[type-var]
                    async for key in listed:
                        await room.acquire()
                        transfers.start_soon(transfer, key)
            except Exception as exc:  # the listing failed: raised to the consumer as itself
                failure = exc
                transfers.cancel_scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(produce)
        try:
            async with receive:
                async for item in receive:
                    if isinstance(item, Exception):
                        failure = item
                        break
                    yield item
                    room.release()
        except GeneratorExit:
            pass  # the consumer stopped early: stop the transfers below, then end quietly
        finally:
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure


async def upload_sessions(
    bucket: Bucket, sessions: Sequence[EncodedSession], progress: ProgressCallback | None = None
) -> int:
    """Upload sessions as one bundle per SUT and day, ``concurrency`` at a time.

    Each bundle is gzipped on the event loop and uploaded with
    ``If-None-Match: *``; a bundle already there (same content, same key) is
    left alone.

    Returns:
        The number of sessions exported.

    Raises:
        StorageError: an upload failed (the others under way are cancelled).
        ConfigurationError: a key lies outside the part of the layout the bucket was opened on.
    """
    groups = sorted(partition(sessions).items())
    done = created = 0
    inside = f"{bucket.root}/{bucket.within}" if bucket.root else bucket.within
    limiter = anyio.CapacityLimiter(bucket.concurrency)

    async def upload(sut_name: str, day: date, group: Sequence[EncodedSession]) -> None:
        nonlocal done, created
        async with limiter:
            bundle = encode_bundle(group)
            key = bundle_key(sut_name, day, bundle.bundle_id, bucket.root)
            if bucket.within and not key.startswith(inside.rstrip("/") + "/"):
                raise ConfigurationError(f"{bucket.uri}: cannot write {key}: outside the opened prefix")
            etag = await put_bundle(bucket, key, bundle)
        created += etag is not None
        done += bundle.count
        if progress is not None:
            progress("write", done, len(sessions))

    await run_concurrently([partial(upload, sut, day, group) for (sut, day), group in groups])
    if progress is not None:
        progress("new bundles", created, len(groups))
    return done
