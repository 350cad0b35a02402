"""The read side of the S3 backend: requests in worker threads, listing, downloads and scans.

:class:`S3Reader` is the base of :class:`~pytest_insight.storage.s3.S3Backend`;
it holds what every S3 operation shares (the one place boto3 calls run and
their errors are translated) and the protocol's read methods.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from pytest_insight.core.decoding import Limits, SessionLine, SourceItem
from pytest_insight.core.layout import BundleKey, parse_bundle_key
from pytest_insight.core.models import TestSession
from pytest_insight.core.progress import ProgressCallback
from pytest_insight.core.session_ids import id_start
from pytest_insight.errors import CorruptStoreError, InvalidDataError, StorageError
from pytest_insight.storage.base import EVERYTHING, Scope
from pytest_insight.storage.s3_direct import DirectObjects
from pytest_insight.storage.s3_errors import BOTO_ERRORS, is_precondition_failed, translate
from pytest_insight.storage.s3_listing import list_keys
from pytest_insight.storage.s3_objects import (
    Downloaded,
    StoredBundle,
    decode_object,
    fetch_object,
)
from pytest_insight.storage.s3_pipeline import read_bundles

__all__ = ["INLINE_DECODE_BYTES", "S3Reader"]

T = TypeVar("T")

INLINE_DECODE_BYTES = 1 << 20
"""The largest download decoded on the event loop (a few milliseconds of work); larger ones go to a thread."""


class S3Reader:
    """Requests, listing and reads over one boto3 client (set up by ``S3Backend.__init__``)."""

    bucket: str
    root: str
    within: str
    concurrency: int
    endpoint_url: str | None
    limits: Limits
    client: Any
    direct: DirectObjects

    def object_uri(self, key: str) -> str:
        """The ``s3://`` URI of one object, for messages."""
        return f"s3://{self.bucket}/{key}"

    # -- calls --------------------------------------------------------------

    async def call(
        self,
        action: str,
        key: str,
        function: Callable[..., Any],
        limiter: anyio.CapacityLimiter | None = None,
    ) -> Any:
        """Run a boto3 call in a worker thread; botocore errors come back as ours.

        Returns:
            What ``function`` returned, or None when the server answered 412
            (an ``If-None-Match`` / ``If-Match`` condition did not hold).

        Raises:
            StorageError: the call failed (see :mod:`pytest_insight.storage.s3_errors`).
            ConfigurationError: there are no credentials.
        """
        return await anyio.to_thread.run_sync(self.translated, action, key, function, limiter=limiter)

    def translated(self, action: str, key: str, function: Callable[[], T]) -> T | None:
        """Call ``function`` (a boto3 call) here; botocore errors come back as ours, a 412 as None.

        Raises:
            StorageError: the call failed (see :mod:`pytest_insight.storage.s3_errors`).
            ConfigurationError: there are no credentials.
        """
        try:
            return function()
        except BOTO_ERRORS as exc:
            if is_precondition_failed(exc):
                return None
            raise translate(
                exc, action=action, bucket=self.bucket, key=key, endpoint=self.endpoint_url
            ) from exc

    # -- listing ------------------------------------------------------------

    def list_keys(self, scope: Scope = EVERYTHING) -> AsyncGenerator[str, None]:
        """Yield the keys of the bundles that may hold sessions inside ``scope`` (see ``s3_listing``).

        Raises:
            NotFoundError: the bucket does not exist.
            AccessDeniedError: listing is not allowed.
            StorageError: the listing failed.
        """
        return list_keys(self, scope)

    # -- reading ------------------------------------------------------------

    async def read_bundle(
        self, key: str, limiter: anyio.CapacityLimiter | None = None, limits: Limits | None = None
    ) -> StoredBundle:
        """Download (in a worker thread) and decode one bundle; a failure is recorded, never raised.

        Raises:
            ConfigurationError: there are no credentials (nothing will work).
        """
        bounds = limits or self.limits
        fetched = await anyio.to_thread.run_sync(self.fetch, key, bounds, limiter=limiter)
        return await self.decode(fetched, bounds)

    def fetch(self, key: str, limits: Limits) -> Downloaded | StoredBundle:
        """Download one bundle, here (in a worker thread); a failure is recorded in the result, never raised.

        Raises:
            ConfigurationError: there are no credentials (nothing will work).
        """
        try:
            fetched = self.translated("s3:GetObject", key, partial(fetch_object, self, key, limits))
        except StorageError as exc:
            return StoredBundle(key, failure=exc)
        if fetched is None:  # pragma: no cover - a GET sends no condition
            raise StorageError(f"{self.object_uri(key)}: unexpected 412", uri=self.object_uri(key))
        return fetched

    async def decode(self, fetched: Downloaded | StoredBundle, limits: Limits) -> StoredBundle:
        """Decode a download from :meth:`fetch` (a failed one is returned as it is).

        A bundle of up to :data:`INLINE_DECODE_BYTES` is decoded right here, on
        the event loop: decoding holds the GIL, and handing it to threads of
        its own only has them trade the GIL with the downloads (a third more
        CPU in all, on 2,000 bundles of 55 KB). A larger one is decoded in a
        worker thread, so the loop is never held for long.
        """
        if isinstance(fetched, StoredBundle):
            return fetched
        if len(fetched.body) <= INLINE_DECODE_BYTES:
            return decode_object(fetched, limits)
        return await anyio.to_thread.run_sync(decode_object, fetched, limits)

    def read_bundles(
        self, keys: AsyncGenerator[str, None], limits: Limits | None = None
    ) -> AsyncGenerator[StoredBundle, None]:
        """Download bundles ``concurrency`` at a time, yielding each as it arrives (see ``s3_pipeline``)."""
        return read_bundles(self, keys, limits)

    def _strict(self, stored: StoredBundle) -> None:
        if stored.failure is not None:
            raise stored.failure
        if stored.errors:
            error = stored.errors[0]
            raise CorruptStoreError(error.source or self.object_uri(stored.key), error.line, error.reason)

    async def scan(self, scope: Scope = EVERYTHING) -> AsyncGenerator[TestSession, None]:
        async with aclosing(self.read_bundles(self.list_keys(scope))) as bundles:
            async for stored in bundles:
                self._strict(stored)
                for session in stored.sessions:
                    yield session

    async def get(self, session_id: str) -> TestSession | None:
        start = id_start(session_id)
        if start is not None:  # the plugin's ids name their start second: that day's bundles first
            found = await self._find(session_id, Scope.of_day(start.date()))
            if found is not None:
                return found
        return await self._find(session_id, EVERYTHING)  # any other id, or a session moved since

    async def _find(self, session_id: str, scope: Scope) -> TestSession | None:
        async with aclosing(self.scan(scope)) as sessions:
            async for session in sessions:
                if session.session_id == session_id:
                    return session
        return None

    async def records(
        self, scope: Scope, limits: Limits, progress: ProgressCallback | None = None
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
        async with aclosing(self.read_bundles(counted(self.list_keys(scope)), limits)) as bundles:
            async for stored in bundles:
                transferred += 1
                if progress is not None:
                    progress("transfer", transferred, listed)
                if stored.failure is not None:
                    uri = self.object_uri(stored.key)
                    reason = str(stored.failure).removeprefix(f"{uri}: ")  # the message names the object
                    yield InvalidDataError(reason, source=uri)
                for item in stored.errors:
                    yield item
                try:
                    partition: BundleKey | None = parse_bundle_key(stored.key, self.root)
                except InvalidDataError:
                    partition = None
                for session, line in zip(stored.sessions, stored.lines, strict=True):
                    misplaced = partition and partition.misplaced(session, self.object_uri(stored.key))
                    yield misplaced or SessionLine(session, line)
