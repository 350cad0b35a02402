"""What the direct S3 calls read back: bodies, errors as botocore's, and ListObjectsV2 pages.

:mod:`~pytest_insight.storage.s3_direct` sends the requests; this module
turns the answers into what boto3's calls would have returned or raised, so
that the callers, botocore's retry handlers and the error translation see
no difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus
from xml.etree import ElementTree

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError
from urllib3.exceptions import HTTPError as URLLib3Error

from pytest_insight.storage.s3_wire import WireResponse, body_limit

__all__ = ["BadListing", "BodyError", "Refused", "answer_of", "metadata_of", "parse_listing", "refusal"]

_META = "x-amz-meta-"
_REDIRECTS = frozenset({301, 307, 400})  # AWS's answers to a request sent to the bucket's wrong region


class Refused(ClientError):
    """An error response, with the HTTP response the retry conditions look at.

    ``region`` is the bucket's region when AWS answered that the request went
    to the wrong one (``x-amz-bucket-region``, or ``Region`` in the error).
    """

    def __init__(
        self, error_response: Any, operation: str, http_response: AWSResponse, region: str = ""
    ) -> None:
        super().__init__(error_response, operation)
        self.http_response = http_response
        self.region = region


class BadListing(BotoCoreError):
    """A ``ListObjectsV2`` answer that is not a ListBucketResult (translated as any botocore error)."""

    fmt = "the server's ListObjectsV2 answer cannot be read: {error}"


class BodyError(Exception):
    """The body broke off, came short or failed its checksum: worth another attempt."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def metadata_of(headers: Mapping[str, str]) -> dict[str, str]:
    """The user metadata among response headers (names lower case), without their prefix."""
    return {name[len(_META) :]: value for name, value in headers.items() if name.startswith(_META)}


def answer_of(response: AWSResponse, max_bytes: int, *, streamed: bool) -> WireResponse:
    """A botocore response, its body read (up to ``max_bytes``; an error's up to ``ERROR_BODY_LIMIT``).

    Raises:
        BodyError: the body broke off.
    """
    raw = response.raw
    headers = {name.lower(): value for name, value in response.headers.items()}
    limit = body_limit(response.status_code, max_bytes)
    length = int(headers.get("content-length", -1))
    if not streamed:  # botocore read the whole body already (an upload's answer: small)
        content = response.content
        return WireResponse(response.status_code, headers, content if len(content) <= limit else None, length)
    try:
        body = None if length > limit else bytes(raw.read(limit + 1))
    except (OSError, URLLib3Error) as exc:
        raw.close()  # a connection with part of a body left on it cannot be reused
        raise BodyError(ConnectionClosedError(endpoint_url=response.url, error=exc)) from exc
    if body is None or len(body) > limit:
        raw.close()
        return WireResponse(response.status_code, headers, None, max(length, len(body or b"")))
    return WireResponse(response.status_code, headers, body, length)


def refusal(operation: str, url: str, answer: WireResponse) -> Refused:
    """The error an answer of status 300 or more is, as botocore would raise it."""
    code = message = region = ""
    try:
        # the configured endpoint's error document (read up to ERROR_BODY_LIMIT), parsed as botocore does
        document = ElementTree.fromstring(answer.body or b"")  # noqa: S314
    except ElementTree.ParseError:
        pass
    else:
        code, message = document.findtext("Code") or "", document.findtext("Message") or ""
        region = document.findtext("Region") or ""
    error_response: Any = {
        "Error": {"Code": code or str(answer.status), "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": answer.status},
    }
    redirected = answer.status in _REDIRECTS
    region = (answer.headers.get("x-amz-bucket-region") or region) if redirected else ""
    headers = HTTPHeaders()
    for name, value in answer.headers.items():
        headers[name] = value
    return Refused(error_response, operation, AWSResponse(url, answer.status, headers, None), region)


def parse_listing(body: bytes) -> dict[str, Any]:
    """A ``ListObjectsV2`` answer as boto3 returns it, with the fields the listing reads.

    ``Contents`` (``Key``, ``ETag``, ``Size``), ``CommonPrefixes``
    (``Prefix``), ``IsTruncated`` and ``NextContinuationToken``; keys and
    prefixes are decoded when the server says it URL-encoded them, as
    botocore decodes them.

    Raises:
        BadListing: the body is not a ListBucketResult.
    """
    try:
        document = ElementTree.fromstring(body)  # noqa: S314 (the configured endpoint's answer)
    except ElementTree.ParseError as exc:
        raise BadListing(error=exc) from exc
    if _local(document.tag) != "ListBucketResult":
        raise BadListing(error=f"<{_local(document.tag)}> where <ListBucketResult> was expected")
    decode = unquote_plus if document.findtext("{*}EncodingType") == "url" else str
    page: dict[str, Any] = {"IsTruncated": document.findtext("{*}IsTruncated") == "true"}
    contents = []
    for item in document.iterfind("{*}Contents"):
        fields = {_local(part.tag): part.text or "" for part in item}
        contents.append(
            {
                "Key": decode(fields.get("Key", "")),
                "ETag": fields.get("ETag", ""),
                "Size": _size(fields),
            }
        )
    if contents:
        page["Contents"] = contents
    prefixes = [
        {"Prefix": decode(item.findtext("{*}Prefix") or "")}
        for item in document.iterfind("{*}CommonPrefixes")
    ]
    if prefixes:
        page["CommonPrefixes"] = prefixes
    token = document.findtext("{*}NextContinuationToken")
    if token is not None:
        page["NextContinuationToken"] = token
    return page


def _size(fields: Mapping[str, str]) -> int:
    try:
        return int(fields.get("Size") or 0)
    except ValueError as exc:
        raise BadListing(error=f"the size of {fields.get('Key')!r} is {fields['Size']!r}") from exc


def _local(tag: str) -> str:
    """An element's name without its namespace."""
    return tag.rpartition("}")[2]
