"""``insight sql`` at scale: ``count(*) GROUP BY outcome`` over a local store and a SeaweedFS bucket.

Run with ``python -m tests.bench.sql [--sessions 100000] [--results 50]``.
Builds a local store of that many sessions (in packs, as an import leaves
them), exports it to a bucket on a local SeaweedFS, then runs the query
through ``insight sql`` in a fresh process for each storage and prints its
wall time and the process's peak RSS (``VmHWM``, so Linux only). A query filtered on one SUT shows what
partition pruning saves.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import anyio

from infra.local_s3 import local_s3_server
from pytest_insight.core.storage import JSONStorage
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.local.store import LocalBackend
from tests.conftest import BASE_TIME, build_session

__all__ = ["main"]

_BATCH = 5_000
_QUERY = "SELECT outcome, count(*) AS n FROM results GROUP BY outcome ORDER BY outcome"
_ONE_SUT = (
    "SELECT outcome, count(*) AS n FROM results WHERE sut_name = 'sut-0' GROUP BY outcome ORDER BY outcome"
)
# The child's own peak, VmHWM: getrusage's ru_maxrss survives execve, so a child
# of this (large) process would report at least this process's size.
_CHILD = (
    "import re, sys\n"
    "from pathlib import Path\n"
    "from pytest_insight.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "status = Path('/proc/self/status').read_text()\n"
    "print(re.search(r'VmHWM:\\s+(\\d+) kB', status)[1], file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def fill(root: Path, count: int, results: int) -> None:
    """Store ``count`` sessions of ``results`` results (four SUTs, one a minute) in packs, without fsync."""
    backend = LocalBackend(root, durable=False)
    template = build_session("template", tests=results - 2)  # and two attempts of a rerun test

    async def write() -> None:
        for start in range(0, count, _BATCH):
            batch = []
            for number in range(start, min(start + _BATCH, count)):
                session = TestSession(**{f: getattr(template, f) for f in TestSession.__dataclass_fields__})
                session.session_id = f"bench-{number:07d}"
                session.sut_name = f"sut-{number % 4}"
                session.session_start_time = BASE_TIME + timedelta(minutes=number)
                batch.append(session)
            async with backend.transaction() as transaction:
                await transaction.put(batch)

    anyio.run(write)


def run(storage: str, query: str, env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``insight sql`` in a fresh process: seconds, peak RSS in MB, and its output."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, "sql", query, "--storage", storage, "--csv"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    seconds = time.perf_counter() - began
    rss_mb = int(done.stderr.strip().splitlines()[-1]) / 1024
    return seconds, rss_mb, done.stdout


def main(argv: Sequence[str] | None = None) -> int:
    """Build the store and the bucket, run the queries, print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--results", type=int, default=50)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="insight-sql-bench-") as folder,
        local_s3_server(bucket="bench") as server,
    ):
        root = Path(folder) / "store"
        began = time.perf_counter()
        fill(root, args.sessions, args.results)
        built = time.perf_counter() - began
        print(f"store: {args.sessions:,} sessions of {args.results} results in {built:.1f} s")
        env = {**os.environ, **server.env()}
        os.environ.update(server.env())
        began = time.perf_counter()
        JSONStorage(root).export_sessions("s3://bench/team")
        print(f"bucket: exported in {time.perf_counter() - began:.1f} s")
        rows = []
        answers: set[str] = set()
        for label, storage, query in (
            ("local store, all", str(root), _QUERY),
            ("bucket, all", "s3://bench/team", _QUERY),
            ("local store, one SUT of 4", str(root), _ONE_SUT),
            ("bucket, one SUT of 4", "s3://bench/team", _ONE_SUT),
        ):
            seconds, rss_mb, output = run(storage, query, env)
            if query == _QUERY:
                answers.add(output)
            rows.append(f"| {label:<26} | {seconds:8.2f} | {rss_mb:8.0f} |")
        print("| query                      |  seconds | peak RSS MB |")
        print("|----------------------------|---------:|---------:|")
        print("\n".join(rows))
        print(
            f"same answer from both storages:\n{answers.pop()}" if len(answers) == 1 else f"differ: {answers}"
        )
        return 0 if len(answers) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
