"""Clearing an S3 store by scope: whole partitions go without being downloaded.

A (SUT, day) partition that lies entirely inside the scope (every session in
it started inside the window) is deleted by listing its keys and sending
``DeleteObjects`` requests of at most 1000 keys; its sessions are counted
from each object's ``session-count`` metadata (a ``HEAD``, no body), falling
back to a download only for an object without it (an object of the layout
that is not a bundle goes with its partition and counts no session). Only a
boundary day, the one the cutoff falls in, is downloaded: its bundles are
rewritten without the sessions inside the scope, conditional on the ETag
they were read with (``If-Match``), and read again and redone when another
writer changed them meanwhile; an emptied bundle is deleted.

Only objects listed are deleted, so a bundle a CI agent uploads while the
clear runs is never lost. Every object that could not be counted, rewritten
or deleted is counted in ``errors`` and named in ``error_messages``; the run
carries on with the others.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import partial
from typing import TypedDict

import anyio

from pytest_insight.errors import StorageError
from pytest_insight.format.layout import BundleKey
from pytest_insight.storage.s3.bucket import Bucket
from pytest_insight.storage.s3.deletes import delete_keys
from pytest_insight.storage.s3.listing import list_objects
from pytest_insight.storage.s3.objects import head_metadata, read_bundle
from pytest_insight.storage.s3.pipeline import run_concurrently
from pytest_insight.storage.s3.rewrite import rewrite_without
from pytest_insight.storage.scope import Scope

__all__ = ["ClearStats", "clear_scope", "delete_counting", "new_stats", "partition_inside"]

_MAX_MESSAGES = 1000


class ClearStats(TypedDict):
    """What a scoped clear did."""

    sessions: int
    deleted_objects: int
    rewritten_objects: int
    errors: int
    error_messages: list[str]


def new_stats() -> ClearStats:
    """Empty :class:`ClearStats`."""
    return ClearStats(sessions=0, deleted_objects=0, rewritten_objects=0, errors=0, error_messages=[])


def partition_inside(parsed: BundleKey, scope: Scope) -> bool:
    """Whether every session a partition can hold lies inside ``scope`` (its SUT was already matched)."""
    start = datetime.combine(parsed.day, time.min, UTC)
    if scope.since is not None and start < scope.since:
        return False
    return scope.until is None or start + timedelta(days=1) <= scope.until


def _error(stats: ClearStats, message: str) -> None:
    stats["errors"] += 1
    if len(stats["error_messages"]) < _MAX_MESSAGES:
        stats["error_messages"].append(message)


async def delete_counting(bucket: Bucket, keys: list[str], stats: ClearStats) -> set[str]:
    """Delete ``keys`` (see :mod:`~pytest_insight.storage.s3.deletes`), counting each key that failed.

    Returns:
        The keys that were not deleted.
    """
    failed = await delete_keys(bucket, keys)
    for _key, exc in sorted(failed.items()):
        _error(stats, str(exc))  # names the object and the action
    stats["deleted_objects"] += len(set(keys)) - len(failed)
    return set(failed)


async def _count(bucket: Bucket, key: str) -> int:
    count = (await head_metadata(bucket, key)).get("session-count", "")
    if count.isdigit():
        return int(count)
    stored = await read_bundle(bucket, key)  # written by another producer: count by reading
    if stored.failure is not None:
        raise stored.failure
    # A bad line was a session; an error of the whole object (not gzip, wrong hash) counts none.
    return len(stored.sessions) + sum(1 for error in stored.errors if error.line is not None)


async def _clear_boundary(bucket: Bucket, key: str, scope: Scope, stats: ClearStats) -> None:
    try:
        done = await rewrite_without(bucket, await read_bundle(bucket, key), scope.admits)
    except StorageError as exc:
        _error(stats, f"{bucket.object_uri(key)}: not cleared: {exc}")
        return
    if done.emptied:
        if not await delete_counting(bucket, [key], stats):
            stats["sessions"] += done.removed
    elif done.removed:
        stats["sessions"] += done.removed
        stats["rewritten_objects"] += 1


async def clear_scope(bucket: Bucket, scope: Scope) -> ClearStats:
    """Remove every session inside ``scope`` from the store (see the module docstring).

    Returns:
        The sessions removed, objects deleted and rewritten, and the objects that failed.

    Raises:
        NotFoundError: the bucket does not exist.
        AccessDeniedError: listing is not allowed.
        ConfigurationError: there are no credentials.
    """
    stats = new_stats()
    limiter = anyio.CapacityLimiter(bucket.concurrency)
    whole: list[str] = []
    boundary: list[str] = []
    async for listed in list_objects(bucket, scope):
        if listed.parsed is None:
            continue  # not a bundle of the layout: never ours to delete
        (whole if partition_inside(listed.parsed, scope) else boundary).append(listed.key)

    counts: dict[str, int] = {}

    async def count(key: str) -> None:
        async with limiter:
            try:
                counts[key] = await _count(bucket, key)
            except StorageError as exc:
                _error(stats, f"{bucket.object_uri(key)}: not deleted: cannot count its sessions: {exc}")

    async def clear_boundary(key: str) -> None:
        async with limiter:
            await _clear_boundary(bucket, key, scope, stats)

    await run_concurrently(
        [partial(count, key) for key in whole] + [partial(clear_boundary, key) for key in boundary]
    )
    failed = await delete_counting(bucket, sorted(counts), stats)
    stats["sessions"] += sum(n for key, n in counts.items() if key not in failed)
    return stats
