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

__all__ = ["StoredBundle", "bundle_metadata", "read_object"]


@dataclass(slots=True)
class StoredBundle:
    """One bundle object as read: its key, ETag, sessions, the line of each and the errors in it."""

    key: str
    etag: str = ""
    sessions: list[TestSession] = field(default_factory=list)
    errors: list[InvalidDataError] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    failure: StorageError | None = None


def bundle_metadata(bundle: Bundle) -> dict[str, str]:
    """The object metadata of a bundle: its id, schema version, session count and producer."""
    return {
        "bundle-id": bundle.bundle_id,
        "schema-version": str(SCHEMA_VERSION),
        "session-count": str(bundle.count),
        "producer": f"pytest-insight/{__version__}",
    }


def read_object(backend: S3Reader, key: str, limits: Limits) -> StoredBundle:
    """Download, verify and decode one bundle (in a worker thread); bad content is recorded, not raised.

    The download (:mod:`~pytest_insight.storage.s3_direct`) checks the length
    and the CRC32 sent on upload, retrying a body that breaks off or fails
    them; here the SHA-256 of the content must match the bundle id.

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
    sessions, lines, errors = decode_verified(fetched.body, uri, expected, limits)
    return StoredBundle(key, fetched.etag, sessions, errors, lines)
