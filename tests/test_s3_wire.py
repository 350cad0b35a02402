"""The keep-alive HTTP/1.1 client of ``s3_wire``, against a scripted server on 127.0.0.1.

Each test scripts what the server sends back, byte for byte, so the edges an
S3 server or a proxy may show (chunks, a close instead of a length, a stale
keep-alive connection, a body cut short, silence) are met over real sockets.
The same client's traffic with SeaweedFS and moto runs in ``test_s3_direct``
and ``test_faults``.
"""

from __future__ import annotations

import contextlib
import gc
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
    SSLError,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_insight.storage.s3_wire import ERROR_BODY_LIMIT, WirePool
from tests.tls import TLSFiles, make_tls_files

Reply = Callable[[socket.socket, bytes], bool]
"""Answers one request (its head and body as read) on a connection; returns whether to keep serving it."""


@dataclass
class ScriptedServer:
    """Serves scripted replies in order, one per request, on as many connections as come."""

    replies: list[Reply]
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    closed: threading.Event = field(default_factory=threading.Event)  # a client closed a connection
    hung_up: threading.Event = field(default_factory=threading.Event)  # the server closed one
    read_bodies: bool = True  # False: answer after the head, leaving the body unread
    tls: ssl.SSLContext | None = None  # serve HTTPS with these settings
    listener: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0)))

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # the listener was closed
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        if self.tls is not None:
            try:
                connection = self.tls.wrap_socket(connection, server_side=True)
            except (OSError, ssl.SSLError):
                connection.close()  # the client refused our certificate
                return
        with connection, connection.makefile("rb") as reader:
            while True:
                try:
                    request = self._read_request(reader, self.read_bodies)
                except ConnectionError:  # reset: the client closed with our answer unread
                    request = None
                if request is None:
                    self.closed.set()
                    return
                self.requests.append(request)
                if not self.replies.pop(0)(connection, request):
                    break
        self.hung_up.set()  # once the connection is closed, not before

    @staticmethod
    def _read_request(reader: BinaryIO, body: bool) -> bytes | None:
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            byte = reader.read(1)
            if not byte:
                return None
            head += byte
        lines = head.lower().split(b"\r\n")
        length = next((int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length")), 0)
        return head + reader.read(length) if body else head


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer([])
    thread = threading.Thread(target=scripted.serve, daemon=True)
    thread.start()
    yield scripted
    with contextlib.suppress(OSError):
        scripted.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (Linux)
    scripted.listener.close()
    thread.join(5)


def send(data: bytes, *, keep: bool = True) -> Reply:
    def reply(connection: socket.socket, _: bytes) -> bool:
        try:
            connection.sendall(data)
        except ConnectionError:  # the client stopped reading (a body over its limit) and closed
            return False
        return keep

    return reply


def ok(body: bytes, *extra: str) -> bytes:
    head = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *extra, "", ""]
    return "\r\n".join(head).encode() + body


def pool(server: ScriptedServer, read_timeout: float | None = 10) -> WirePool:
    return WirePool(server.origin, size=4, connect_timeout=10, read_timeout=read_timeout)


def get(wire: WirePool, max_bytes: int = 1 << 20) -> tuple[int, dict[str, str], bytes | None, int]:
    response = wire.request("GET", "/bucket/key", {"host": "example"}, max_bytes=max_bytes)
    return response.status, response.headers, response.body, response.length


def test_a_response_is_read_whole_and_the_connection_reused(server: ScriptedServer) -> None:
    server.replies += [
        send(ok(b"first", 'ETag: "e1"', "X-Amz-Meta-A: 1", "X-Amz-Meta-A: 2")),
        send(ok(b"second")),
    ]
    wire = pool(server)
    status, headers, body, length = get(wire)
    assert (status, body, length) == (200, b"first", 5)
    assert headers["etag"] == '"e1"'
    assert headers["x-amz-meta-a"] == "1, 2"  # names lower case, repeated values joined
    assert get(wire)[2] == b"second"
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /bucket/key HTTP/1.1\r\nhost: example\r\n")


@given(body=st.binary(max_size=3000), cuts=st.lists(st.integers(1, 500), max_size=20))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_chunked_body_reads_as_its_chunks_joined(
    server: ScriptedServer, body: bytes, cuts: list[int]
) -> None:
    chunks, rest = [], body
    for cut in cuts:
        chunks.append(rest[:cut])
        rest = rest[cut:]
    chunks.append(rest)
    encoded = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks if chunk)
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    server.replies.append(send(head + encoded + b"0\r\nX-Trailer: t\r\n\r\n"))
    server.replies.append(send(ok(b"after")))
    wire = pool(server)
    assert get(wire)[2] == body
    assert get(wire)[2] == b"after"  # the trailer was consumed: the connection is in step
    wire.close()


