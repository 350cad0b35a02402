"""Compaction: merge the many small bundles of each partition into one.

Every CI run lands as its own bundle, so a busy SUT's day holds hundreds of
small objects and an import makes a request for each. Compaction rewrites
each (SUT, day) partition that holds two bundles or more as one
deduplicated bundle, in this order:

1. read the partition's bundles (concurrently), remembering their ETags;
2. upload the merged bundle under its content-derived key with
   ``If-None-Match: *`` (a 412 means that exact bundle is already there);
3. list the partition again: when a bundle that was merged changed or
   vanished meanwhile (a concurrent clear rewrote it), the merged bundle is
   withdrawn (if this run created it) and the partition redone;
4. delete exactly the keys that were merged, never the new one and never a
   bundle uploaded after step 1, so a concurrent writer's bundle is not lost.

A partition holding an undecodable bundle, or two different sessions under
one id, is left as it is and reported in ``errors``. What stays open is the
moment between step 3 and the delete: a rewrite landing exactly then is lost.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import TypedDict, cast

import anyio

from pytest_insight.errors import StorageError
from pytest_insight.format.bundle import content_digest, encode_bundle
from pytest_insight.format.layout import BundleKey
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.s3.bucket import Bucket
from pytest_insight.storage.s3.clear import delete_counting, new_stats
from pytest_insight.storage.s3.listing import ListedObject, list_objects, list_pages, partition_prefix
from pytest_insight.storage.s3.objects import put_bundle
from pytest_insight.storage.s3.pipeline import each_key, read_bundles
from pytest_insight.storage.scope import EVERYTHING, Scope

__all__ = ["CompactStats", "compact"]

_ATTEMPTS = 3


class CompactStats(TypedDict):
    """What a compaction did: partitions rewritten, bundles before and after, duplicates dropped."""

    partitions: int
    bundles_before: int
    bundles_after: int
    sessions: int
    duplicates: int
    errors: int
    error_messages: list[str]


async def _partitions(backend: Bucket, scope: Scope) -> AsyncGenerator[list[ListedObject], None]:
    """Yield the listed bundles partition by partition (a SUT's keys are listed in date order)."""
    current: list[ListedObject] = []
    async with aclosing(list_objects(backend, scope)) as listed:
        async for item in listed:
            if item.parsed is None:
                continue
            if current and current[0].parsed is not None and current[0].parsed[:2] != item.parsed[:2]:
                yield current
                current = []
            current.append(item)
    if current:
        yield current


def _merge(sessions: dict[str, TestSession], digests: dict[str, str], found: TestSession) -> str | None:
    """Add ``found``; return "duplicate" for an identical copy, "conflict" for a different one."""
    sid = found.session_id
    if sid not in sessions:
        sessions[sid] = found
        return None
    if sid not in digests:
        digests[sid] = content_digest(sessions[sid])
    return "duplicate" if content_digest(found) == digests[sid] else "conflict"


class _Compactor:
    def __init__(self, backend: Bucket) -> None:
        self.backend = backend
        self.limiter = anyio.CapacityLimiter(backend.concurrency)
        self.stats = CompactStats(
            partitions=0,
            bundles_before=0,
            bundles_after=0,
            sessions=0,
            duplicates=0,
            errors=0,
            error_messages=[],
        )

    def error(self, message: str) -> None:
        self.stats["errors"] += 1
        self.stats["error_messages"].append(message)

    async def partition(self, listed: list[ListedObject]) -> None:
        where = cast("BundleKey", listed[0].parsed)  # _partitions yields only parsed keys
        for _attempt in range(_ATTEMPTS):
            outcome = await self._attempt(where, listed)
            if outcome != "changed":
                return
            listed = [item async for item in self._relist(where)]
            if len(listed) < 2:
                return
        self.error(f"{self.uri(where)}: kept changing while being compacted; left as it is")

    def uri(self, where: BundleKey) -> str:
        return self.backend.object_uri(partition_prefix(self.backend.root, where))

    async def _relist(self, where: BundleKey) -> AsyncIterator[ListedObject]:
        prefix = partition_prefix(self.backend.root, where)
        async with aclosing(list_pages(self.backend, prefix)) as pages:
            async for page in pages:
                for key, etag, size in page:
                    yield ListedObject(key, etag, size, where)

    async def _attempt(self, where: BundleKey, listed: list[ListedObject]) -> str:
        backend = self.backend
        sessions: dict[str, TestSession] = {}
        digests: dict[str, str] = {}
        etags: dict[str, str] = {}
        duplicates = 0
        async with aclosing(read_bundles(backend, each_key([item.key for item in listed]))) as bundles:
            async for stored in bundles:
                if stored.failure is not None or stored.errors:
                    reason = stored.failure or stored.errors[0]
                    self.error(f"{backend.object_uri(stored.key)}: not compacted: {reason}")
                    return "skipped"
                etags[stored.key] = stored.etag
                for session in stored.sessions:
                    verdict = _merge(sessions, digests, session)
                    if verdict == "conflict":
                        self.error(
                            f"{self.uri(where)}: not compacted: two different sessions "
                            f"with id {session.session_id!r}"
                        )
                        return "skipped"
                    duplicates += verdict == "duplicate"
        bundle = await anyio.to_thread.run_sync(encode_bundle, list(sessions.values()), limiter=self.limiter)
        key = BundleKey(where.sut_part, where.day, bundle.bundle_id).key(backend.root)
        created = await put_bundle(backend, key, bundle) is not None
        now = {item.key: item.etag async for item in self._relist(where)}
        if any(now.get(merged) != etag for merged, etag in etags.items() if merged != key):
            if created:
                await delete_counting(backend, [key], new_stats())
            return "changed"
        merged_keys = sorted(k for k in etags if k != key)
        scratch = new_stats()
        await delete_counting(backend, merged_keys, scratch)
        for message in scratch["error_messages"]:
            self.error(message)
        self.stats["partitions"] += 1
        self.stats["bundles_before"] += len(etags)
        self.stats["bundles_after"] += 1 + scratch["errors"]
        self.stats["sessions"] += len(sessions)
        self.stats["duplicates"] += duplicates
        return "done"


async def compact(backend: Bucket, scope: Scope = EVERYTHING, *, min_bundles: int = 2) -> CompactStats:
    """Merge each partition in ``scope`` that holds ``min_bundles`` bundles or more into one.

    Returns:
        The partitions compacted, bundles before and after, sessions kept,
        duplicate copies dropped, and the partitions or objects that failed.

    Raises:
        NotFoundError: the bucket does not exist.
        AccessDeniedError: listing or writing is not allowed.
        StorageError: an upload failed.
    """
    compactor = _Compactor(backend)
    async with aclosing(_partitions(backend, scope)) as partitions:
        async for listed in partitions:
            if len(listed) >= min_bundles:
                try:
                    await compactor.partition(listed)
                except StorageError as exc:
                    compactor.error(
                        f"{compactor.uri(cast('BundleKey', listed[0].parsed))}: not compacted: {exc}"
                    )
    return compactor.stats
