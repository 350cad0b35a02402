"""The S3 backend: sessions in gzipped bundles under a bucket prefix.

Layout: ``PREFIX/v1/sut=<sut>/date=<YYYY-MM-DD>/<bundle-id>.jsonl.gz``
(:mod:`pytest_insight.core.layout`), one bundle per SUT and UTC day per write.
Reads narrow the listing to the scope: one listing per SUT (the SUT's key
prefix), starting after the first wanted day (``StartAfter``) and stopping
after the last, so a prefix holding fifty SUTs and a year of days is not
listed whole to read one SUT's week.

Transfers run in worker threads (``anyio.to_thread.run_sync``) under an
``anyio.CapacityLimiter`` of ``concurrency`` (default 16, at most 64), over
one boto3 client per backend whose connection pool is as large. Uploads send
a CRC32 checksum and ``If-None-Match: *``; downloads verify that checksum
(``ChecksumMode=ENABLED``) and the SHA-256 of the content against the bundle
id. botocore's ``standard`` retry mode (``AWS_RETRY_MODE`` may pick
``adaptive``) retries throttling and network errors; what still fails is
translated by :mod:`pytest_insight.storage.s3_errors`.

boto3 is imported only with this module, which the storage facade imports
only when an ``s3://`` storage is opened.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, aclosing
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from typing import Any, cast

import anyio
import anyio.to_thread

from pytest_insight import __version__
from pytest_insight.core.bundle import Bundle, DecodedItem, EncodedSession, Limits, encode_bundle, partition
from pytest_insight.core.layout import LAYOUT_VERSION, bundle_key, encode_sut, parse_bundle_key
from pytest_insight.core.models import SCHEMA_VERSION, TestSession
from pytest_insight.errors import (
    BundleTooLargeError,
    ConfigurationError,
    CorruptStoreError,
    DependencyError,
    InvalidDataError,
    StorageError,
)
from pytest_insight.storage.base import EVERYTHING, Scope
from pytest_insight.storage.s3_codec import decode_verified

try:
    import boto3
    from botocore.config import Config
except ImportError as exc:  # pragma: no cover - boto3 is installed wherever the tests run
    raise DependencyError("S3 storage needs boto3: pip install 'pytest-insight[s3]'") from exc

from pytest_insight.storage.s3_errors import BOTO_ERRORS, is_precondition_failed, translate

__all__ = [
    "DEFAULT_CONCURRENCY",
    "MAX_CONCURRENCY",
    "S3Backend",
    "StoredBundle",
    "exchange_location",
    "run_concurrently",
]

DEFAULT_CONCURRENCY = 16
"""Parallel transfers when none is configured."""

MAX_CONCURRENCY = 64
"""Most parallel transfers accepted: beyond it botocore's per-request CPU cost, not the network, limits."""

DELETE_BATCH = 1000
"""Most keys in one ``DeleteObjects`` request (S3's limit; moto accepts more, real servers do not)."""

CHECKSUM_ALGORITHM = "CRC32"
_WINDOW = 4  # bundles in flight per unit of concurrency while a scan yields


@dataclass(slots=True)
class StoredBundle:
    """One bundle object as read: its key, ETag, sessions and the errors found in it."""

    key: str
    etag: str = ""
    sessions: list[TestSession] = field(default_factory=list)
    errors: list[InvalidDataError] = field(default_factory=list)
    failure: StorageError | None = None


def _concurrency(value: int | None) -> int:
    if value is None:
        return DEFAULT_CONCURRENCY
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise ConfigurationError(
            f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, got {value!r}"
        )
    return value


def _split_layout(prefix: str) -> tuple[str, str]:
    """Split ``team/v1/sut=api`` into the store root ``team`` and the part inside the layout."""
    parts = prefix.split("/") if prefix else []
    for index, part in enumerate(parts):
        if part == LAYOUT_VERSION and all(
            p.startswith(("sut=", "date=")) for p in parts[index + 1 : index + 3]
        ):
            return "/".join(parts[:index]), "/".join(parts[index:])
    return prefix, ""


