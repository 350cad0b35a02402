"""A small S3 stand-in over HTTP on 127.0.0.1, for behaviours no real server here can show.

It keeps objects in a dict and answers PutObject (with ``If-None-Match: *``),
GetObject, HeadObject, HeadBucket, ListObjectsV2 and DeleteObjects well
enough for the S3 backend. It checks no signature; it records every request's
headers, and it can be told to misbehave:

- ``bucket_region``: refuse requests signed for another region with S3's
  ``301 PermanentRedirect`` and ``x-amz-bucket-region``, as AWS does;
- ``get_headers``: extra headers on every object download (a composite checksum);
- ``hostile_body``: answer downloads with a chunked body that never ends.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from hashlib import md5
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

__all__ = ["S3Stub", "StubRequest", "s3_stub"]

_SIGNED_REGION = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/s3/aws4_request")


@dataclass(frozen=True)
class StubRequest:
    """One request as the stub saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]

    @property
    def signed_region(self) -> str | None:
        found = _SIGNED_REGION.search(self.headers.get("authorization", ""))
        return found.group(1) if found else None


@dataclass
class S3Stub:
    """The stub's state: objects, the requests seen, and how to misbehave."""

    bucket: str
    objects: dict[str, tuple[bytes, dict[str, str]]] = field(default_factory=dict)
    requests: list[StubRequest] = field(default_factory=list)
    bucket_region: str | None = None
    get_headers: dict[str, str] = field(default_factory=dict)
    hostile_body: bool = False
    hostile_bytes_sent: int = 0
    endpoint_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, method: str) -> list[StubRequest]:
        """The requests of one HTTP method to an object key."""
        return [r for r in self.requests if r.method == method and "/" in r.path.strip("/")]


def _handler(stub: S3Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, code: str, extra: dict[str, str] | None = None) -> None:
            body = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{code}</Message></Error>"
            self._reply(status, body.encode(), {"Content-Type": "application/xml", **(extra or {})})

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            request = StubRequest(
                self.command,
                unquote(parts.path),
                parse_qs(parts.query, keep_blank_values=True),
                {name.lower(): value for name, value in self.headers.items()},
            )
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with stub.lock:
                stub.requests.append(request)
            if stub.bucket_region and request.signed_region not in (None, stub.bucket_region):
                self._error(301, "PermanentRedirect", {"x-amz-bucket-region": stub.bucket_region})
                return
            _, _, key = request.path.lstrip("/").partition("/")
            if not key:
                self._bucket(request, body)
            elif self.command == "PUT":
                self._put(key, body)
            elif self.command in ("GET", "HEAD"):
                self._get(key)
            elif self.command == "DELETE":
                stub.objects.pop(key, None)
                self._reply(204)
            else:
                self._error(400, "NotImplemented")

        def _bucket(self, request: StubRequest, body: bytes) -> None:
            region = {"x-amz-bucket-region": stub.bucket_region or "us-east-1"}
            if self.command == "HEAD":
                self._reply(200, b"", region)
            elif self.command == "POST" and "delete" in request.query:
                for key in re.findall(rb"<Key>([^<]*)</Key>", body):
                    stub.objects.pop(key.decode(), None)
                self._reply(200, b"<?xml version='1.0'?><DeleteResult></DeleteResult>")
            elif self.command == "GET" and "list-type" in request.query:
                prefix = request.query.get("prefix", [""])[0]
                after = request.query.get("start-after", [""])[0]
                items = "".join(
                    f"<Contents><Key>{escape(key)}</Key><Size>{len(data)}</Size>"
                    f"<ETag>&quot;{md5(data).hexdigest()}&quot;</ETag>"  # noqa: S324 - an ETag, not security
                    "<LastModified>2024-05-01T00:00:00.000Z</LastModified></Contents>"
                    for key, (data, _) in sorted(stub.objects.items())
                    if key.startswith(prefix) and key > after
                )
                listing = (
                    f"<?xml version='1.0'?><ListBucketResult><Name>{stub.bucket}</Name>"
                    f"<Prefix>{escape(prefix)}</Prefix><IsTruncated>false</IsTruncated>{items}</ListBucketResult>"
                )
                self._reply(200, listing.encode(), {"Content-Type": "application/xml"})
            else:
                self._error(400, "NotImplemented")

        def _put(self, key: str, body: bytes) -> None:
            if self.headers.get("If-None-Match") == "*" and key in stub.objects:
                self._error(412, "PreconditionFailed")
                return
            metadata = {k: v for k, v in self.headers.items() if k.lower().startswith("x-amz-meta-")}
            stub.objects[key] = (body, metadata)
            self._reply(200, b"", {"ETag": f'"{md5(body).hexdigest()}"'})  # noqa: S324

        def _get(self, key: str) -> None:
            if key not in stub.objects:
                self._error(404, "NoSuchKey")
                return
            data, metadata = stub.objects[key]
            headers = {"ETag": f'"{md5(data).hexdigest()}"', **metadata, **stub.get_headers}  # noqa: S324
            headers["Last-Modified"] = "Wed, 01 May 2024 00:00:00 GMT"
            if stub.hostile_body and self.command == "GET":
                self._endless(headers)
                return
            self._reply(200, data, headers)

        def _endless(self, headers: dict[str, str]) -> None:
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                while stub.hostile_bytes_sent < 1 << 30:  # a gigabyte at most, should the client read on
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    stub.hostile_bytes_sent += len(chunk)
            except OSError:
                return  # the client hung up: what a bounded reader does

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _handle

    return Handler


@contextmanager
def s3_stub(bucket: str = "stub-bucket") -> Iterator[S3Stub]:
    """Run an :class:`S3Stub` on a free 127.0.0.1 port for the block."""
    stub = S3Stub(bucket)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    server.daemon_threads = True
    stub.endpoint_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="s3-stub")
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
