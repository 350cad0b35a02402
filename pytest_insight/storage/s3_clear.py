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
from typing import TYPE_CHECKING, Any, TypedDict

import anyio

from pytest_insight.core.bundle import encode_bundle
from pytest_insight.core.layout import BundleKey
from pytest_insight.errors import NotFoundError, StorageError
from pytest_insight.storage.base import Scope
from pytest_insight.storage.s3_listing import list_objects
from pytest_insight.storage.s3_pipeline import run_concurrently

if TYPE_CHECKING:
    from pytest_insight.storage.s3 import S3Backend, StoredBundle

__all__ = ["ClearStats", "clear_scope", "delete_collecting", "partition_inside"]

_REWRITE_ATTEMPTS = 5
_MAX_MESSAGES = 1000


class ClearStats(TypedDict):
    """What a scoped clear did."""

    sessions: int
    deleted_objects: int
    rewritten_objects: int
    errors: int
    error_messages: list[str]


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


async def delete_collecting(
    backend: S3Backend, keys: list[str], stats: ClearStats, limiter: anyio.CapacityLimiter
) -> set[str]:
    """Delete ``keys`` in ``DeleteObjects`` batches of at most 1000, counting each key that failed.

    Returns:
        The keys that were not deleted.
    """
    from pytest_insight.storage.s3 import DELETE_BATCH

    failed: set[str] = set()

    async def delete(batch: list[str]) -> None:
        request = {"Objects": [{"Key": key} for key in batch], "Quiet": True}
        try:
            response = await backend.call(
                "s3:DeleteObject",
                batch[0],
                partial(backend.client.delete_objects, Bucket=backend.bucket, Delete=request),
                limiter,
            )
        except StorageError as exc:
            for key in batch:
                _error(stats, f"{backend.object_uri(key)}: not deleted: {exc}")
            failed.update(batch)
            return
        refused = {
            str(item.get("Key", "")): f"{item.get('Code', '')}: {item.get('Message', '')}"
            for item in (response or {}).get("Errors", [])
            if item.get("Code") != "NoSuchKey"
        }
        for key, reason in sorted(refused.items()):
            _error(stats, f"{backend.object_uri(key)}: not deleted ({reason})")
        failed.update(refused)
        stats["deleted_objects"] += len(batch) - len(refused)

    batches = [keys[start : start + DELETE_BATCH] for start in range(0, len(keys), DELETE_BATCH)]
    await run_concurrently([partial(delete, batch) for batch in batches])
    return failed


async def _count(backend: S3Backend, key: str, limiter: anyio.CapacityLimiter) -> int:
    head: Any = await backend.call(
        "s3:GetObject", key, partial(backend.client.head_object, Bucket=backend.bucket, Key=key), limiter
    )
    count = str((head or {}).get("Metadata", {}).get("session-count", ""))
    if count.isdigit():
        return int(count)
    stored = await backend.read_bundle(key, limiter)  # written by another producer: count by reading
    if stored.failure is not None:
        raise stored.failure
    # A bad line was a session; an error of the whole object (not gzip, wrong hash) counts none.
    return len(stored.sessions) + sum(1 for error in stored.errors if error.line is not None)


async def _rewrite(
    backend: S3Backend, stored: StoredBundle, scope: Scope, stats: ClearStats, limiter: anyio.CapacityLimiter
) -> None:
    for _attempt in range(_REWRITE_ATTEMPTS):
        if isinstance(stored.failure, NotFoundError):
            return  # deleted meanwhile: nothing left to remove
        if stored.failure is not None or stored.errors:
            reason = stored.failure or stored.errors[0]
            _error(stats, f"{backend.object_uri(stored.key)}: not cleared: {reason}")
            return
        remaining = [s for s in stored.sessions if not scope.admits(s)]
        removed = len(stored.sessions) - len(remaining)
        if not removed:
            return
        if not remaining:
            if not await delete_collecting(backend, [stored.key], stats, limiter):
                stats["sessions"] += removed
            return
        try:
            written = await backend.put_bundle(
                stored.key, encode_bundle(remaining), if_match=stored.etag, limiter=limiter
            )
        except StorageError as exc:
            _error(stats, f"{backend.object_uri(stored.key)}: not rewritten: {exc}")
            return
        if written:
            stats["sessions"] += removed
            stats["rewritten_objects"] += 1
            return
        stored = await backend.read_bundle(stored.key, limiter)  # changed since read: redo on what is there
    _error(stats, f"{backend.object_uri(stored.key)}: kept changing while being rewritten")


async def clear_scope(backend: S3Backend, scope: Scope) -> ClearStats:
    """Remove every session inside ``scope`` from the store (see the module docstring).

    Returns:
        The sessions removed, objects deleted and rewritten, and the objects that failed.

    Raises:
        NotFoundError: the bucket does not exist.
        AccessDeniedError: listing is not allowed.
        ConfigurationError: there are no credentials.
    """
    stats = ClearStats(sessions=0, deleted_objects=0, rewritten_objects=0, errors=0, error_messages=[])
    limiter = anyio.CapacityLimiter(backend.concurrency)
    whole: list[str] = []
    boundary: list[str] = []
    async for listed in list_objects(backend, scope):
        if listed.parsed is None:
            continue  # not a bundle of the layout: never ours to delete
        (whole if partition_inside(listed.parsed, scope) else boundary).append(listed.key)

    counts: dict[str, int] = {}

    async def count(key: str) -> None:
        try:
            counts[key] = await _count(backend, key, limiter)
        except StorageError as exc:
            _error(stats, f"{backend.object_uri(key)}: not deleted: cannot count its sessions: {exc}")

    async def boundary_job(key: str) -> None:
        await _rewrite(backend, await backend.read_bundle(key, limiter), scope, stats, limiter)

    await run_concurrently(
        [partial(count, key) for key in whole] + [partial(boundary_job, k) for k in boundary]
    )
    failed = await delete_collecting(backend, sorted(counts), stats, limiter)
    stats["sessions"] += sum(n for key, n in counts.items() if key not in failed)
    return stats
