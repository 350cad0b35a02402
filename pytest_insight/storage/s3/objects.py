"""One bundle object: uploading it, downloading and verifying it, and reading its metadata.

Uploads send ``If-None-Match: *`` (obstore's ``mode="create"``) or
``If-Match`` (``mode={"e_tag": ...}``), the bundle's metadata, and a SHA-256
checksum unless the user opted out (see :mod:`~pytest_insight.storage.s3.config`).
Downloads refuse an object larger than the decoding limit before reading its
body, and always check the SHA-256 of the content against the bundle id
(:mod:`pytest_insight.storage.s3.codec`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import obstore

from pytest_insight import __version__
from pytest_insight.errors import BundleTooLargeError, InvalidDataError, StorageError
from pytest_insight.format.bundle import Bundle
from pytest_insight.format.decoding import Limits
from pytest_insight.format.layout import parse_bundle_key
from pytest_insight.model.sessions import SCHEMA_VERSION, TestSession
from pytest_insight.storage.s3.bucket import Bucket
from pytest_insight.storage.s3.codec import decode_verified

if TYPE_CHECKING:
    from obstore.store import ObjectStore

__all__ = [
    "DAMAGED_BODY_ATTEMPTS",
    "Downloaded",
    "INLINE_DECODE_BYTES",
    "StoredBundle",
    "bundle_metadata",
    "decode",
    "fetch",
    "head_metadata",
    "put_bundle",
    "put_object",
    "read_bundle",
]

INLINE_DECODE_BYTES = 1 << 20
"""The largest download decoded on the event loop (a few milliseconds of work); larger ones go to a thread."""


@dataclass(slots=True)
class StoredBundle:
    """One bundle object as read: its key, ETag, sessions, the line of each and the errors in it."""

    key: str
    etag: str = ""
    sessions: list[TestSession] = field(default_factory=list)
    errors: list[InvalidDataError] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    failure: StorageError | None = None


@dataclass(frozen=True, slots=True)
class Downloaded:
    """One bundle object's bytes as downloaded, not decoded yet."""

    key: str
    uri: str
    body: memoryview  # over obstore's buffer, not copied
    etag: str
    bundle_id: str  # what the SHA-256 of its content must start with


def bundle_metadata(bundle: Bundle) -> dict[str, str]:
    """The object metadata of a bundle: its id, schema version, session count and producer."""
    return {
        "bundle-id": bundle.bundle_id,
        "schema-version": str(SCHEMA_VERSION),
        "session-count": str(bundle.count),
        "producer": f"pytest-insight/{__version__}",
    }


async def put_bundle(bucket: Bucket, key: str, bundle: Bundle, *, if_match: str | None = None) -> str | None:
    """Upload ``bundle`` at ``key``: only if absent, or only over the version with ETag ``if_match``.

    The bucket's id index learns what the key now holds, so the backend never
    reads its own bundle back to know its ids.

    Returns:
        The new object's ETag ('' when the server sent none), or None when the
        condition did not hold (the key exists, or changed since read).

    Raises:
        StorageError: the upload failed.
    """
    attributes: dict[str, str] = {"Content-Type": "application/gzip", **bundle_metadata(bundle)}
    mode: Any = {"e_tag": if_match} if if_match else "create"

    def put(store: ObjectStore) -> Any:
        return obstore.put(store, key, bundle.data, attributes=attributes, mode=mode, use_multipart=False)

    result = await bucket.call("s3:PutObject", key, put, resend=True)
    if result is None:
        return None
    etag = str(result.get("e_tag") or "")
    if etag:
        bucket.index.learn(key, etag, bundle.session_ids)
    return etag


async def put_object(bucket: Bucket, key: str, data: bytes, content_type: str) -> None:
    """Upload ``data`` at ``key``, over what is there (a report page, not a bundle).

    Raises:
        StorageError: the upload failed.
    """

    def put(store: ObjectStore) -> Any:
        attributes = {"Content-Type": content_type}
        return obstore.put(store, key, data, attributes=attributes, use_multipart=False)

    await bucket.call("s3:PutObject", key, put, resend=True)


