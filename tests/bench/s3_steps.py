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

__all__ = ["PADDED_RESULTS", "main"]

PADDED_RESULTS = 5
"""The default results per session: few, padded with random text to 10-100 KB a bundle."""

_SUTS = 20


def _fill(root: Path, bundles: int, results: int, seed: int = 7) -> int:
    from pytest_insight.core.storage import Storage
    from pytest_insight.storage.local import LocalBackend
    from tests.conftest import BASE_TIME, build_session

    rng = random.Random(seed)
    store = Storage(LocalBackend(root, durable=False))
    sessions = []
    for number in range(bundles):
        target = rng.randint(10_000, 100_000)  # gzipped bytes of the bundle; random hex gzips to ~0.55
        for half in range(2):
            padded = results == PADDED_RESULTS  # else the size comes from the results themselves
            sessions.append(
                build_session(
                    f"bench-{number:05d}-{half}",
                    sut_name=f"service-{number % _SUTS:02d}",
                    start=BASE_TIME + timedelta(days=number // _SUTS, minutes=half),
                    tests=results,
                    tags={"noise": rng.randbytes(int(target / 0.55 / 4)).hex()} if padded else {},
                )
            )
        if len(sessions) >= 500:
            store.save_sessions(sessions)
            sessions = []
    store.save_sessions(sessions)
    return bundles * 2


def _ours(step: str, args: list[str]) -> None:
    """Our export, import or clear, as ``insight`` runs them."""
    from pytest_insight.cli.main import rare_full_collections
    from pytest_insight.core import locations
    from pytest_insight.core.storage import JSONStorage, S3Storage, Storage
    from pytest_insight.storage.local import LocalBackend
    from pytest_insight.storage.s3 import S3Backend

    *paths, concurrency = args
    locations.register_location("s3", lambda text: S3Backend.from_uri(text, concurrency=int(concurrency)))
    with rare_full_collections():
        if step == "export":
            store, uri = paths
            print(Storage(LocalBackend(Path(store), durable=False)).export_sessions(uri))
        elif step == "import":
            store, uri = paths
            stats = JSONStorage(store).import_sessions(uri)
            print(stats["added"], stats["errors"])
        else:
            (uri,) = paths
            print(S3Storage.from_uri(uri, concurrency=int(concurrency)).clear_sessions())


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
    """Run one step: ``fill``, ``export``, ``import``, ``clear``, ``size``, ``warm-up``, ``boto3-up/down``."""
    step, args = argv[0], argv[1:]
    if step == "fill":
        print(_fill(Path(args[0]), int(args[1]), int(args[2])))
    elif step in ("export", "import", "clear"):
        _ours(step, args)
    else:
        _boto3(step, args)


if __name__ == "__main__":
    main(sys.argv[1:])
