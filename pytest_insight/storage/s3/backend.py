"""The S3 backend: sessions in gzipped bundles under a bucket prefix.

Layout: ``PREFIX/v1/sut=<sut>/date=<YYYY-MM-DD>/<bundle-id>.jsonl.gz``
(:mod:`pytest_insight.format.layout`), one bundle per SUT and UTC day per write.
Reads narrow the listing to the scope (:mod:`~pytest_insight.storage.s3.listing`).

Every request goes through one obstore store (Rust ``object_store``):
outside the GIL, ``concurrency`` at a time (default 16, at most 64), with
obstore's retries with exponential backoff (10 attempts unless ``max_attempts``
or ``AWS_MAX_ATTEMPTS`` says otherwise: :mod:`~pytest_insight.storage.s3.retries`).
The store is built once from the user's configuration
(:mod:`~pytest_insight.storage.s3.config`). This class only composes the
modules below it::

    backend ─▶ transaction, clear, compact, reads
                 └─▶ index, rewrite, deletes ─▶ pipeline ─▶ objects, listing ─▶ bucket ─▶ config, errors
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from pytest_insight.errors import ConfigurationError, StorageError
from pytest_insight.format.bundle import EncodedSession
from pytest_insight.format.decoding import Limits, SourceItem
from pytest_insight.model.sessions import TestSession
from pytest_insight.progress import ProgressCallback
from pytest_insight.storage.s3 import clear, compact, reads
from pytest_insight.storage.s3.bucket import Bucket, check_concurrency
from pytest_insight.storage.s3.config import TransportLimits, make_store, resolve_settings
from pytest_insight.storage.s3.listing import list_keys
from pytest_insight.storage.s3.objects import StoredBundle, read_bundle
from pytest_insight.storage.s3.pipeline import upload_sessions
from pytest_insight.storage.s3.transaction import S3Transaction, delete_all_or_raise, open_transaction
from pytest_insight.storage.scope import EVERYTHING, Scope

if TYPE_CHECKING:
    from obstore.store import ObjectStore

__all__ = ["S3Backend", "exchange_location"]


class S3Backend:
    """Sessions in ``s3://bucket/prefix``, on AWS S3 or any S3-compatible server.

    A prefix that reaches into the layout (``team/v1/sut=api`` or one day,
    as copied from a console) reads only that part; the store's root is the
    part before ``v1``.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        concurrency: int | None = None,
        unsigned: bool = False,
        store: ObjectStore | None = None,
        limits: Limits | None = None,
        s3_express: bool | None = None,
        transport: TransportLimits | None = None,
    ) -> None:
        """Open the bucket prefix (nothing is requested until it is used).

        Args:
            bucket: the bucket name.
            prefix: the key prefix of the store.
            endpoint_url: an S3-compatible server; the user's configuration when None.
            region: the region; the user's configuration when None.
            concurrency: parallel transfers, 1 to 64 (default 16).
            unsigned: send requests unsigned, without credentials (a public bucket).
            store: an obstore store to use instead of building one (``MemoryStore`` in tests).
            limits: decoding bounds; :meth:`Limits.from_env` when None.
            s3_express: the bucket is an S3 Express One Zone directory bucket;
                when None, a name ending in ``--x-s3`` is one (``AWS_S3_EXPRESS`` decides otherwise).
            transport: timeouts and attempts tighter than the configured ones.

        Raises:
            ConfigurationError: no bucket, a concurrency out of range, or no credentials.
            DependencyError: the ``[s3]`` extra is not installed.
        """
        if not bucket or "/" in bucket:
            where = f"s3://{bucket}/{prefix}"
            raise ConfigurationError(f"{where}: an s3:// URI needs a bucket name (without '/')")
        workers = check_concurrency(concurrency)
        settings = None
        if store is None:
            settings = resolve_settings(
                bucket,
                endpoint_url=endpoint_url,
                region=region,
                concurrency=workers,
                unsigned=unsigned,
                s3_express=s3_express,
                transport=transport,
            )
            store = make_store(settings)
        self.bucket = Bucket(
            bucket,
            prefix,
            store=store,
            settings=settings,
            concurrency=workers,
            limits=limits or Limits.from_env(),
        )

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> S3Backend:
        """Open ``s3://bucket/prefix``.

        Raises:
            ConfigurationError: the URI has no bucket.
        """
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        return cls(bucket, prefix, **options)

    @property
    def uri(self) -> str:
        """The storage URI that reopens this backend."""
        return self.bucket.uri

    @property
    def concurrency(self) -> int:
        """Parallel transfers."""
        return self.bucket.concurrency

    def object_uri(self, key: str) -> str:
        """The ``s3://`` URI of one object, for messages."""
        return self.bucket.object_uri(key)

    # -- reading ------------------------------------------------------------

    def list_keys(self, scope: Scope = EVERYTHING) -> AsyncGenerator[str, None]:
        """Yield the keys of the bundles that may hold sessions inside ``scope``.

        Raises:
            NotFoundError: the bucket does not exist.
            AccessDeniedError: listing is not allowed.
            StorageError: the listing failed.
        """
        return list_keys(self.bucket, scope)

    async def read_bundle(self, key: str) -> StoredBundle:
        """Download and decode one bundle; a failure is recorded in the result, never raised."""
        return await read_bundle(self.bucket, key)

    def scan(self, scope: Scope = EVERYTHING) -> AsyncGenerator[TestSession, None]:
        """Yield the stored sessions, at least those inside ``scope``.

        Raises:
            CorruptStoreError: a bundle cannot be decoded.
            StorageError: the bucket cannot be read.
        """
        return reads.scan(self.bucket, scope)

    async def get(self, session_id: str) -> TestSession | None:
        """Return the session with this id, or None."""
        return await reads.find(self.bucket, session_id)

    def records(
        self, scope: Scope, limits: Limits, progress: ProgressCallback | None = None
    ) -> AsyncGenerator[SourceItem, None]:
        """Yield the sessions in ``scope`` with their lines, and an error record per bad object (an import).

        Raises:
            StorageError: the listing failed (bucket missing, access denied).
        """
        return reads.records(self.bucket, scope, limits, progress)

    # -- writing ------------------------------------------------------------

    async def write(
        self, sessions: Sequence[EncodedSession], progress: ProgressCallback | None = None
    ) -> int:
        """Upload sessions as one bundle per SUT and day, ``concurrency`` at a time (an export).

        A bundle already there (same content, same key) is left alone, so
        exporting twice uploads nothing new.

        Returns:
            The number of sessions exported.

        Raises:
            StorageError: an upload failed.
        """
        return await upload_sessions(self.bucket, sessions, progress)

    async def delete_keys(self, keys: Sequence[str]) -> None:
        """Delete objects with ``DeleteObjects``, at most 1000 keys a request.

        Raises:
            AccessDeniedError: the server refused to delete a key.
            StorageError: a request failed.
        """
        await delete_all_or_raise(self.bucket, keys)

    def transaction(self) -> AbstractAsyncContextManager[S3Transaction]:
        """Open a transaction; it commits when the block exits without an exception."""
        return open_transaction(self.bucket)

    async def compact(self, scope: Scope = EVERYTHING) -> compact.CompactStats:
        """Merge the bundles of each partition in ``scope`` into one (see ``compact``).

        Raises:
            StorageError: the listing or an upload failed.
        """
        return await compact.compact(self.bucket, scope)

    async def clear_scope(self, scope: Scope) -> int:
        """Remove every session inside ``scope``, deleting whole partitions without reading them.

        Returns:
            The number of sessions removed.

        Raises:
            StorageError: some objects could not be deleted or rewritten (counted and named).
        """
        stats = await clear.clear_scope(self.bucket, scope)
        if stats["errors"]:
            first = stats["error_messages"][0] if stats["error_messages"] else ""
            raise StorageError(
                f"{self.uri}: removed {stats['sessions']} sessions, but {stats['errors']} objects "
                f"failed (first: {first})",
                uri=self.uri,
            )
        return stats["sessions"]


def exchange_location(uri: str) -> S3Backend:
    """The import source and export sink at ``s3://bucket/prefix`` (see ``core.locations``)."""
    return S3Backend.from_uri(uri)
