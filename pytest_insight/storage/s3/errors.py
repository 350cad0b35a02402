"""obstore's errors turned into pytest-insight errors: the one place that knows both.

==============================================  ===========================
obstore (and the S3 error code in its message)  pytest-insight
==============================================  ===========================
``NoSuchBucket``                                :class:`NotFoundError`
``NotFoundError`` (``NoSuchKey``, 404)          :class:`NotFoundError`
``PermissionDeniedError``, ``Unauthenticated``  :class:`AccessDeniedError`
(``AccessDenied``, ``SignatureDoesNotMatch``,
``InvalidAccessKeyId``, ``ExpiredToken``)
no credentials could be loaded                  :class:`ConfigurationError`
a redirect without a location (wrong region)    :class:`WrongRegionError`
connection refused, timeouts, closed sockets    :class:`EndpointError`
anything else                                   :class:`StorageError`
==============================================  ===========================

A precondition failure (``If-None-Match`` / ``If-Match``) is not an error
here: :func:`is_precondition_failed` tells the caller, which answers it.
Each message is one line naming the ``s3://`` location and the IAM action
(``s3:GetObject``, ``s3:PutObject``, ``s3:ListBucket``, ``s3:DeleteObject``).
"""

from __future__ import annotations

import re

from obstore import exceptions as obstore_errors

from pytest_insight.errors import (
    AccessDeniedError,
    ConfigurationError,
    EndpointError,
    InsightError,
    NotFoundError,
    StorageError,
)

__all__ = [
    "STORE_ERRORS",
    "WrongRegionError",
    "error_code",
    "from_code",
    "is_precondition_failed",
    "is_wrong_region",
    "translate",
]

STORE_ERRORS: tuple[type[BaseException], ...] = (
    obstore_errors.BaseError,
    FileNotFoundError,  # obstore's NotFoundError is also a FileNotFoundError
)
"""What obstore raises for a failed request; catch these around an obstore call."""

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
_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]{0,300})</Message>")
_STATUS = re.compile(r"non-2xx status code: (\d{3})")
_UNREACHABLE = (
    "error sending request",
    "connection refused",
    "operation timed out",
    "timed out",
    "dns error",
    "connection reset",
    "connection closed",
    "tcp connect error",
)
_NO_CREDENTIALS = ("error getting credentials", "failed to load credentials", "no credentials")


class WrongRegionError(ConfigurationError):
    """The bucket lives in another region than the one requests were signed for."""


def error_code(exc: BaseException) -> str:
    """Return the S3 error code an obstore error carries (the HTTP status when the body had none), else ''."""
    text = str(exc)
    found = _CODE.search(text)
    if found:
        return found.group(1).strip()
    status = _STATUS.search(text)
    return status.group(1) if status else ""


def is_precondition_failed(exc: BaseException) -> bool:
    """Return whether ``exc`` says an ``If-None-Match`` / ``If-Match`` condition did not hold."""
    return isinstance(exc, obstore_errors.AlreadyExistsError | obstore_errors.PreconditionError)


def is_wrong_region(exc: BaseException) -> bool:
    """Return whether ``exc`` is S3's answer to a request sent to the bucket's wrong region."""
    text = str(exc).lower()
    return "redirect without location" in text or error_code(exc) in (
        "PermanentRedirect",
        "AuthorizationHeaderMalformed",
        "IllegalLocationConstraintException",
    )


def from_code(code: str, message: str, *, action: str, bucket: str, key: str = "") -> StorageError:
    """Return the error for an S3 error code, as found in a response."""
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


def _summary(exc: BaseException) -> str:
    """obstore's message cut to its first line, without the request's URL and timings."""
    first = str(exc).split("\n", 1)[0]
    message = _XML_MESSAGE.search(str(exc))
    if message:
        return message.group(1).strip()
    first = re.sub(r"Error performing \w+ \S+ in [\d.]+\w+,?", "", first)
    return " ".join(first.split())[:300] or type(exc).__name__


def translate(
    exc: BaseException, *, action: str, bucket: str, key: str = "", endpoint: str | None = None
) -> InsightError:
    """Return the pytest-insight error for an obstore error (raise it ``from exc``).

    Args:
        exc: what obstore raised.
        action: the IAM action that failed, such as ``s3:GetObject``.
        bucket: the bucket it was about.
        key: the object key or listing prefix, if any.
        endpoint: the endpoint URL, when not AWS's default.
    """
    uri = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    code = error_code(exc)
    lowered = str(exc).lower()
    if is_wrong_region(exc):
        return WrongRegionError(
            f"s3://{bucket}: the bucket is in another region than the one configured; "
            "set AWS_REGION, the profile's region or the storage's region option"
        )
    if code and not code.isdigit():
        return from_code(code, _summary(exc), action=action, bucket=bucket, key=key)
    if isinstance(exc, obstore_errors.PermissionDeniedError | obstore_errors.UnauthenticatedError):
        return from_code(code or "403", "", action=action, bucket=bucket, key=key)
    if isinstance(exc, FileNotFoundError):
        return from_code("404", "", action=action, bucket=bucket, key=key)
    if any(marker in lowered for marker in _NO_CREDENTIALS):
        return ConfigurationError(
            f"{uri}: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "or AWS_PROFILE, or configure a profile"
        )
    if any(marker in lowered for marker in _UNREACHABLE):
        where = endpoint or "the S3 endpoint"
        return EndpointError(f"{uri}: cannot reach {where} for {action} ({_summary(exc)})", uri=uri)
    if code:
        return from_code(code, "", action=action, bucket=bucket, key=key)
    return StorageError(f"{uri}: {action} failed ({_summary(exc)})", uri=uri)