def test_a_body_without_a_length_ends_with_the_connection(server: ScriptedServer) -> None:
    server.replies += [send(b"HTTP/1.1 200 OK\r\n\r\nto the end", keep=False), send(ok(b"next"))]
    wire = pool(server)
    assert get(wire)[2] == b"to the end"
    assert get(wire)[2] == b"next"
    assert server.connections == 2


@pytest.mark.parametrize(
    "answer", [ok(b"x", "Connection: close"), b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx"]
)
def test_a_connection_the_server_will_close_is_not_reused(server: ScriptedServer, answer: bytes) -> None:
    server.replies += [send(answer), send(ok(b"y"))]
    wire = pool(server)
    assert get(wire)[2] == b"x"
    assert get(wire)[2] == b"y"
    assert server.connections == 2


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_is_not_read(server: ScriptedServer, chunked: bool) -> None:
    big = b"z" * 5000
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(big), big)
        if chunked
        else ok(big)
    )
    server.replies += [send(answer), send(ok(b"small"))]
    wire = pool(server)
    status, _, body, length = get(wire, max_bytes=4999)
    assert (status, body) == (200, None)
    assert length >= 5000
    assert get(wire)[2] == b"small"  # on a new connection: the rest of the big body is never read
    assert server.connections == 2


def test_an_error_body_is_read_up_to_its_own_limit(server: ScriptedServer) -> None:
    document = b"<Error><Code>NoSuchKey</Code></Error>"
    server.replies += [
        send(ok(document).replace(b"200 OK", b"404 Not Found")),
        send(ok(b"x" * (ERROR_BODY_LIMIT + 1)).replace(b"200 OK", b"500 Oops")),
    ]
    wire = pool(server)
    assert get(wire, max_bytes=10)[::2] == (404, document)  # longer than max_bytes, still read
    assert get(wire, max_bytes=1 << 30)[::2] == (500, None)


def test_a_body_cut_short_comes_short(server: ScriptedServer) -> None:
    server.replies.append(send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", keep=False))
    _, _, body, length = get(pool(server))
    assert (body, length) == (b"half", 10)  # the caller retries it as a broken connection


def test_no_body_is_read_after_a_204(server: ScriptedServer) -> None:
    server.replies += [send(b"HTTP/1.1 204 No Content\r\n\r\n"), send(ok(b"next"))]
    wire = pool(server)
    assert get(wire)[::2] == (204, b"")
    assert get(wire)[2] == b"next"
    assert server.connections == 1


def test_an_interim_100_continue_is_skipped(server: ScriptedServer) -> None:
    server.replies.append(send(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"final")))
    assert get(pool(server))[::2] == (200, b"final")


def test_bytes_sent_after_an_answer_make_its_connection_unusable_even_when_already_read(
    server: ScriptedServer,
) -> None:
    # sent with the answer, so the client's reader takes them in with it: the socket shows nothing
    unasked = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"
    server.replies += [send(ok(b"one") + unasked), send(ok(b"two"))]
    wire = pool(server)
    assert get(wire)[2] == b"one"
    assert get(wire)[::2] == (200, b"two")
    assert server.connections == 2


def test_a_connection_the_server_closed_while_idle_is_replaced(server: ScriptedServer) -> None:
    # some servers say 408 to an idle connection as they close it; that is no answer to the next request
    timed_out = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    server.replies += [send(ok(b"one") + timed_out, keep=False), send(ok(b"two"))]
    wire = pool(server)
    assert get(wire)[2] == b"one"
    assert server.hung_up.wait(10)  # the idle connection now has the 408 and the EOF waiting on it
    assert get(wire)[::2] == (200, b"two")
    assert server.connections == 2


@pytest.mark.parametrize("secure", [False, True])
def test_a_reused_connection_dropped_on_the_next_request_is_retried_once(
    server: ScriptedServer, tls_files: TLSFiles, secure: bool
) -> None:
    def hang_up(connection: socket.socket, _: bytes) -> bool:
        return False  # read the request, close without a word

    server.replies += [send(ok(b"one")), hang_up, send(ok(b"two"))]
    if secure:  # the same over TLS, whose layer sits between the socket and the reader
        server.tls = tls_files.server_context()
        origin = server.origin.replace("http:", "https:").replace("127.0.0.1", "localhost")
        trusting = ssl.create_default_context(cafile=tls_files.ca)
        wire = WirePool(origin, size=2, connect_timeout=10, read_timeout=10, tls=trusting)
    else:
        wire = pool(server)
    assert get(wire)[2] == b"one"
    assert get(wire)[2] == b"two"
    assert len(server.requests) == 3  # the dropped request was sent again, on a new connection