async def head_metadata(bucket: Bucket, key: str) -> dict[str, str]:
    """The user metadata of the object at ``key`` (a ``HEAD``, no body).

    Raises:
        StorageError: the request failed.
    """

    def head(store: ObjectStore) -> dict[str, str]:
        result = obstore.get(store, key, options={"head": True})
        return {str(name): str(value) for name, value in result.attributes.items()}

    return await bucket.call("s3:GetObject", key, head) or {}


async def fetch(bucket: Bucket, key: str, limits: Limits) -> Downloaded | StoredBundle:
    """Download one bundle: its bytes and the bundle id they must hash to.

    Returns:
        The download; or, when it cannot be a bundle (too large, a key outside
        the layout without a bundle id) or the request failed, the bundle
        with that error.

    Raises:
        ConfigurationError: no credentials, or the bucket is in another region (nothing will work).
    """
    uri = bucket.object_uri(key)

    def get(store: ObjectStore) -> tuple[memoryview | None, str, dict[str, str]]:
        result = obstore.get(store, key)
        meta, attributes = result.meta, result.attributes
        if meta["size"] > limits.max_bytes:
            return None, "", {}  # refused before its body is read
        body = memoryview(result.bytes())  # the response buffer itself: no copy
        metadata = {str(name): str(value) for name, value in attributes.items()}
        return body, str(meta.get("e_tag") or ""), metadata

    try:
        fetched = await bucket.call("s3:GetObject", key, get)
    except StorageError as exc:
        return StoredBundle(key, failure=exc)
    if fetched is None:  # pragma: no cover - a GET sends no condition
        return StoredBundle(key, failure=StorageError(f"{uri}: unexpected 412", uri=uri))
    body, etag, metadata = fetched
    if body is None or len(body) > limits.max_bytes:
        too_large = BundleTooLargeError(f"more than {limits.max_bytes} bytes (limit)", source=uri)
        return StoredBundle(key, errors=[too_large])
    try:
        expected = metadata.get("bundle-id") or parse_bundle_key(key, bucket.root).bundle_id
    except InvalidDataError as exc:
        return StoredBundle(key, errors=[exc.located(uri)])
    return Downloaded(key, uri, body, etag, expected)


def _decode(downloaded: Downloaded, limits: Limits) -> StoredBundle:
    sessions, lines, errors = decode_verified(downloaded.body, downloaded.uri, downloaded.bundle_id, limits)
    return StoredBundle(downloaded.key, downloaded.etag, sessions, errors, lines)


async def decode(fetched: Downloaded | StoredBundle, limits: Limits) -> StoredBundle:
    """Decode a download from :func:`fetch` (a failed one is returned as it is).

    A bundle of up to :data:`INLINE_DECODE_BYTES` is decoded right here, on
    the event loop: decoding holds the GIL, and a thread of its own would only
    trade the GIL with the event loop. A larger one is decoded in a worker
    thread, so the loop is never held for long.
    """
    if isinstance(fetched, StoredBundle):
        return fetched
    if len(fetched.body) <= INLINE_DECODE_BYTES:
        return _decode(fetched, limits)
    return await anyio.to_thread.run_sync(_decode, fetched, limits)


DAMAGED_BODY_ATTEMPTS = 3
"""Downloads of an object whose content does not verify (damaged in transit) before it is reported."""


def _damaged(stored: StoredBundle) -> bool:
    """Whether nothing of the object verified: a body damaged in transit looks like this."""
    return not stored.sessions and len(stored.errors) == 1 and stored.errors[0].line is None


async def read_bundle(bucket: Bucket, key: str, limits: Limits | None = None) -> StoredBundle:
    """Download and decode one bundle; a failure is recorded in the result, never raised.

    A body that does not verify as a whole (corrupt gzip, truncated, not
    matching its bundle id) is downloaded again, up to
    :data:`DAMAGED_BODY_ATTEMPTS` times in all: over plain HTTP nothing else
    catches a body damaged in transit.

    Raises:
        ConfigurationError: no credentials (nothing will work).
    """
    bounds = limits or bucket.limits
    for _attempt in range(DAMAGED_BODY_ATTEMPTS - 1):
        fetched = await fetch(bucket, key, bounds)
        stored = await decode(fetched, bounds)
        if not isinstance(fetched, Downloaded) or not _damaged(stored):
            return stored
    return await decode(await fetch(bucket, key, bounds), bounds)
