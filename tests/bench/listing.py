"""``insight sessions --limit 5`` on a small and a large local store: it should cost about the same.

Run with ``python -m tests.bench.listing [--sizes 200,20000]``. Each store
holds sessions of 50 results, most in packs (as imports write them) and the
newest 100 in files of their own (as the plugin saves them). Prints the
median wall time and peak RSS of the command in a process of its own, and the
same for ``insight sessions`` reading everything, for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from pytest_insight.core.facade import Storage
from pytest_insight.storage.local.store import LocalBackend
from tests.conftest import BASE_TIME, build_session

__all__ = ["main"]

_LOOSE = 100
_BATCH = 2_000


def fill(root: Path, count: int) -> None:
    """``count`` sessions: all but the newest ``_LOOSE`` in packs, those in files of their own."""
    storage = Storage(LocalBackend(root, durable=False))  # no fsync: the benchmark measures reading
    packed = max(count - _LOOSE, 0)
    for first in range(0, packed, _BATCH):
        last = min(first + _BATCH, packed)
        storage.save_sessions(
            [
                build_session(f"s-{n:07d}", start=BASE_TIME + timedelta(minutes=n), tests=50)
                for n in range(first, last)
            ]
        )
    for number in range(packed, count):
        storage.save_session(
            build_session(f"s-{number:07d}", start=BASE_TIME + timedelta(minutes=number), tests=50)
        )


_CHILD = (
    "import resource, sys\n"
    "from pytest_insight.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "sys.stderr.write(f'{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n')\n"
    "raise SystemExit(code)\n"
)


def _run(store: Path, *extra: str) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of ``insight sessions`` in a process of its own."""
    command = [sys.executable, "-c", _CHILD, "sessions", "--storage", str(store), "--json", *extra]
    began = time.perf_counter()
    child = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ})
    took = time.perf_counter() - began
    return took, int(child.stderr.strip().splitlines()[-1]) / 1024


def main(argv: list[str] | None = None) -> int:
    """Fill a store of each size and time the listings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="200,20000", help="store sizes, comma-separated (200,20000)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"{'sessions':>9} {'--limit 5':>10} {'peak MB':>8} {'all':>8} {'peak MB':>8}")
    with tempfile.TemporaryDirectory(prefix="insight-listing-") as work:
        for size in (int(part) for part in args.sizes.split(",")):
            store = Path(work) / f"store-{size}"
            fill(store, size)
            newest = [_run(store, "--limit", "5") for _ in range(args.rounds)]
            everything = [_run(store) for _ in range(args.rounds)]
            limited = statistics.median(t for t, _ in newest), max(p for _, p in newest)
            full = statistics.median(t for t, _ in everything), max(p for _, p in everything)
            print(
                f"{size:>9} {limited[0]:>9.2f}s {limited[1]:>8.0f} {full[0]:>7.2f}s {full[1]:>8.0f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
