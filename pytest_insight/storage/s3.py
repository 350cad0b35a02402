"""The S3 backend: sessions in gzipped bundles under a bucket prefix.

Layout: ``PREFIX/v1/sut=<sut>/date=<YYYY-MM-DD>/<bundle-id>.jsonl.gz``
(:mod:`pytest_insight.core.layout`), one bundle per SUT and UTC day per write.
Reads narrow the listing to the scope: one listing per SUT (the SUT's key
prefix), starting after the first wanted day (``StartAfter``) and stopping
after the last, so a prefix holding fifty SUTs and a year of days is not
listed whole to read one SUT's week.

Transfers run in worker threads (``anyio.to_thread.run_sync``) under an
``anyio.CapacityLimiter`` of ``concurrency`` (default 16, at most 64), over
one boto3 client per backend whose connection pool is as large. Bundles are
downloaded and uploaded by :mod:`~pytest_insight.storage.s3_direct` over
that client's credentials, HTTP pool and hooks, without its per-request
machinery; every other call is a boto3 call. Uploads send a CRC32 checksum
and ``If-None-Match: *``; downloads verify that checksum and the SHA-256 of
the content against the bundle id. botocore's ``standard`` retry mode
(``AWS_RETRY_MODE`` may pick ``adaptive``), with 10 attempts unless
``AWS_MAX_ATTEMPTS`` says otherwise, retries throttling and network errors;
what still fails is translated by :mod:`pytest_insight.storage.s3_errors`.

boto3 is imported only with this module, which the storage facade imports
only when an ``s3://`` storage is opened.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.to_thread

from pytest_insight.core.bundle import Bundle, EncodedSession
from pytest_insight.core.decoding import Limits
from pytest_insight.core.layout import bundle_key
from pytest_insight.core.progress import ProgressCallback
from pytest_insight.errors import (
    ConfigurationError,
    DependencyError,
    StorageError,
)
from pytest_insight.storage.base import EVERYTHING, Scope

if TYPE_CHECKING:
    from pytest_insight.storage.s3_compact import CompactStats

try:
    import botocore.session
    from botocore.config import Config
except ImportError as exc:  # pragma: no cover - boto3 is installed wherever the tests run
    raise DependencyError("S3 storage needs boto3: pip install 'pytest-insight[s3]'") from exc

from pytest_insight.storage.s3_direct import DirectObjects
from pytest_insight.storage.s3_errors import BOTO_ERRORS, translate
from pytest_insight.storage.s3_index import IdIndex
from pytest_insight.storage.s3_listing import split_layout
from pytest_insight.storage.s3_objects import StoredBundle, bundle_metadata
from pytest_insight.storage.s3_pipeline import upload_sessions
from pytest_insight.storage.s3_reads import S3Reader

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_ATTEMPTS",
    "MAX_CONCURRENCY",
    "READ_TIMEOUT",
    "S3Backend",
    "StoredBundle",
    "exchange_location",
]

DEFAULT_CONCURRENCY = 16
"""Parallel transfers when none is configured."""

MAX_CONCURRENCY = 64
"""Most parallel transfers accepted: beyond it botocore's per-request CPU cost, not the network, limits."""

