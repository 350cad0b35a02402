"""Keep-alive HTTP/1.1 connections for the direct object calls, without urllib3 and ``http.client``.

Sent through botocore's HTTP session, a GET of a 55 KB bundle costs about
600 µs of CPU, against 130 µs for the request itself: urllib3's pool and
its checks, ``http.client`` parsing headers through the ``email`` package,
botocore's header dictionaries (``python -m tests.bench.s3``). With many
bundles to move, CPU is what caps a transfer, so
:class:`~pytest_insight.storage.s3_direct.DirectObjects` sends its GETs and
PUTs through a :class:`WirePool` when the endpoint is reached without a proxy
(over TLS with the client's certificate settings). Proxies and client
certificates stay with botocore.

It speaks what an S3 server answers: a status line, headers, then a body
of ``Content-Length`` bytes, in chunks, or up to the close. Failures come as
botocore's connection errors, so the caller's retries see them as any
other call's.
"""

from __future__ import annotations

import io
import select
import socket
import ssl
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    SSLError,
)

__all__ = ["ERROR_BODY_LIMIT", "WirePool", "WireResponse", "body_limit"]

ERROR_BODY_LIMIT = 64 << 10
"""The most read of an error response's body: an S3 error document is small."""


def body_limit(status: int, max_bytes: int) -> int:
    """The most of a response's body to read: ``max_bytes`` for a success, :data:`ERROR_BODY_LIMIT` else."""
    return max_bytes if status < 300 else ERROR_BODY_LIMIT


_LINE_LIMIT = 64 << 10  # a status or header line, or a chunk size line
_HEADER_LIMIT = 200  # header lines in one response
_READ_SIZE = 64 << 10
_NO_BODY = frozenset({204, 304})


@dataclass(frozen=True, slots=True)
class WireResponse:
    """One response: status, headers (names lower case) and body.

    ``body`` is None when it was longer than the request allowed; it was
    then not read (the connection was closed instead). ``length`` is the
    ``Content-Length`` sent, else the bytes read; a shorter ``body`` means
    the connection broke off.
    """

    status: int
    headers: dict[str, str]
    body: bytes | None
    length: int


class _Broken(Exception):
    """The connection failed before any byte of the response came: a reused one may just be stale."""


