"""The S3 benchmark's steps, each run by ``tests.bench.s3`` as ``python -m tests.bench.s3_steps STEP ...``.

Only the standard library is imported up front: a step imports what it
runs, so that our import, export and clear start as ``insight`` does and
pay for no module of the benchmark's own (``tests.conftest`` alone brings
pytest in, about 140 ms of a three-second step).
"""

from __future__ import annotations

import os
import random
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

__all__ = ["PADDED_RESULTS", "SHAPES", "main"]

PADDED_RESULTS = 5
"""The default results per session: few, padded with random text to 10-100 KB a bundle."""

SHAPES = {
    # name: (bundles, sessions a bundle, results a session), real-shaped unless padded
    "padded": (2000, 2, PADDED_RESULTS),
    "sessions-of-40": (2000, 4, 40),
    "real-1000": (400, 1, 1000),
}
"""The shapes the benchmark knows: ``padded`` is few results padded with random text."""

_SUTS = 20


def _fill(root: Path, shape: str, bundles: int, seed: int = 7) -> int:
    """Fill a store at ``root`` with ``bundles`` SUT-day partitions of ``shape``; return the session count."""
    from pytest_insight.core.storage import Storage
    from pytest_insight.storage.local.store import LocalBackend
    from tests.bench.shapes import real_session
    from tests.conftest import BASE_TIME, build_session

    rng = random.Random(seed)
    store = Storage(LocalBackend(root, durable=False))
    _, per_bundle, results = SHAPES[shape]
    sessions = []
    count = 0
    for number in range(bundles):
        target = rng.randint(10_000, 100_000)  # gzipped bytes of the bundle; random hex gzips to ~0.55
        for half in range(per_bundle):
            session_id = f"bench-{number:05d}-{half}"
            sut_name = f"service-{number % _SUTS:02d}"
            start = BASE_TIME + timedelta(days=number // _SUTS, minutes=half)
            if shape == "padded":
                noise = {"noise": rng.randbytes(int(target / 0.55 / 4)).hex()}
                sessions.append(
                    build_session(session_id, sut_name=sut_name, start=start, tests=results, tags=noise)
                )
            else:
                sessions.append(real_session(session_id, sut_name, start, results, seed))
        if sum(len(session.test_results) for session in sessions) >= 50_000 or len(sessions) >= 500:
            store.save_sessions(sessions)
            count += len(sessions)
            sessions = []
    store.save_sessions(sessions)
    return count + len(sessions)


def _phases(folder: Path) -> None:
    """CPU µs a result of decode, merge and store, for the bundles under ``folder`` (a download).

    Decode is :func:`decode_verified` of each object's bytes; merge and store
    are timed apart on fresh local stores, in batches as an import makes
    them: store is the batches' writes into a local store (one transaction
    each, no fsync), merge what a ``skip_existing`` merge into memory adds to
    plain puts into memory.
    """
    from pytest_insight.cli.main import rare_full_collections
    from pytest_insight.format.layout import BUNDLE_SUFFIX

    with rare_full_collections():  # as ``insight`` runs an import
        _timed_phases(sorted(path for path in folder.rglob(f"*{BUNDLE_SUFFIX}") if path.is_file()))


def _timed_phases(files: list[Path]) -> None:
    """:func:`_phases` on ``files``."""
    import tempfile
    import time

    import anyio

    from pytest_insight.exchange.merging import Merger, MergeStrategy
    from pytest_insight.format.decoding import Limits, SessionLine
    from pytest_insight.storage.local.store import LocalBackend
    from pytest_insight.storage.memory import MemoryBackend
    from pytest_insight.storage.s3.codec import decode_verified

    bodies = [(path, path.read_bytes()) for path in files]
    began = time.process_time()
    batches: list[list[SessionLine]] = [[]]
    for path, body in bodies:
        sessions, lines, _ = decode_verified(body, str(path), path.name.split(".")[0], Limits())
        for session, line in zip(sessions, lines, strict=True):
            if len(batches[-1]) >= 500:
                batches.append([])
            batches[-1].append(SessionLine(session, line))
    decode = time.process_time() - began
    results = sum(len(item.session.test_results) for batch in batches for item in batch)

    async def merge_into(target: LocalBackend | MemoryBackend) -> float:
        merger = Merger(target, MergeStrategy.SKIP_EXISTING)
        began = time.process_time()
        for batch in batches:
            await merger.merge(list(batch), None)
        return time.process_time() - began

    async def store_into(target: LocalBackend | MemoryBackend) -> float:
        began = time.process_time()
        for batch in batches:
            async with target.transaction() as transaction:
                lines = {item.session.session_id: item.line for item in batch}
                await transaction.put([item.session for item in batch], lines=lines)
        return time.process_time() - began

    # the merge's own work (lookups, decisions) is what it adds to plain puts into memory
    merge = max(anyio.run(merge_into, MemoryBackend()) - anyio.run(store_into, MemoryBackend()), 0.0)
    with tempfile.TemporaryDirectory(prefix="insight-phases-") as scratch:
        store = anyio.run(store_into, LocalBackend(Path(scratch), durable=False))
    figures = (("decode", decode), ("merge", merge), ("store", store))
    print(" ".join(f"{name}={seconds / results * 1e6:.2f}" for name, seconds in figures), results)


def _ours(step: str, args: list[str]) -> None:
    """Our export, import or clear, as ``insight`` runs them.

    ``INSIGHT_BENCH_BATCH`` (sessions) and ``INSIGHT_BENCH_BATCH_MIB`` set the
    import's batch bounds, to measure what they cost in memory.
    """
    from pytest_insight.cli.main import rare_full_collections
    from pytest_insight.core.storage import JSONStorage, S3Storage, Storage
    from pytest_insight.exchange import locations
    from pytest_insight.storage.local.store import LocalBackend
    from pytest_insight.storage.s3 import S3Backend

    *paths, concurrency = args
    locations.register_location("s3", lambda text: S3Backend.from_uri(text, concurrency=int(concurrency)))
    with rare_full_collections():
        if step == "export":
            store, uri = paths
            print(Storage(LocalBackend(Path(store), durable=False)).export_sessions(uri))
        elif step == "import":
            store, uri = paths
            _batch_bounds()
            stats = JSONStorage(store).import_sessions(uri)
            print(stats["added"], stats["errors"])
        else:
            (uri,) = paths
            print(S3Storage.from_uri(uri, concurrency=int(concurrency)).clear_sessions())


def _batch_bounds() -> None:
    """Apply ``INSIGHT_BENCH_BATCH`` / ``INSIGHT_BENCH_BATCH_MIB`` to the import, when set."""
    from pytest_insight.exchange import operations

    if os.environ.get("INSIGHT_BENCH_BATCH_MIB"):
        operations.BATCH_BYTES = int(os.environ["INSIGHT_BENCH_BATCH_MIB"]) << 20
    sessions = os.environ.get("INSIGHT_BENCH_BATCH")
    if sessions:
        unbounded = operations.import_sessions

        async def bounded(*args: Any, **kwargs: Any) -> Any:
            return await unbounded(*args, **kwargs, batch_size=int(sessions))

        operations.import_sessions = bounded  # the facade looks it up at each call


def _boto3(step: str, args: list[str]) -> None:
    """The peers' steps that use boto3: a serial loop each way, the bucket's size, the warm-up."""
    import boto3

    client = boto3.client("s3")
    uri = args[1] if step == "boto3-up" else args[0]
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if step == "size":
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        print(sum(int(item["Size"]) for page in pages for item in page.get("Contents", [])))
    elif step == "warm-up":
        for number in range(int(args[1])):
            client.put_object(Bucket=bucket, Key=f"{prefix}/{number}", Body=os.urandom(50_000))
    elif step == "boto3-down":
        count = 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                path = Path(args[1]) / item["Key"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
                count += 1
        print(count)
    else:  # boto3-up
        source = Path(args[0])
        files = sorted(p for p in source.rglob("*") if p.is_file())
        for path in files:
            key = f"{prefix}/{path.relative_to(source).as_posix()}"
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        print(len(files))


def main(argv: list[str]) -> None:
    """Run one step: fill, phases, export, import, clear, size, warm-up, boto3-up or boto3-down."""
    step, args = argv[0], argv[1:]
    if step == "fill":
        print(_fill(Path(args[0]), args[1], int(args[2])))
    elif step == "phases":
        _phases(Path(args[0]))
    elif step in ("export", "import", "clear"):
        _ours(step, args)
    else:
        _boto3(step, args)


if __name__ == "__main__":
    main(sys.argv[1:])
