"""GetObject and PutObject of bundles, and ListObjectsV2, without botocore's per-request machinery.

A boto3 call spends about 400 µs of CPU on parameter validation, the event
chain, serialisation and response parsing before and after the bytes move
(a listing page about 0.1 ms a key): on two cores that, not the network,
caps a transfer of many small bundles (``python -m tests.bench.s3``). These
calls, the hot path of export and import, are sent here instead, over the
client's own parts (:mod:`~pytest_insight.storage.s3_answers` reads their
answers):

- its credentials (refreshed as boto3 refreshes them), region and
  endpoint, with the bucket addressed as the client addresses it;
- SigV4 as botocore signs S3 requests (:mod:`~pytest_insight.storage.s3_sigv4`,
  which keeps the day's signing key);
- its timeouts, pool size and TLS settings, over keep-alive connections of
  our own (:mod:`~pytest_insight.storage.s3_wire`); through a proxy, with
  a client certificate or with ``PYTEST_INSIGHT_S3_HTTP=botocore``, over its
  HTTP session;
- its ``before-send`` event, so moto's ``mock_aws`` and other handlers that
  answer requests still do;
- its retry mode and attempt count, through botocore's own retry handlers
  (:mod:`~pytest_insight.storage.s3_retries`: conditions, backoff, retry
  quota, adaptive mode's rate limiter). A body that breaks off, comes short
  or fails its CRC32 is retried as a broken connection.

Errors come back as botocore's (``ClientError`` with the S3 error code,
``ConnectionClosedError``, ``FlexibleChecksumError``), so the callers
translate them as any other call's.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import quote, urlsplit

import botocore.session
from botocore import UNSIGNED
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HeadersDict
from botocore.config import Config
from botocore.exceptions import (
    ConnectionClosedError,
    FlexibleChecksumError,
    HTTPClientError,
    NoCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from pytest_insight.storage.s3_answers import (
    BodyError,
    Refused,
    answer_of,
    metadata_of,
    parse_listing,
    refusal,
)
from pytest_insight.storage.s3_client_parts import bucket_url, tls_context
from pytest_insight.storage.s3_retries import DirectRetries
from pytest_insight.storage.s3_sigv4 import (
    EMPTY_SHA256,
    UNSIGNED_PAYLOAD,
    Credentials,
    Signer,
    canonical_query,
)
from pytest_insight.storage.s3_wire import ERROR_BODY_LIMIT, WirePool, WireResponse

__all__ = ["HTTP_VARIABLE", "DirectObjects", "Fetched", "crc32_header"]

HTTP_VARIABLE = "PYTEST_INSIGHT_S3_HTTP"
"""Set to ``botocore`` to send every request through botocore's HTTP session."""

_META = "x-amz-meta-"
_LISTING_LIMIT = 16 << 20  # bytes of one ListObjectsV2 answer (1,000 keys take about 300 KB)
T = TypeVar("T")