class _Connection:
    __slots__ = ("reader", "reused", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = io.BufferedReader(socket.SocketIO(sock, "rb"), _READ_SIZE)
        self.reused = False

    def idle_and_open(self) -> bool:
        """Whether an idle connection can take a request: the server neither closed it nor sent anything."""
        try:
            if hasattr(select, "poll"):  # select() cannot watch a descriptor above 1023
                poller = select.poll()
                poller.register(self.sock, select.POLLIN)
                readable = bool(poller.poll(0))
            else:
                readable = bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return False
        return not readable and not self._buffered()

    def _buffered(self) -> bool:
        """Whether bytes the server sent after the last answer (in the same packet) wait in the reader.

        The socket is empty here, so peeking reads nothing new: non-blocking, it
        returns the reader's buffer, or nothing.
        """
        timeout = self.sock.gettimeout()
        self.sock.settimeout(0)
        try:
            return bool(self.reader.peek(1))
        except ssl.SSLWantReadError:  # TLS's word for "nothing to read yet"
            return False
        except (OSError, ValueError):
            return True  # broken: not to be reused
        finally:
            self.sock.settimeout(timeout)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class WirePool:
    """Connections to one ``http://`` or ``https://`` origin, reused across requests. Thread-safe.

    Args:
        origin: ``http://host[:port]``, or ``https://host[:port]`` with ``tls``.
        size: idle connections kept for reuse (more may be open at once).
        connect_timeout: seconds to wait for a connection (None: no limit).
        read_timeout: seconds to wait for each read from the server (None: no limit).
        tls: the TLS settings of an ``https://`` origin (certificates to trust,
            hostname checking).
    """

    def __init__(
        self,
        origin: str,
        *,
        size: int,
        connect_timeout: float | None,
        read_timeout: float | None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        url = urlsplit(origin)
        if url.scheme != ("https" if tls is not None else "http") or not url.hostname:
            raise ValueError(f"not an {'https' if tls else 'http'} origin: {origin!r}")
        self.origin = origin
        self._host = url.hostname
        self._address = (url.hostname, url.port or (443 if tls is not None else 80))
        self._tls = tls
        self._size = size
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        weakref.finalize(self, _close_all, self._idle)  # a pool dropped unclosed leaves no socket open

    def request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes = b"", *, max_bytes: int
    ) -> WireResponse:
        """Send one request and read its response.

        When a reused connection fails before the response starts (the server
        closed it while it was idle), the request goes again on another one;
        a new connection that fails is an error.

        Args:
            method: ``GET``, ``PUT``, ...
            target: the request target (the URI-encoded path and query).
            headers: every header to send, ``Host`` and ``Content-Length`` included.
            body: the request body.
            max_bytes: the longest body of a success to read; an error's is
                read up to :data:`ERROR_BODY_LIMIT`.

        Raises:
            botocore.exceptions.EndpointConnectionError: no connection could be made.
            botocore.exceptions.ConnectTimeoutError: connecting took longer than ``connect_timeout``.
            botocore.exceptions.ReadTimeoutError: the server went silent for ``read_timeout``.
            botocore.exceptions.ConnectionClosedError: the connection broke, or the answer was not HTTP.
        """
        head = _request_head(method, target, headers)
        while True:
            connection = self._take()
            try:
                response, keep = self._exchange(connection, head, body, method, max_bytes)
            except _Broken as exc:
                connection.close()
                if connection.reused:
                    continue  # closed by the server while idle: nothing was answered, so send it again
                raise ConnectionClosedError(endpoint_url=self.origin + target, error=exc.__cause__) from exc
            except BaseException:
                connection.close()
                raise
            if keep:
                self._give(connection)
            else:
                connection.close()
            return response

    def close(self) -> None:
        """Close the idle connections."""
        with self._lock:
            idle = self._idle[:]
            self._idle.clear()
        _close_all(idle)

    def _take(self) -> _Connection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return self._connect()
            if connection.idle_and_open():
                connection.reused = True
                return connection
            connection.close()

    def _give(self, connection: _Connection) -> None:
        with self._lock:
            if len(self._idle) < self._size:
                self._idle.append(connection)
                return
        connection.close()

    def _connect(self) -> _Connection:
        try:
            sock = socket.create_connection(self._address, timeout=self._connect_timeout)
        except TimeoutError as exc:
            raise ConnectTimeoutError(endpoint_url=self.origin, error=exc) from exc
        except OSError as exc:
            raise EndpointConnectionError(endpoint_url=self.origin, error=exc) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls is not None:
            try:  # the handshake, still under the connect timeout
                sock = self._tls.wrap_socket(sock, server_hostname=self._host)
            except ssl.SSLError as exc:
                sock.close()
                raise SSLError(endpoint_url=self.origin, error=exc) from exc
            except TimeoutError as exc:
                sock.close()
                raise ConnectTimeoutError(endpoint_url=self.origin, error=exc) from exc
            except OSError as exc:
                sock.close()
                raise EndpointConnectionError(endpoint_url=self.origin, error=exc) from exc
        sock.settimeout(self._read_timeout)
        return _Connection(sock)

    @staticmethod
    def _send(connection: _Connection, head: bytes, body: bytes) -> tuple[bytes, bool]:
        """Send a request; return the status line of its answer, and whether the request went whole.

        A server may answer and close before it has read the whole body (a
        refused upload): the answer is read all the same.

        Raises:
            _Broken: the connection failed, and no answer came.
        """
        failure: OSError | None = None
        try:
            if len(body) <= _READ_SIZE:
                connection.sock.sendall(head + body)
            else:  # no copy of a large body
                connection.sock.sendall(head)
                connection.sock.sendall(body)
        except (ConnectionResetError, BrokenPipeError) as exc:
            failure = exc
        try:
            status_line = connection.reader.readline(_LINE_LIMIT + 1)
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise _Broken() from failure or exc
        if not status_line:
            raise _Broken() from failure
        return status_line, failure is None

    def _exchange(
        self, connection: _Connection, head: bytes, body: bytes, method: str, max_bytes: int
    ) -> tuple[WireResponse, bool]:
        """Send and read one exchange; return the response and whether the connection can be reused."""
        url = self.origin
        try:
            status_line, sent = self._send(connection, head, body)
            reader = connection.reader
            status, version = _status(status_line)
            headers = _headers(reader)
            while 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
                status, version = _status(reader.readline(_LINE_LIMIT + 1))
                headers = _headers(reader)
            keep = sent and version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
            limit = body_limit(status, max_bytes)
            if method == "HEAD" or status in _NO_BODY:
                return WireResponse(status, headers, b"", 0), keep
            if "chunked" in headers.get("transfer-encoding", "").lower():
                data = _read_chunked(reader, limit)
                if data is None:
                    return WireResponse(status, headers, None, limit + 1), False
                return WireResponse(status, headers, data, len(data)), keep
            declared = headers.get("content-length")
            if declared is None:  # the body ends with the connection
                data = reader.read(limit + 1)
                if len(data) > limit:
                    return WireResponse(status, headers, None, len(data)), False
                return WireResponse(status, headers, data, len(data)), False
            length = _content_length(declared)
            if length > limit:
                return WireResponse(status, headers, None, length), False
            data = reader.read(length)
            return WireResponse(status, headers, data, length), keep and len(data) == length
        except TimeoutError as exc:
            raise ReadTimeoutError(endpoint_url=url, error=exc) from exc
        except (OSError, ValueError) as exc:
            raise ConnectionClosedError(endpoint_url=url, error=exc) from exc


def _close_all(connections: list[_Connection]) -> None:
    for connection in connections:
        connection.close()


def _request_head(method: str, target: str, headers: Mapping[str, str]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers.items():
        text = str(value)
        if "\r" in text or "\n" in text or "\r" in name or "\n" in name:
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {text}")
    lines += ["", ""]
    return "\r\n".join(lines).encode("latin-1")


def _status(line: bytes) -> tuple[int, str]:
    """The status code and HTTP version of a status line.

    Raises:
        ValueError: the line is not an HTTP/1.x status line.
    """
    if len(line) > _LINE_LIMIT or not line.endswith(b"\n"):
        raise ValueError(f"status line cut short or too long: {line[:80]!r}")
    version, _, rest = line.decode("latin-1").partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit() or len(code) != 3:
        raise ValueError(f"not an HTTP/1.x status line: {line[:80]!r}")
    return int(code), version


def _headers(reader: io.BufferedReader[socket.SocketIO]) -> dict[str, str]:
    """Read header lines up to the blank line; a repeated header's values are joined with ``, ``.

    Raises:
        ValueError: a line is too long, there are too many, or the connection ended first.
    """
    headers: dict[str, str] = {}
    for _ in range(_HEADER_LIMIT):
        line = reader.readline(_LINE_LIMIT + 1)
        if line in (b"\r\n", b"\n"):
            return headers
        if len(line) > _LINE_LIMIT or not line.endswith(b"\n"):
            raise ValueError("header line cut short or too long")
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    raise ValueError(f"more than {_HEADER_LIMIT} header lines")


def _content_length(text: str) -> int:
    values = {part.strip() for part in text.split(",")}  # repeated, it must say the same each time
    if len(values) != 1 or not (value := values.pop()).isdigit():
        raise ValueError(f"bad Content-Length {text!r}")
    return int(value)


def _read_chunked(reader: io.BufferedReader[socket.SocketIO], limit: int) -> bytes | None:
    """A chunked body, or None once it passes ``limit`` bytes (not read on).

    Raises:
        ValueError: a chunk header is malformed, or the body ends early.
    """
    parts: list[bytes] = []
    total = 0
    while True:
        line = reader.readline(_LINE_LIMIT + 1)
        if not line.endswith(b"\n"):
            raise ValueError("chunk size line cut short or too long")
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while reader.readline(_LINE_LIMIT + 1) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        total += size
        if total > limit:
            return None
        chunk = reader.read(size)
        if len(chunk) < size or reader.readline(_LINE_LIMIT + 1) not in (b"\r\n", b"\n"):
            raise ValueError("chunked body ended early")
        parts.append(chunk)