DEFAULT_MAX_ATTEMPTS = 10
"""Attempts per request (``AWS_MAX_ATTEMPTS`` overrides): botocore's 3 lose about one object in a
thousand when a tenth of requests fail, as a flaky proxy or an overloaded server makes them."""

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a connection (botocore's default is 60; ``PYTEST_INSIGHT_S3_CONNECT_TIMEOUT``
overrides): an endpoint that drops the packets (a firewall, a wrong private address) fails within a
minute over every attempt, not ten minutes."""

READ_TIMEOUT = 30.0
"""Seconds to wait for the next bytes of an answer (botocore's default is 60;
``PYTEST_INSIGHT_S3_READ_TIMEOUT`` overrides)."""

DELETE_BATCH = 1000
"""Most keys in one ``DeleteObjects`` request (S3's limit; moto accepts more, real servers do not)."""


def _concurrency(value: int | None) -> int:
    if value is None:
        return DEFAULT_CONCURRENCY
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise ConfigurationError(
            f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, got {value!r}"
        )
    return value


def _seconds(variable: str, default: float) -> float:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ConfigurationError(f"{variable}={raw!r}: expected a positive number of seconds")
    return value


class S3Backend(S3Reader):
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
        client: Any = None,
        limits: Limits | None = None,
    ) -> None:
        """Open the bucket prefix (nothing is requested until it is used).

        Args:
            bucket: the bucket name.
            prefix: the key prefix of the store.
            endpoint_url: an S3-compatible server; boto3's chain when None.
            region: the region; boto3's chain when None.
            concurrency: parallel transfers, 1 to 64 (default 16).
            client: a boto3 S3 client to use instead of creating one.
            limits: decoding bounds; :meth:`Limits.from_env` when None.

        Raises:
            ConfigurationError: no bucket, or a concurrency out of range.
        """
        if not bucket or "/" in bucket:
            raise ConfigurationError(f"s3://{bucket}/{prefix}: a bucket name is required (no '/')")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.root, self.within = split_layout(self.prefix)
        self.concurrency = _concurrency(concurrency)
        self.endpoint_url = endpoint_url
        self.limits = limits or Limits.from_env()
        self.client: Any = client if client is not None else self._make_client(region)
        self.direct = DirectObjects(self.client, bucket)
        self.index = IdIndex()
        if client is not None:  # more threads than pooled connections would only churn connections
            pool = getattr(
                getattr(getattr(client, "meta", None), "config", None), "max_pool_connections", None
            )
            if isinstance(pool, int) and concurrency is None:
                self.concurrency = max(1, min(self.concurrency, pool))

    def _make_client(self, region: str | None) -> Any:
        attempts = os.environ.get("AWS_MAX_ATTEMPTS") or str(DEFAULT_MAX_ATTEMPTS)
        if not attempts.isdigit() or int(attempts) < 1:
            raise ConfigurationError(f"AWS_MAX_ATTEMPTS must be a whole number >= 1, got {attempts!r}")
        retries = {
            "mode": os.environ.get("AWS_RETRY_MODE") or "standard",
            "total_max_attempts": int(attempts),
        }
        config = Config(
            retries=cast("Any", retries),
            max_pool_connections=max(self.concurrency, 10),
            connect_timeout=_seconds("PYTEST_INSIGHT_S3_CONNECT_TIMEOUT", CONNECT_TIMEOUT),
            read_timeout=_seconds("PYTEST_INSIGHT_S3_READ_TIMEOUT", READ_TIMEOUT),
        )
        try:
            session = botocore.session.Session()  # boto3's chain; boto3 itself costs 20 ms to import
            return session.create_client(
                "s3", endpoint_url=self.endpoint_url, region_name=region, config=config
            )
        except BOTO_ERRORS as exc:
            raise translate(
                exc, action="s3:CreateClient", bucket=self.bucket, endpoint=self.endpoint_url
            ) from exc

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
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    # -- writing ------------------------------------------------------------

    async def put_bundle(
        self,
        key: str,
        bundle: Bundle,
        *,
        if_match: str | None = None,
        limiter: anyio.CapacityLimiter | None = None,
    ) -> bool:
        """Upload ``bundle`` at ``key``: only if absent, or only over the version with ETag ``if_match``.

        The index learns what the key now holds, so this backend never reads
        its own bundle back to know its ids.

        Returns:
            False when the condition did not hold (the key exists, or changed since read).

        Raises:
            StorageError: the upload failed.
        """
        etag = await anyio.to_thread.run_sync(
            partial(self.store_bundle, key, bundle, if_match), limiter=limiter
        )
        self.learn(key, bundle, etag)
        return etag is not None

    def store_bundle(self, key: str, bundle: Bundle, if_match: str | None = None) -> str | None:
        """:meth:`put_bundle`'s upload, here in a worker thread; pass what it returns to :meth:`learn`.

        Returns:
            The new object's ETag, or None when the condition did not hold.

        Raises:
            StorageError: the upload failed.
        """
        return self.translated(
            "s3:PutObject",
            key,
            lambda: self.direct.put(
                key,
                bundle.data,
                content_type="application/gzip",
                metadata=bundle_metadata(bundle),
                if_match=if_match,
            ),
        )

    def learn(self, key: str, bundle: Bundle, etag: str | None) -> None:
        """Tell the index what an upload by :meth:`store_bundle` left at ``key`` (on the event loop)."""
        if etag:
            self.index.learn(key, etag, bundle.session_ids)

    def key_for(self, sut_name: str, day: date, bundle_id: str) -> str:
        """The key of a new bundle of this SUT and day.

        Raises:
            ConfigurationError: the key lies outside the part of the layout this backend was opened on.
        """
        key = bundle_key(sut_name, day, bundle_id, self.root)
        inside = f"{self.root}/{self.within}" if self.root else self.within
        if self.within and not key.startswith(inside.rstrip("/") + "/"):
            raise ConfigurationError(f"{self.uri}: cannot write {key}: outside the opened prefix")
        return key

    async def write(
        self, sessions: Sequence[EncodedSession], progress: ProgressCallback | None = None
    ) -> int:
        """Upload sessions as one bundle per SUT and day, ``concurrency`` at a time.

        Each bundle is gzipped and uploaded in a worker thread; a bundle
        already there (same content, same key) is left alone, so exporting
        twice uploads nothing new.

        Returns:
            The number of sessions exported.

        Raises:
            StorageError: an upload failed.
        """
        return await upload_sessions(self, sessions, progress)

    async def delete_keys(self, keys: Sequence[str]) -> None:
        """Delete objects with ``DeleteObjects``, at most 1000 keys a request.

        Raises:
            AccessDeniedError: the server refused to delete a key.
            StorageError: a request failed.
        """
        from pytest_insight.storage.s3_transaction import delete_in_batches

        await delete_in_batches(self, keys)

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        from pytest_insight.storage.s3_transaction import open_transaction

        return open_transaction(self)

    async def compact(self, scope: Scope = EVERYTHING) -> CompactStats:
        """Merge the bundles of each partition in ``scope`` into one (see ``s3_compact``).

        Raises:
            StorageError: the listing or an upload failed.
        """
        from pytest_insight.storage.s3_compact import compact

        return await compact(self, scope)

    async def clear_scope(self, scope: Scope) -> int:
        """Remove every session inside ``scope``, deleting whole partitions without reading them.

        Returns:
            The number of sessions removed.

        Raises:
            StorageError: some objects could not be deleted or rewritten (counted and named).
        """
        from pytest_insight.storage.s3_clear import clear_scope

        stats = await clear_scope(self, scope)
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
