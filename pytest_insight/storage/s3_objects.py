"""One bundle object: reading and verifying it, and the metadata written with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_insight import __version__
from pytest_insight.core.bundle import Bundle
from pytest_insight.core.decoding import Limits
from pytest_insight.core.layout import parse_bundle_key
from pytest_insight.core.models import SCHEMA_VERSION, TestSession
from pytest_insight.errors import BundleTooLargeError, InvalidDataError, StorageError
from pytest_insight.storage.s3_codec import decode_verified

if TYPE_CHECKING:
    from pytest_insight.storage.s3_reads import S3Reader

__all__ = ["Downloaded", "StoredBundle", "bundle_metadata", "decode_object", "fetch_object"]


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
    body: bytes
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


def fetch_object(backend: S3Reader, key: str, limits: Limits) -> Downloaded | StoredBundle:
    """Download one bundle (in a worker thread): its bytes and the bundle id they must hash to.

    The download (:mod:`~pytest_insight.storage.s3_direct`) checks the length
    and the CRC32 sent on upload, retrying a body that breaks off or fails
    them.

    Returns:
        The download, or, when it cannot be a bundle (too large, a key
        outside the layout without a bundle id), the bundle with that error.

    Raises:
        botocore.exceptions.ClientError: the request failed (the caller translates it).
        botocore.exceptions.BotoCoreError: the connection or the body still failed on the last attempt.
    """
    uri = backend.object_uri(key)
    fetched = backend.direct.get(key, limits.max_bytes)
    if fetched.body is None:
        too_large = BundleTooLargeError(f"more than {limits.max_bytes} bytes (limit)", source=uri)
        return StoredBundle(key, errors=[too_large])
    try:
        expected = fetched.metadata.get("bundle-id") or parse_bundle_key(key, backend.root).bundle_id
    except InvalidDataError as exc:
        return StoredBundle(key, errors=[exc.located(uri)])
    return Downloaded(key, uri, fetched.body, fetched.etag, expected)


def decode_object(downloaded: Downloaded, limits: Limits) -> StoredBundle:
    """Decode a download and check it against its bundle id; bad content is recorded, not raised."""
    sessions, lines, errors = decode_verified(downloaded.body, downloaded.uri, downloaded.bundle_id, limits)
    return StoredBundle(downloaded.key, downloaded.etag, sessions, errors, lines)