def test_a_new_connection_dropped_without_an_answer_fails(server: ScriptedServer) -> None:
    server.replies.append(lambda connection, request: False)
    with pytest.raises(ConnectionClosedError):
        get(pool(server))
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"HTTP/1.1 abc\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    ],
)
def test_an_answer_that_is_not_http_fails_as_a_broken_connection(
    server: ScriptedServer, answer: bytes
) -> None:
    server.replies.append(send(answer, keep=False))
    with pytest.raises(ConnectionClosedError):
        get(pool(server))


def test_a_silent_server_times_out(server: ScriptedServer) -> None:
    server.replies.append(lambda connection, request: connection.recv(1) == b"never")  # waits for the client
    with pytest.raises(ReadTimeoutError):
        get(pool(server, read_timeout=0.2))


def test_a_refused_connection_is_an_endpoint_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        origin = f"http://127.0.0.1:{taken.getsockname()[1]}"
    wire = WirePool(origin, size=1, connect_timeout=5, read_timeout=5)
    with pytest.raises(EndpointConnectionError):
        wire.request("GET", "/", {"host": "x"}, max_bytes=10)


def test_a_large_body_is_sent_whole(server: ScriptedServer) -> None:
    server.replies.append(send(ok(b"")))
    data = bytes(range(256)) * 1000
    response = pool(server).request(
        "PUT", "/b/k", {"host": "x", "content-length": str(len(data))}, data, max_bytes=10
    )
    assert response.status == 200
    assert server.requests[0].endswith(b"\r\n\r\n" + data)


def test_an_answer_sent_before_the_body_was_read_is_read(server: ScriptedServer) -> None:
    def refuse(connection: socket.socket, _: bytes) -> bool:
        connection.sendall(
            ok(b"<Error><Code>AccessDenied</Code></Error>").replace(b"200 OK", b"403 Forbidden")
        )
        return False  # closes with the body unread: the client's send breaks (reset)

    server.replies.append(refuse)
    server.read_bodies = False
    data = b"x" * (16 << 20)  # more than the socket buffers take
    response = pool(server).request(
        "PUT", "/b/k", {"host": "x", "content-length": str(len(data))}, data, max_bytes=10
    )
    assert response.status == 403
    assert response.body == b"<Error><Code>AccessDenied</Code></Error>"


def test_a_header_with_a_line_break_is_refused_before_sending(server: ScriptedServer) -> None:
    with pytest.raises(ValueError, match="line break"):
        pool(server).request("GET", "/", {"x-amz-meta-a": "1\r\nInjected: yes"}, max_bytes=10)
    assert server.requests == []


def test_a_pool_dropped_unclosed_closes_its_connections(server: ScriptedServer) -> None:
    server.replies.append(send(ok(b"x")))
    wire = pool(server)
    get(wire)
    del wire
    gc.collect()
    assert server.closed.wait(10)


def test_an_origin_must_match_its_tls_settings() -> None:
    with pytest.raises(ValueError, match="not an http origin"):
        WirePool("https://example.com", size=1, connect_timeout=1, read_timeout=1)
    with pytest.raises(ValueError, match="not an https origin"):
        WirePool(
            "http://example.com", size=1, connect_timeout=1, read_timeout=1, tls=ssl.create_default_context()
        )


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def test_https_is_spoken_over_the_same_kept_connection(server: ScriptedServer, tls_files: TLSFiles) -> None:
    server.tls = tls_files.server_context()
    server.replies += [send(ok(b"secret one")), send(ok(b"secret two"))]
    origin = server.origin.replace("http:", "https:").replace("127.0.0.1", "localhost")
    trusting = ssl.create_default_context(cafile=tls_files.ca)
    wire = WirePool(origin, size=2, connect_timeout=10, read_timeout=10, tls=trusting)
    assert get(wire)[2] == b"secret one"
    assert get(wire)[2] == b"secret two"
    assert server.connections == 1
    wire.close()


def test_a_certificate_not_trusted_is_an_ssl_error(server: ScriptedServer, tls_files: TLSFiles) -> None:
    server.tls = tls_files.server_context()
    origin = server.origin.replace("http:", "https:")
    wire = WirePool(origin, size=1, connect_timeout=10, read_timeout=10, tls=ssl.create_default_context())
    with pytest.raises(SSLError, match="certificate verify failed"):
        get(wire)
    assert server.requests == []
