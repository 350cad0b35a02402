"""The read side of the S3 backend: scanning sessions, finding one by id, and records for an import."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from pytest_insight.errors import CorruptStoreError, InvalidDataError
from pytest_insight.format.decoding import Limits, SessionLine, SourceItem
from pytest_insight.format.layout import BundleKey, parse_bundle_key
from pytest_insight.model.session_ids import id_start
from pytest_insight.model.sessions import TestSession
from pytest_insight.progress import ProgressCallback
from pytest_insight.storage.s3.bucket import Bucket
from pytest_insight.storage.s3.listing import list_keys
from pytest_insight.storage.s3.objects import StoredBundle
from pytest_insight.storage.s3.pipeline import read_bundles
from pytest_insight.storage.scope import EVERYTHING, Scope

__all__ = ["find", "records", "scan"]


def _strict(bucket: Bucket, stored: StoredBundle) -> None:
    if stored.failure is not None:
        raise stored.failure
    if stored.errors:
        error = stored.errors[0]
        raise CorruptStoreError(error.source or bucket.object_uri(stored.key), error.line, error.reason)


async def scan(bucket: Bucket, scope: Scope = EVERYTHING) -> AsyncGenerator[TestSession, None]:
    """Yield the sessions of the bundles listed for ``scope``.

    Raises:
        CorruptStoreError: a bundle cannot be decoded.
        StorageError: the listing or a download failed.
    """
    async with aclosing(read_bundles(bucket, list_keys(bucket, scope))) as bundles:
        async for stored in bundles:
            _strict(bucket, stored)
            for session in stored.sessions:
                yield session


async def find(bucket: Bucket, session_id: str) -> TestSession | None:
    """The session with this id, or None; a plugin id is looked for in its own day first.

    Raises:
        CorruptStoreError: a bundle cannot be decoded.
        StorageError: the listing or a download failed.
    """
    start = id_start(session_id)
    if start is not None:  # the plugin's ids name their start second: that day's bundles first
        found = await _find(bucket, session_id, Scope.of_day(start.date()))
        if found is not None:
            return found
    return await _find(bucket, session_id, EVERYTHING)  # any other id, or a session moved since


async def _find(bucket: Bucket, session_id: str, scope: Scope) -> TestSession | None:
    async with aclosing(scan(bucket, scope)) as sessions:
        async for session in sessions:
            if session.session_id == session_id:
                return session
    return None


async def records(
    bucket: Bucket, scope: Scope, limits: Limits, progress: ProgressCallback | None = None
) -> AsyncGenerator[SourceItem, None]:
    """Yield the sessions in ``scope`` with their lines, and an error record per bad or unreadable object.

    Reports ``("list", keys found, None)`` and ``("transfer", bundles read, keys found)``.
    A session whose SUT or day is not its key's partition is an error record,
    as in a directory of bundles.

    Raises:
        StorageError: the listing failed (bucket missing, access denied).
    """
    listed = 0

    async def counted(keys: AsyncGenerator[str, None]) -> AsyncGenerator[str, None]:
        nonlocal listed
        async with aclosing(keys) as found:
            async for key in found:
                listed += 1
                if progress is not None:
                    progress("list", listed, None)
                yield key

    transferred = 0
    async with aclosing(read_bundles(bucket, counted(list_keys(bucket, scope)), limits)) as bundles:
        async for stored in bundles:
            transferred += 1
            if progress is not None:
                progress("transfer", transferred, listed)
            if stored.failure is not None:
                uri = bucket.object_uri(stored.key)
                reason = str(stored.failure).removeprefix(f"{uri}: ")  # the message names the object
                yield InvalidDataError(reason, source=uri)
            for item in stored.errors:
                yield item
            try:
                partition: BundleKey | None = parse_bundle_key(stored.key, bucket.root)
            except InvalidDataError:
                partition = None
            for session, line in zip(stored.sessions, stored.lines, strict=True):
                misplaced = partition and partition.misplaced(session, bucket.object_uri(stored.key))
                yield misplaced or SessionLine(session, line)