def crc32_header(data: bytes) -> str:
    """The ``x-amz-checksum-crc32`` value of ``data``: its CRC32, big-endian, base64."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode("ascii")


@dataclass(frozen=True, slots=True)
class Fetched:
    """One downloaded object: its body (None when larger than asked for), ETag, length and metadata."""

    body: bytes | None
    etag: str
    length: int
    metadata: Mapping[str, str] = field(default_factory=dict)


class DirectObjects:
    """GET and conditional PUT of whole objects in one bucket, through a boto3 client's parts.

    Thread-safe: calls run in worker threads, many at once.
    """

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket
        self._retries = DirectRetries(client)
        self._attempts = self._retries.attempts
        self._region: str = client.meta.region_name or "us-east-1"
        self._events = client.meta.events
        self._models = {
            name: client.meta.service_model.operation_model(name)
            for name in ("GetObject", "PutObject", "ListObjectsV2")
        }
        self._signer = Signer(self._region)
        self._unsigned = client.meta.config.signature_version is UNSIGNED
        self._base: tuple[str, str, str] | None = None
        self._wire: WirePool | None = None
        self._lock = threading.Lock()

    # -- the client's parts ---------------------------------------------------

    def _retarget(self, region: str) -> bool:
        """Send this bucket's requests to AWS ``region`` from now on, as botocore's redirector would.

        Returns:
            False when there is nothing to change: the region is already
            ours, or the endpoint is not AWS's (then the error stands).
        """
        origin = self._target()[0]
        if region == self._region or not urlsplit(origin).netloc.endswith(".amazonaws.com"):
            return False
        # an unsigned twin of the client in the bucket's region tells its URL
        config = self._client.meta.config.merge(Config(signature_version=UNSIGNED, region_name=region))
        twin = botocore.session.Session().create_client("s3", region_name=region, config=config)
        base = bucket_url(twin, self._bucket)
        with self._lock:
            self._region = region
            self._signer = Signer(region)
            self._base = base
            self._wire = self._wire_for(base[0])
        return True

    def _target(self) -> tuple[str, str, str]:
        """Scheme and host, ``Host`` header and path prefix: where the client sends this bucket's keys."""
        if self._base is None:
            with self._lock:
                if self._base is None:
                    base = bucket_url(self._client, self._bucket)
                    self._wire = self._wire_for(base[0])
                    self._base = base
        return self._base

    def _wire_for(self, origin: str) -> WirePool | None:
        """Our own connections to ``origin``; None: botocore's session (a proxy, a client certificate)."""
        session = self._client._endpoint.http_session
        if (
            os.environ.get(HTTP_VARIABLE, "").strip().lower() == "botocore"
            or session._proxy_config.proxy_url_for(origin)
            or session._cert_file
        ):
            return None
        config = self._client.meta.config
        return WirePool(
            origin,
            size=config.max_pool_connections,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            tls=tls_context(session._verify) if origin.startswith("https:") else None,
        )

    def _sign(
        self, method: str, key: str | None, headers: dict[str, str], body: bytes = b"", query: str = ""
    ) -> AWSPreparedRequest:
        """Sign a request for ``key``, or for the bucket itself when ``key`` is None."""
        origin, host, prefix = self._target()
        path = prefix + quote(key, safe="/~") if key is not None else prefix.rstrip("/") or "/"
        if self._unsigned:  # a client made with signature_version=UNSIGNED, for a public bucket
            signed = dict(headers)
        else:
            credentials = self._client._request_signer._credentials  # boto3 keeps them here, refreshable
            if credentials is None:
                raise NoCredentialsError()
            frozen = credentials.get_frozen_credentials()
            signed = self._signer.sign(
                Credentials(frozen.access_key, frozen.secret_key, frozen.token),
                method,
                host,
                path,
                headers,
                self._payload_hash(origin, body),
                query=query,
            )
        sent = HeadersDict(signed)
        if body:
            sent["content-length"] = str(len(body))
        headers_type: Any = sent  # botocore's stubs say HTTPHeaders; its own preparer passes a HeadersDict
        url = f"{origin}{path}?{query}" if query else origin + path
        return AWSPreparedRequest(method, url, headers_type, body or None, stream_output=method == "GET")

    @staticmethod
    def _payload_hash(origin: str, body: bytes) -> str:
        if not body:
            return EMPTY_SHA256
        if origin.startswith("https:"):  # TLS and the CRC32 header protect it: botocore's choice too
            return UNSIGNED_PAYLOAD
        return hashlib.sha256(body).hexdigest()

    def _send(self, operation: str, request: AWSPreparedRequest, max_bytes: int) -> WireResponse:
        """Send ``request``; read at most ``max_bytes`` of a successful answer's body."""
        self._retries.sending(self._models[operation], request)
        for _, answer in self._events.emit(f"before-send.s3.{operation}", request=request):
            if answer is not None:  # moto's mock_aws, or another handler that answers requests
                return answer_of(answer, max_bytes, streamed=request.stream_output)
        wire = self._wire
        if wire is not None and request.url.startswith(wire.origin):
            target = request.url[len(wire.origin) :]
            headers = cast("Mapping[str, str]", request.headers)  # the HeadersDict ``_sign`` made
            body = request.body if isinstance(request.body, bytes) else b""
            return wire.request(request.method, target, headers, body, max_bytes=max_bytes)
        response = self._client._endpoint.http_session.send(request)
        return answer_of(response, max_bytes, streamed=request.stream_output)

    # -- attempts -------------------------------------------------------------

    def _attempt(self, operation: str, once: Callable[[], tuple[T, int]]) -> T:
        """Call ``once()`` until it answers or the client's retry handlers stop retrying."""
        model = self._models[operation]
        context: dict[str, Any] = {}  # the call's retry state, kept across its attempts
        attempt = 1
        while True:
            response: tuple[AWSResponse, Any] | None = None
            caught: Exception | None = None
            failure: Exception
            try:
                result, answered = once()
            except Refused as exc:
                if exc.region and attempt < self._attempts and self._retarget(exc.region):
                    attempt += 1
                    continue  # at once, to where the bucket is
                response, failure = (exc.http_response, exc.response), exc
            except BodyError as exc:
                caught, failure = ConnectionClosedError(endpoint_url=""), exc.error
            except (BotoConnectionError, HTTPClientError) as exc:
                caught = failure = exc
            else:
                self._retries.succeeded(model, attempt, context, answered)
                return result
            wait = self._retries.delay(model, attempt, context, response=response, caught=caught)
            if wait is None:
                raise failure
            time.sleep(wait)
            attempt += 1

    # -- the calls ---------------------------------------------------------------

    def get(self, key: str, max_bytes: int) -> Fetched:
        """Download ``key`` whole, checking its length and, when the server sends one, its CRC32.

        Returns:
            The object; its body is None when it is larger than ``max_bytes`` (then not read).

        Raises:
            botocore.exceptions.ClientError: the server refused (after retries for transient codes).
            botocore.exceptions.BotoCoreError: the connection or the body still failed on the last attempt.
        """

        def once() -> tuple[Fetched, int]:
            request = self._sign("GET", key, {"x-amz-checksum-mode": "ENABLED"})
            answer = self._send("GetObject", request, max_bytes)
            if answer.status >= 300:
                raise refusal("GetObject", request.url, answer)
            headers, body = answer.headers, answer.body
            etag = headers.get("etag", "")
            metadata = metadata_of(headers)
            if body is None:  # not read on: a bomb stays on the wire
                return Fetched(None, etag, answer.length, metadata), answer.status
            if 0 <= answer.length != len(body):
                raise BodyError(ConnectionClosedError(endpoint_url=request.url))
            expected = headers.get("x-amz-checksum-crc32")
            computed = crc32_header(body) if expected is not None else None
            if expected != computed:
                message = f"expected CRC32 {expected}, computed {computed}"
                raise BodyError(FlexibleChecksumError(error_msg=message))
            return Fetched(body, etag, len(body), metadata), answer.status

        return self._attempt("GetObject", once)

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str],
        if_match: str | None = None,
    ) -> str | None:
        """Upload ``data`` at ``key`` with its CRC32: only if absent, or only over the ETag ``if_match``.

        Returns:
            The new object's ETag (empty when the server sent none), or None
            when the condition did not hold (412: the key exists, or changed).

        Raises:
            botocore.exceptions.ClientError: the server refused (after retries for transient codes).
            botocore.exceptions.BotoCoreError: the connection still failed on the last attempt.
        """
        headers = {
            "Content-Type": content_type,
            "x-amz-checksum-crc32": crc32_header(data),
            "x-amz-sdk-checksum-algorithm": "CRC32",
            **({"If-Match": if_match} if if_match else {"If-None-Match": "*"}),
            **{f"{_META}{name}": value for name, value in metadata.items()},
        }

        def once() -> tuple[str | None, int]:
            request = self._sign("PUT", key, headers, data)
            answer = self._send("PutObject", request, ERROR_BODY_LIMIT)
            if answer.status == 412:
                return None, answer.status
            if answer.status >= 300:
                raise refusal("PutObject", request.url, answer)
            return answer.headers.get("etag", ""), answer.status

        return self._attempt("PutObject", once)

    def list_page(
        self, prefix: str, *, token: str = "", max_keys: int = 0, start_after: str = "", delimiter: str = ""
    ) -> dict[str, Any]:
        """One ``ListObjectsV2`` page under ``prefix``, as boto3 returns it (see ``parse_listing``).

        Raises:
            botocore.exceptions.ClientError: the server refused (after retries for transient codes).
            botocore.exceptions.BotoCoreError: the connection still failed on the last attempt.
        """
        parameters = {"list-type": "2", "prefix": prefix, "encoding-type": "url"}
        for name, value in (
            ("continuation-token", token),
            ("max-keys", str(max_keys) if max_keys else ""),
            ("start-after", start_after),
            ("delimiter", delimiter),
        ):
            if value:
                parameters[name] = value
        query = canonical_query(parameters)

        def once() -> tuple[dict[str, Any], int]:
            request = self._sign("GET", None, {}, query=query)
            answer = self._send("ListObjectsV2", request, _LISTING_LIMIT)
            if answer.status >= 300:
                raise refusal("ListObjectsV2", request.url, answer)
            if answer.body is None or 0 <= answer.length != len(answer.body):
                raise BodyError(ConnectionClosedError(endpoint_url=request.url))
            return parse_listing(answer.body), answer.status

        return self._attempt("ListObjectsV2", once)
