"""The bottom of the S3 backend: one bucket prefix, its one obstore store, and the one call wrapper.

Every request of the package goes through :meth:`Bucket.call`. It runs
obstore's blocking call in an anyio worker thread (the bytes move in
obstore's Rust runtime with the GIL released). obstore's ``*_async``
functions are not used: in obstore 0.12.1 a process that exits right after
them can abort (SIGABRT), even when every future was awaited, because the
Rust side completes each future from a thread of its own that takes the GIL
once more after the result is delivered, and CPython before 3.14 ends such a
thread with ``pthread_exit`` once it is finalizing (``tests/obstore_exit_abort.py``
reproduces it; docs/s3.md has the details). They also need an asyncio loop.
Worker threads are Python threads, joined before the interpreter finalizes.
A cancelled call (Ctrl-C) is abandoned at once: the request ends in its
thread, unawaited. :meth:`Bucket.call` also
translates obstore's errors (:mod:`~pytest_insight.storage.s3.errors`), answers
a failed ``If-None-Match`` / ``If-Match`` condition with None, and, when the
bucket turns out to live in another region than configured, asks botocore for
the bucket's region once, rebuilds the store and sends the request again, so
parallel uploads all land after one redirect.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
import obstore

from pytest_insight.errors import AccessDeniedError, ConfigurationError, EndpointError, NotFoundError
from pytest_insight.format.decoding import Limits
from pytest_insight.format.layout import LAYOUT_VERSION
from pytest_insight.storage.s3.config import StoreSettings, bucket_region, make_store
from pytest_insight.storage.s3.errors import STORE_ERRORS, is_precondition_failed, is_wrong_region, translate
from pytest_insight.storage.s3.ids import IdIndex

if TYPE_CHECKING:
    from obstore.store import ObjectStore

__all__ = ["DEFAULT_CONCURRENCY", "MAX_CONCURRENCY", "Bucket", "check_concurrency", "split_layout"]

T = TypeVar("T")

DEFAULT_CONCURRENCY = 16
"""Parallel transfers when none is configured."""

MAX_CONCURRENCY = 64
"""Most parallel transfers accepted."""

RESEND_BACKOFF = 0.05
"""Seconds before the first resend of a write cut off by the connection; doubled each time, at most 5 s."""


def check_concurrency(value: int | None) -> int:
    """Return ``value``, or the default when None.

    Raises:
        ConfigurationError: not a whole number from 1 to :data:`MAX_CONCURRENCY`.
    """
    if value is None:
        return DEFAULT_CONCURRENCY
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise ConfigurationError(
            f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, got {value!r}"
        )
    return value


def split_layout(prefix: str) -> tuple[str, str]:
    """Split ``team/v1/sut=api`` into the store root ``team`` and the part inside the layout."""
    parts = prefix.split("/") if prefix else []
    for index, part in enumerate(parts):
        if part == LAYOUT_VERSION and all(
            p.startswith(("sut=", "date=")) for p in parts[index + 1 : index + 3]
        ):
            return "/".join(parts[:index]), "/".join(parts[index:])
    return prefix, ""


class Bucket:
    """One bucket prefix: where its layout starts, the store serving it, and what it knows of its ids.

    Attributes:
        bucket: the bucket name.
        prefix: the key prefix the backend was opened on.
        root: the part of ``prefix`` before the layout (``v1/...``).
        within: the part of ``prefix`` inside the layout, when it reaches into it.
        concurrency: parallel requests.
        limits: decoding bounds.
        index: which session ids each bundle holds (see :mod:`~pytest_insight.storage.s3.index`).
        sorted_listing: whether listings come in key order and honour ``start-after``
            (not in an S3 Express One Zone directory bucket).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str,
        *,
        store: ObjectStore,
        settings: StoreSettings | None,
        concurrency: int,
        limits: Limits,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.root, self.within = split_layout(self.prefix)
        self.store = store
        self.settings = settings
        self.concurrency = concurrency
        self.limits = limits
        self.index = IdIndex()
        self.sorted_listing = settings is None or not settings.express
        self._moving = anyio.Lock()

    @property
    def uri(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def endpoint(self) -> str | None:
        """The S3-compatible server's URL, or None for AWS (or a store given ready-made)."""
        return self.settings.endpoint if self.settings is not None else None

    def object_uri(self, key: str) -> str:
        """The ``s3://`` URI of one object, for messages."""
        return f"s3://{self.bucket}/{key}"

    async def call(
        self,
        action: str,
        key: str,
        request: Callable[[ObjectStore], T],
        *,
        resend: bool = False,
    ) -> T | None:
        """Send one request through the store; obstore's errors come back as ours.

        obstore retries what it knows to be safe to send again. A conditional
        PUT cut off by the connection is not among those (it may have landed);
        with ``resend`` it is sent again here, with backoff: for our writes a
        second answer of 412 means what the first one would have.

        Args:
            action: the IAM action, for messages (``s3:GetObject``).
            key: the object key or listing prefix, for messages.
            request: sends the request on the store it is given (blocking; run in a thread).
            resend: send the request again when the connection failed.

        Returns:
            What ``request`` returned, or None when an ``If-None-Match`` /
            ``If-Match`` condition did not hold.

        Raises:
            StorageError: the request failed (see :mod:`~pytest_insight.storage.s3.errors`).
            ConfigurationError: no credentials, or the bucket is in another region.
        """
        threads = anyio.to_thread.current_default_thread_limiter()
        if threads.total_tokens < self.concurrency + 8:  # anyio's default of 40 would cap concurrency
            threads.total_tokens = self.concurrency + 8
        attempts = self.settings.max_attempts if self.settings is not None and resend else 1
        moved = False
        attempt = 0
        while True:
            store = self.store
            try:
                return await anyio.to_thread.run_sync(request, store, abandon_on_cancel=True)
            except STORE_ERRORS as exc:
                if is_precondition_failed(exc):
                    return None
                if not moved and is_wrong_region(exc) and await self._move_region(store):
                    moved = True
                    continue
                error = translate(exc, action=action, bucket=self.bucket, key=key, endpoint=self.endpoint)
                denied = isinstance(error, AccessDeniedError) and action != "s3:ListBucket"
                if denied and await self._missing():
                    # AWS refuses a write to a bucket that does not exist as it refuses a forbidden one
                    missing = f"s3://{self.bucket}: no such bucket ({action})"
                    raise NotFoundError(missing, uri=f"s3://{self.bucket}") from exc
                attempt += 1
                if not isinstance(error, EndpointError) or attempt >= attempts:
                    raise error from exc
            await anyio.sleep(min(RESEND_BACKOFF * 2**attempt, 5.0) * random.uniform(0.5, 1.0))  # noqa: S311

    async def _missing(self) -> bool:
        """Whether a listing says the bucket does not exist (False when it cannot tell)."""

        def first_page(store: ObjectStore) -> Any:
            return next(obstore.list(store, None, chunk_size=1), [])

        try:
            await anyio.to_thread.run_sync(first_page, self.store, abandon_on_cancel=True)
        except STORE_ERRORS as exc:
            return isinstance(translate(exc, action="s3:ListBucket", bucket=self.bucket), NotFoundError)
        return False

    async def _move_region(self, seen: Any) -> bool:
        """Rebuild the store for the bucket's own region; True when the request is worth sending again."""
        async with self._moving:
            if self.store is not seen:
                return True  # a concurrent request already moved it
            if self.settings is None:
                return False
            region = await anyio.to_thread.run_sync(bucket_region, self.settings)
            if region is None:
                return False
            self.settings = self.settings.in_region(region)
            self.store = make_store(self.settings)
            return True
