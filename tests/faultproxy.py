"""A fault-injecting HTTP/1.1 proxy between boto3 and a real S3 server, as a test fixture.

Registered from ``tests/conftest.py`` (``pytest_plugins``). The ``fault_proxy``
fixture starts a :class:`FaultProxy` on a free 127.0.0.1 port in front of the
``seaweedfs`` server; point a boto3 client at :attr:`FaultProxy.endpoint_url`
(see :func:`proxied_client`).

The proxy parses each request and response far enough to act per request:

- ``SLOW_DOWN`` / ``INTERNAL``: answer 503 SlowDown / 500 InternalError with
  an S3 XML error body; the server never sees the request.
- ``RESET``: forward the request, then send part of the response and reset
  the connection (RST); the server did the work, the client never learns it.
- ``STALL``: forward nothing and answer nothing until the client gives up
  (its read timeout) and closes the connection.
- ``TRUNCATE``: forward, then send the headers (the full ``Content-Length``)
  and half the body, and close.
- ``CORRUPT``: forward, then flip one byte in the middle of the body.

Which requests are faulted: every request a *rule* picks (a predicate on the
request, for permanent faults on chosen keys), plus a seeded random share
(``rate``) of the others. Body faults (``TRUNCATE``, ``CORRUPT``) are only
applied to object downloads (GET of a key); elsewhere a random draw of one
becomes ``RESET``. Every fault is counted in :attr:`FaultProxy.counts` and
logged in :attr:`FaultProxy.injected`.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, BinaryIO, Literal
from urllib.parse import unquote, urlsplit

import pytest

__all__ = ["Fault", "FaultProxy", "ProxyRequest", "proxied_client"]

_STALL_LIMIT = 60.0  # seconds a stalled request waits for the client to give up


class Fault(StrEnum):
    """What the proxy does to a request."""

    SLOW_DOWN = "503-slow-down"
    INTERNAL = "500-internal-error"
    RESET = "reset-mid-response"
    STALL = "stall"
    TRUNCATE = "truncate-body"
    CORRUPT = "corrupt-body"


_BODY_FAULTS = frozenset({Fault.TRUNCATE, Fault.CORRUPT})
_ERROR_REPLIES = {
    Fault.SLOW_DOWN: (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    Fault.INTERNAL: (500, "Internal Server Error", "InternalError", "We encountered an internal error."),
}


@dataclass(frozen=True)
class ProxyRequest:
    """One request as the proxy saw it: method, path (without the query), query string, headers and body."""

    method: str
    path: str
    query: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def is_object_download(self) -> bool:
        """A GET of an object (not a listing: the path has a key after the bucket)."""
        return self.method == "GET" and "/" in self.path.strip("/") and "list-type" not in self.query


Rule = Callable[[ProxyRequest], "Fault | None"]


@dataclass
class _Message:
    head: list[bytes]  # the start line and header lines, without line ends
    body: bytes = b""
    close: bool = False

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode()
        for line in self.head[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == wanted:
                return value.strip().decode("latin-1")
        return None

    def headers(self) -> dict[str, str]:
        """Every header, by lower-case name."""
        found: dict[str, str] = {}
        for line in self.head[1:]:
            key, _, value = line.partition(b":")
            found[key.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        return found

    def without(self, *names: str) -> list[bytes]:
        drop = {name.lower().encode() for name in names}
        return [self.head[0]] + [
            line for line in self.head[1:] if line.partition(b":")[0].strip().lower() not in drop
        ]


def _read_head(stream: BinaryIO) -> list[bytes] | None:
    lines: list[bytes] = []
    while True:
        line = stream.readline(65537)
        if not line:
            return None
        line = line.rstrip(b"\r\n")
        if not line:
            if lines:
                return lines
            continue  # stray blank line between messages
        lines.append(line)


def _read_chunked(stream: BinaryIO) -> bytes:
    body = bytearray()
    while True:
        size = int(stream.readline().split(b";")[0].strip(), 16)
        if size == 0:
            while stream.readline().strip():  # trailers
                pass
            return bytes(body)
        body += stream.read(size)
        stream.readline()


def _read_body(stream: BinaryIO, message: _Message, *, no_body: bool, until_close: bool) -> None:
    if no_body:
        return
    if (message.header("Transfer-Encoding") or "").lower() == "chunked":
        message.body = _read_chunked(stream)
    elif (length := message.header("Content-Length")) is not None:
        message.body = stream.read(int(length))
    elif until_close:
        message.body = stream.read()
        message.close = True


def _encode(head: Sequence[bytes], body: bytes, *, length: int | None = None) -> bytes:
    lines = [
        line for line in head if not line.lower().startswith((b"content-length:", b"transfer-encoding:"))
    ]
    lines.append(b"Content-Length: %d" % (len(body) if length is None else length))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@dataclass
class FaultProxy:
    """The proxy; configure with :meth:`plan`, read the figures from ``counts`` and ``injected``."""

    upstream: tuple[str, int]
    rate: float = 0.0
    kinds: tuple[Fault, ...] = tuple(Fault)
    rules: list[Rule] = field(default_factory=list)
    requests: int = 0
    counts: Counter[Fault] = field(default_factory=Counter)
    injected: list[tuple[str, str, Fault]] = field(default_factory=list)
    seen: list[ProxyRequest] = field(default_factory=list)
    _random: random.Random = field(default_factory=lambda: random.Random(0))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _clients: set[socket.socket] = field(default_factory=set)
    _listener: socket.socket | None = None

    @property
    def endpoint_url(self) -> str:
        assert self._listener is not None
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def plan(
        self,
        *,
        rate: float = 0.0,
        kinds: Sequence[Fault] = tuple(Fault),
        seed: int = 0,
        rules: Sequence[Rule] = (),
    ) -> None:
        """Fault a seeded random ``rate`` of requests with one of ``kinds``, plus whatever ``rules`` pick."""
        with self._lock:
            self.rate, self.kinds, self.rules = rate, tuple(kinds), list(rules)
            self._random = random.Random(seed)

    @property
    def total_faults(self) -> int:
        return sum(self.counts.values())

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", 0))
        self._listener = listener
        self._spawn(self._accept, listener)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for sock in list(self._clients):
                with contextlib.suppress(OSError):  # wakes a thread blocked reading it
                    sock.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=5)
        with self._lock:
            for sock in list(self._clients):
                sock.close()  # one a failed forward left behind
            self._clients.clear()
        if self._listener is not None:
            self._listener.close()

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="fault-proxy")
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        listener.settimeout(0.1)  # a blocked accept() does not wake when the socket is closed
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                self._clients.add(client)
            self._spawn(self._serve, client)

    def _decide(self, request: ProxyRequest) -> Fault | None:
        with self._lock:
            self.requests += 1
            self.seen.append(request)
            rules = list(self.rules)
        # Rules run outside the lock: one may wait for other requests to arrive.
        fault = next((chosen for rule in rules if (chosen := rule(request)) is not None), None)
        with self._lock:
            if fault is None and self.kinds and self._random.random() < self.rate:
                fault = self._random.choice(self.kinds)
            if fault in _BODY_FAULTS and not request.is_object_download:
                fault = Fault.RESET
            if fault is not None:
                self.counts[fault] += 1
                self.injected.append((request.method, request.path, fault))
            return fault

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        reader = client.makefile("rb")
        try:
            while not self._stopping.is_set():
                head = _read_head(reader)
                if head is None:
                    return
                request = _Message(head)
                if (request.header("Expect") or "").lower() == "100-continue":
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                _read_body(reader, request, no_body=False, until_close=False)
                method, target, _ = head[0].decode("latin-1").split(" ", 2)
                parts = urlsplit(target)
                fault = self._decide(
                    ProxyRequest(method, unquote(parts.path), parts.query, request.headers(), request.body)
                )
                if fault is Fault.STALL:
                    self._stall(client)
                    return
                if fault in _ERROR_REPLIES:
                    client.sendall(_error_reply(fault, parts.path))
                    continue
                upstream, response = self._forward(upstream, request, method)
                if not self._reply(client, response, fault):
                    return
        except OSError:
            return
        finally:
            reader.close()
            client.close()
            if upstream is not None:
                upstream.close()
            with self._lock:
                self._clients.discard(client)
                self._clients.discard(upstream)

    def _forward(
        self, upstream: socket.socket | None, request: _Message, method: str
    ) -> tuple[socket.socket | None, _Message]:
        data = _encode(request.without("Expect"), request.body)
        for attempt in range(2):  # an idle keep-alive connection may have been closed by the server
            if upstream is None:
                upstream = socket.create_connection(self.upstream)
                with self._lock:
                    self._clients.add(upstream)
            upstream.sendall(data)
            stream = upstream.makefile("rb")
            head = _read_head(stream)
            if head is None and attempt == 0:
                stream.close()
                upstream.close()
                upstream = None
                continue
            if head is None:
                raise OSError("upstream closed the connection")
            response = _Message(head)
            status = int(head[0].split()[1])
            no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
            _read_body(stream, response, no_body=no_body, until_close=True)
            stream.close()
            if response.close or (response.header("Connection") or "").lower() == "close":
                upstream.close()
                upstream = None
                response.close = True
            return upstream, response
        raise AssertionError("unreachable")

    def _reply(self, client: socket.socket, response: _Message, fault: Fault | None) -> bool:
        head = response.without("Connection")
        if response.close:  # say so: a client reusing the connection would find it reset
            head.append(b"Connection: close")
        body = response.body
        if fault is Fault.RESET:
            whole = _encode(head, body)
            cut = len(whole) - len(body) + len(body) // 2 if body else len(whole) // 2
            client.sendall(whole[:cut])
            _reset(client)
            return False
        if fault is Fault.TRUNCATE:
            client.sendall(_encode(head, body[: len(body) // 2], length=len(body)))
            return False
        if fault is Fault.CORRUPT and body:
            middle = len(body) // 2
            body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]
        client.sendall(_encode(head, body))
        return not response.close

    def _stall(self, client: socket.socket) -> None:
        client.settimeout(0.2)
        waited = 0.0
        while not self._stopping.is_set() and waited < _STALL_LIMIT:
            try:
                if not client.recv(65536):
                    return  # the client gave up
            except TimeoutError:
                waited += 0.2
            except OSError:
                return


def _error_reply(fault: Fault, path: str) -> bytes:
    status, reason, code, message = _ERROR_REPLIES[fault]
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
        f"<Resource>{path}</Resource><RequestId>fault-proxy</RequestId></Error>"
    ).encode()
    head = [
        f"HTTP/1.1 {status} {reason}".encode(),
        b"Content-Type: application/xml",
        b"x-amz-request-id: fault-proxy",
    ]
    return _encode(head, body)


def proxied_client(
    proxy: FaultProxy,
    *,
    read_timeout: float = 2.0,
    max_attempts: int = 10,
    pool: int = 16,
    mode: Literal["standard", "adaptive"] = "standard",
) -> Any:
    """A boto3 S3 client through ``proxy``: ``mode`` retries, ``max_attempts``, a short read timeout."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": mode, "total_max_attempts": max_attempts},
        read_timeout=read_timeout,
        connect_timeout=2,
        max_pool_connections=pool,
    )
    return boto3.client("s3", endpoint_url=proxy.endpoint_url, region_name="us-east-1", config=config)


@pytest.fixture
def fault_proxy(seaweedfs: Any) -> Iterator[FaultProxy]:
    """A :class:`FaultProxy` in front of this worker's SeaweedFS server, injecting nothing until planned."""
    endpoint = urlsplit(seaweedfs.endpoint_url)
    proxy = FaultProxy((endpoint.hostname or "127.0.0.1", endpoint.port or 80))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
