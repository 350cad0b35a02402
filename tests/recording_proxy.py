"""A recording HTTP proxy on 127.0.0.1: forwards every request to an S3 server and notes it.

``insight sql``'s partition-pruning test points DuckDB at the proxy and reads
which object keys were asked for. Requests are forwarded as they came (the
S3 server in the tests checks no signature), one at a time per connection.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

__all__ = ["RecordingProxy", "recording_proxy"]

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection"})


class RecordingProxy:
    """The proxy's address and the ``(method, path)`` of every request it forwarded."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.endpoint_url = ""

    def paths(self, method: str = "GET") -> list[str]:
        """The decoded paths (no query string) of the requests made with ``method``."""
        with self.lock:
            return [unquote(urlsplit(path).path) for verb, path in self.requests if verb == method]

    def clear(self) -> None:
        """Forget the requests recorded so far."""
        with self.lock:
            self.requests.clear()


def _handler(proxy: RecordingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output quiet."""

        def _forward(self) -> None:
            with proxy.lock:
                proxy.requests.append((self.command, self.path))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=30)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            finally:
                upstream.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

    return Handler


@contextmanager
def recording_proxy(upstream: str) -> Iterator[RecordingProxy]:
    """Run a :class:`RecordingProxy` in front of ``upstream`` (``http://host:port``) on a free port."""
    proxy = RecordingProxy(upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    proxy.endpoint_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
