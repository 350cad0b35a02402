"""One bundle object: reading and verifying it, and the metadata written with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import (
    ConnectionClosedError,
    FlexibleChecksumError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from pytest_insight import __version__
from pytest_insight.core.bundle import Bundle
from pytest_insight.core.decoding import Limits
from pytest_insight.core.layout import parse_bundle_key
from pytest_insight.core.models import SCHEMA_VERSION, TestSession
from pytest_insight.errors import BundleTooLargeError, InvalidDataError, StorageError
from pytest_insight.storage.s3_codec import decode_verified

if TYPE_CHECKING:
    from pytest_insight.storage.s3_reads import S3Reader

__all__ = ["BODY_ATTEMPTS", "StoredBundle", "bundle_metadata", "read_object"]

BODY_ATTEMPTS = 5
"""Downloads of one object whose body breaks off or fails its checksum before it counts as an error."""

_BODY_ERRORS = (
    ResponseStreamingError,
    IncompleteReadError,
    ReadTimeoutError,
    ConnectionClosedError,
    FlexibleChecksumError,
)


@dataclass(slots=True)
class StoredBundle:
    """One bundle object as read: its key, ETag, sessions and the errors found in it."""

    key: str
    etag: str = ""
    sessions: list[TestSession] = field(default_factory=list)
    errors: list[InvalidDataError] = field(default_factory=list)
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

    The checksum sent on upload is verified by botocore once the body is read
    to its end; the SHA-256 of the content must match the bundle id. A body
    that breaks off, stalls or fails its checksum in transit is downloaded
    again, up to ``BODY_ATTEMPTS`` times: botocore retries only up to the
    response headers, never the body.

    Raises:
        botocore.exceptions.ClientError: the request failed (the caller translates it).
        botocore.exceptions.BotoCoreError: the body still failed on the last attempt.
    """
    uri = backend.object_uri(key)
    for attempt in range(1, BODY_ATTEMPTS + 1):
        response = backend.client.get_object(Bucket=backend.bucket, Key=key, ChecksumMode="ENABLED")
        # not ``with response["Body"]``: botocore's __enter__ hands out the raw urllib3 stream,
        # which skips the checksum check and raises urllib3's errors instead of botocore's
        body = response["Body"]
        try:
            if response.get("ContentLength", 0) > limits.max_bytes:
                too_large = BundleTooLargeError(f"more than {limits.max_bytes} bytes (limit)", source=uri)
                return StoredBundle(key, errors=[too_large])
            data = body.read()
            break
        except _BODY_ERRORS:
            if attempt == BODY_ATTEMPTS:
                raise
        finally:
            body.close()
    try:
        expected = (
            response.get("Metadata", {}).get("bundle-id") or parse_bundle_key(key, backend.root).bundle_id
        )
    except InvalidDataError as exc:
        return StoredBundle(key, errors=[exc.located(uri)])
    sessions, errors = decode_verified(data, uri, expected, limits)
    return StoredBundle(key, response.get("ETag", ""), sessions, errors)