def _start_after(sut_prefix: str, first: date | None) -> str:
    """A ``StartAfter`` marker just past every key of the days before ``first``.

    Not ``date=<first>`` itself: SeaweedFS skips a whole directory whose
    name equals the marker, and ``~`` sorts after every character of a key.
    """
    if first is None or first == date.min:
        return ""
    return f"{sut_prefix}date={(first - timedelta(days=1)).isoformat()}/~"


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
        self.root, self.within = _split_layout(self.prefix)
        self.concurrency = _concurrency(concurrency)
        self.endpoint_url = endpoint_url
        self.limits = limits or Limits.from_env()
        self.client: Any = client if client is not None else self._make_client(region)
        if client is not None:  # more threads than pooled connections would only churn connections
            pool = getattr(
                getattr(getattr(client, "meta", None), "config", None), "max_pool_connections", None
            )
            if isinstance(pool, int) and concurrency is None:
                self.concurrency = max(1, min(self.concurrency, pool))

    def _make_client(self, region: str | None) -> Any:
        config = Config(
            retries=cast("Any", {"mode": os.environ.get("AWS_RETRY_MODE") or "standard"}),
            max_pool_connections=max(self.concurrency, 10),
        )
        session = boto3.session.Session()
        try:
            return session.client("s3", endpoint_url=self.endpoint_url, region_name=region, config=config)
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

        def run() -> Any:
            try:
                return function()
            except BOTO_ERRORS as exc:
                if is_precondition_failed(exc):
                    return None
                raise translate(
                    exc, action=action, bucket=self.bucket, key=key, endpoint=self.endpoint_url
                ) from exc

        return await anyio.to_thread.run_sync(run, limiter=limiter)

    # -- listing ------------------------------------------------------------

    def _base(self) -> str:
        return f"{self.root}/{LAYOUT_VERSION}/" if self.root else f"{LAYOUT_VERSION}/"

    async def _listing_prefixes(self, scope: Scope) -> list[str]:
        base = self._base()
        if scope.sut_name is not None:
            candidates = [f"{base}sut={encode_sut(scope.sut_name)}/"]
        elif scope.since is None and scope.until is None:
            candidates = [base]
        else:  # a date range over every SUT: list the SUTs, then each one from its first wanted day
            candidates = [p async for p in self._common_prefixes(base)]
        if not self.within:
            return candidates
        within = f"{self.root}/{self.within}" if self.root else self.within
        within = within if within.endswith(".jsonl.gz") else within.rstrip("/") + "/"
        narrowed = []
        for candidate in candidates:
            if within.startswith(candidate):
                narrowed.append(within)
            elif candidate.startswith(within):
                narrowed.append(candidate)
        return sorted(set(narrowed))

    async def _common_prefixes(self, base: str) -> AsyncGenerator[str, None]:
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = await self.call(
                "s3:ListBucket",
                base,
                partial(self.client.list_objects_v2, Bucket=self.bucket, Prefix=base, Delimiter="/", **extra),
            )
            for item in page.get("CommonPrefixes", []):
                yield item["Prefix"]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def list_keys(self, scope: Scope = EVERYTHING) -> AsyncGenerator[str, None]:
        """Yield the keys of the bundles that may hold sessions inside ``scope``.

        Raises:
            NotFoundError: the bucket does not exist.
            AccessDeniedError: listing is not allowed.
            StorageError: the listing failed.
        """
        first = scope.since.date() if scope.since is not None else None
        last = scope.until.date() if scope.until is not None else None
        wanted_sut = encode_sut(scope.sut_name) if scope.sut_name is not None else None
        for prefix in await self._listing_prefixes(scope):
            is_sut_prefix = prefix.rstrip("/").rsplit("/", 1)[-1].startswith("sut=")
            start_after = _start_after(prefix, first) if is_sut_prefix else ""
            async for key in self._list_prefix(prefix, start_after):
                if key.endswith("/"):
                    continue  # a "folder" marker made by a console
                try:
                    parsed = parse_bundle_key(key, self.root)
                except InvalidDataError:
                    yield key  # not in the layout: the reader reports it
                    continue
                if wanted_sut is not None and parsed.sut_part != wanted_sut:
                    continue
                if first is not None and parsed.day < first:
                    continue
                if last is not None and parsed.day > last:
                    if is_sut_prefix:
                        break  # keys under one SUT are in date order: nothing later is wanted
                    continue
                yield key

    async def _list_prefix(self, prefix: str, start_after: str) -> AsyncGenerator[str, None]:
        token: str | None = None
        while True:
            extra: dict[str, str] = {"ContinuationToken": token} if token else {}
            if start_after and not token:
                extra["StartAfter"] = start_after
            page = await self.call(
                "s3:ListBucket",
                prefix,
                partial(self.client.list_objects_v2, Bucket=self.bucket, Prefix=prefix, **extra),
            )
            for item in page.get("Contents", []):
                yield item["Key"]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    # -- reading ------------------------------------------------------------

    def _read_sync(self, key: str, limits: Limits) -> StoredBundle:
        uri = self.object_uri(key)
        response = self.client.get_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        with response["Body"] as body:
            if response.get("ContentLength", 0) > limits.max_bytes:
                too_large = BundleTooLargeError(f"more than {limits.max_bytes} bytes (limit)", source=uri)
                return StoredBundle(key, errors=[too_large])
            data = body.read()  # reading to the end is what makes botocore check the checksum
        try:
            expected = (
                response.get("Metadata", {}).get("bundle-id") or parse_bundle_key(key, self.root).bundle_id
            )
        except InvalidDataError as exc:
            return StoredBundle(key, errors=[exc.located(uri)])
        sessions, errors = decode_verified(data, uri, expected, limits)
        return StoredBundle(key, response.get("ETag", ""), sessions, errors)

    async def read_bundle(
        self, key: str, limiter: anyio.CapacityLimiter | None = None, limits: Limits | None = None
    ) -> StoredBundle:
        """Download and decode one bundle; a failure is recorded in the result, never raised.

        Raises:
            ConfigurationError: there are no credentials (nothing will work).
        """
        bounds = limits or self.limits
        try:
            stored: StoredBundle | None = await self.call(
                "s3:GetObject", key, lambda: self._read_sync(key, bounds), limiter
            )
        except StorageError as exc:
            return StoredBundle(key, failure=exc)
        if stored is None:  # pragma: no cover - a GET sends no condition
            raise StorageError(f"{self.object_uri(key)}: unexpected 412", uri=self.object_uri(key))
        return stored

    async def read_bundles(
        self, keys: AsyncGenerator[str, None], limits: Limits | None = None
    ) -> AsyncGenerator[StoredBundle, None]:
        """Download bundles ``concurrency`` at a time and yield them as windows complete.

        No task group is open while this generator yields, so a consumer
        may stop early without leaving transfers behind.
        """
        limiter = anyio.CapacityLimiter(self.concurrency)
        window: list[str] = []
        async with aclosing(keys) as listed:
            async for key in listed:
                window.append(key)
                if len(window) >= self.concurrency * _WINDOW:
                    for stored in await self._read_window(window, limiter, limits):
                        yield stored
                    window = []
        for stored in await self._read_window(window, limiter, limits):
            yield stored

    async def _read_window(
        self, keys: list[str], limiter: anyio.CapacityLimiter, limits: Limits | None
    ) -> list[StoredBundle]:
        results: list[StoredBundle] = [StoredBundle(key) for key in keys]

        async def fetch(index: int) -> None:
            results[index] = await self.read_bundle(keys[index], limiter, limits)

        async with anyio.create_task_group() as group:
            for index in range(len(keys)):
                group.start_soon(fetch, index)
        return results

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
        async with aclosing(self.scan()) as sessions:
            async for session in sessions:
                if session.session_id == session_id:
                    return session
        return None

    async def records(self, scope: Scope, limits: Limits) -> AsyncGenerator[DecodedItem, None]:
        """Yield the sessions in ``scope`` and one error record per bad or unreadable object (for import).

        Raises:
            StorageError: the listing failed (bucket missing, access denied).
        """
        async with aclosing(self.read_bundles(self.list_keys(scope), limits)) as bundles:
            async for stored in bundles:
                if stored.failure is not None:
                    yield InvalidDataError(str(stored.failure), source=self.object_uri(stored.key))
                for item in stored.errors:
                    yield item
                for session in stored.sessions:
                    yield session

    # -- writing ------------------------------------------------------------

    def _metadata(self, bundle: Bundle) -> dict[str, str]:
        return {
            "bundle-id": bundle.bundle_id,
            "schema-version": str(SCHEMA_VERSION),
            "session-count": str(bundle.count),
            "producer": f"pytest-insight/{__version__}",
        }

    async def put_bundle(
        self,
        key: str,
        bundle: Bundle,
        *,
        if_match: str | None = None,
        limiter: anyio.CapacityLimiter | None = None,
    ) -> bool:
        """Upload ``bundle`` at ``key``: only if absent, or only over the version with ETag ``if_match``.

        Returns:
            False when the condition did not hold (the key exists, or changed since read).

        Raises:
            StorageError: the upload failed.
        """
        condition = {"IfMatch": if_match} if if_match else {"IfNoneMatch": "*"}
        response = await self.call(
            "s3:PutObject",
            key,
            lambda: self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=bundle.data,
                ContentType="application/gzip",
                ChecksumAlgorithm=CHECKSUM_ALGORITHM,
                Metadata=self._metadata(bundle),
                **condition,
            ),
            limiter,
        )
        return response is not None

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

    async def write(self, sessions: Sequence[EncodedSession], progress: Any = None) -> int:
        """Upload sessions as one bundle per SUT and day; bundles already there are left alone.

        Returns:
            The number of sessions exported.

        Raises:
            StorageError: an upload failed.
        """
        limiter = anyio.CapacityLimiter(self.concurrency)
        done = 0

        async def upload(sut_name: str, day: date, group: list[EncodedSession]) -> None:
            nonlocal done
            bundle = encode_bundle(group)
            await self.put_bundle(self.key_for(sut_name, day, bundle.bundle_id), bundle, limiter=limiter)
            done += bundle.count
            if progress is not None:
                progress("write", done, len(sessions))

        groups = sorted(partition(sessions).items())
        await run_concurrently([partial(upload, sut_name, day, items) for (sut_name, day), items in groups])
        return done

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


def exchange_location(uri: str) -> S3Backend:
    """The import source and export sink at ``s3://bucket/prefix`` (see ``core.locations``)."""
    return S3Backend.from_uri(uri)
