"""botocore errors turned into pytest-insight errors: the one place that knows both.

==============================================  ===========================
botocore                                        pytest-insight
==============================================  ===========================
``NoSuchBucket``                                :class:`NotFoundError`
``NoSuchKey``, 404                              :class:`NotFoundError`
``AccessDenied``, 403, bad keys or signature    :class:`AccessDeniedError`
``NoCredentialsError``, partial credentials     :class:`ConfigurationError`
connection refused, timeouts, closed sockets    :class:`EndpointError`
a checksum that does not match on download      :class:`CorruptStoreError`
anything else from the server or botocore       :class:`StorageError`
==============================================  ===========================

Each message is one line naming the ``s3://`` location and the IAM action
(``s3:GetObject``, ``s3:PutObject``, ``s3:ListBucket``, ``s3:DeleteObject``).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    FlexibleChecksumError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from pytest_insight.errors import (
    AccessDeniedError,
    ConfigurationError,
    CorruptStoreError,
    EndpointError,
    InsightError,
    NotFoundError,
    StorageError,
)

__all__ = ["BOTO_ERRORS", "error_code", "from_code", "is_precondition_failed", "translate"]

BOTO_ERRORS = (BotoCoreError, ClientError)
"""The exceptions :func:`translate` accepts; catch these around a boto3 call."""

_DENIED = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "403",
        "Forbidden",
    }
)
_MISSING_OBJECT = frozenset({"NoSuchKey", "404", "NotFound"})


def error_code(exc: BaseException) -> str:
    """Return the S3 error code of a ``ClientError`` (HTTP status when the body had none), else ''."""
    if not isinstance(exc, ClientError):
        return ""
    response: Any = exc.response
    code = str(response.get("Error", {}).get("Code", "") or "")
    return code or str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def is_precondition_failed(exc: BaseException) -> bool:
    """Return whether ``exc`` is a 412: an ``If-None-Match`` / ``If-Match`` condition did not hold."""
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 412 or error_code(exc) in ("PreconditionFailed", "412")


def from_code(code: str, message: str, *, action: str, bucket: str, key: str = "") -> StorageError:
    """Return the error for an S3 error code, as found in a response or a ``DeleteObjects`` result."""
    uri = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    detail = f"{code}: {message.strip()}" if message.strip() else code
    if code == "NoSuchBucket":
        return NotFoundError(f"s3://{bucket}: no such bucket ({action})", uri=uri)
    if code in _DENIED:
        return AccessDeniedError(
            f"{uri}: access denied for {action} ({detail})", uri=uri, action=action, key=key
        )
    if code in _MISSING_OBJECT:
        return NotFoundError(f"{uri}: no such object ({action})", uri=uri)
    return StorageError(f"{uri}: {action} failed ({detail})", uri=uri)


def translate(
    exc: BotoCoreError | ClientError, *, action: str, bucket: str, key: str = "", endpoint: str | None = None
) -> InsightError:
    """Return the pytest-insight error for a botocore error (raise it ``from exc``).

    Args:
        exc: what boto3 raised.
        action: the IAM action that failed, such as ``s3:GetObject``.
        bucket: the bucket it was about.
        key: the object key or listing prefix, if any.
        endpoint: the endpoint URL, when not AWS's default.
    """
    uri = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    if isinstance(exc, ClientError):
        message = str(exc.response.get("Error", {}).get("Message", "") or "")
        return from_code(error_code(exc), message, action=action, bucket=bucket, key=key)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return ConfigurationError(
            f"{uri}: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "or AWS_PROFILE, or configure a profile"
        )
    if isinstance(exc, ProfileNotFound):
        return ConfigurationError(f"{uri}: {exc}")
    if isinstance(
        exc, EndpointConnectionError | ConnectTimeoutError | ConnectionClosedError | ReadTimeoutError
    ):
        where = endpoint or "the S3 endpoint"
        return EndpointError(f"{uri}: cannot reach {where} for {action} ({exc})", uri=uri)
    if isinstance(exc, FlexibleChecksumError):
        return CorruptStoreError(uri, None, f"checksum mismatch on download: {exc}")
    return StorageError(f"{uri}: {action} failed ({exc})", uri=uri)
