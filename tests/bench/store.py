"""How the local store's save and load times grow with its size.

Run with ``python -m tests.bench.store [--sizes 100,10000,100000] [--saves 25]``.
Prints, per store size, the median time of one ``save_session`` and of
``load_sessions`` (wall, and the CPU time of all its threads, which a busy
machine disturbs less), then the ratio save(largest) / save(smallest), which should
stay below 2 since a save touches only its own file.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import anyio

from pytest_insight.core.storage import JSONStorage
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.local.store import LocalBackend
from tests.conftest import BASE_TIME, build_session

__all__ = ["main"]

_BUILD_BATCH = 5_000


def _session(number: int, prefix: str = "bench") -> TestSession:
    return build_session(f"{prefix}-{number:07d}", start=BASE_TIME + timedelta(seconds=number), tests=10)


def fill(root: Path, count: int) -> float:
    """Store ``count`` sessions at ``root`` through the batch path, without fsync; return the seconds."""
    backend = LocalBackend(root, durable=False)
    template = _session(0)

    async def write() -> None:
        for start in range(0, count, _BUILD_BATCH):
            batch = []
            for number in range(start, min(start + _BUILD_BATCH, count)):
                session = TestSession(**{f: getattr(template, f) for f in TestSession.__dataclass_fields__})
                session.session_id = f"bench-{number:07d}"
                session.session_start_time = BASE_TIME + timedelta(seconds=number)
                batch.append(session)
            async with backend.transaction() as transaction:
                await transaction.put(batch)

    began = time.perf_counter()
    anyio.run(write)
    # Flush the unsynced fill now: else the first fsyncs of the timed saves
    # pay for writing it back (ext4 commits dirty data with its journal).
    os.sync()
    return time.perf_counter() - began


def median_seconds(action: Callable[[int], object], repeats: int) -> tuple[float, float]:
    """Run ``action(i)`` ``repeats`` times; return the median wall time and the median CPU time."""
    times, cpu = [], []
    for index in range(repeats):
        began, began_cpu = time.perf_counter(), time.process_time()
        action(index)
        times.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    return statistics.median(times), statistics.median(cpu)


def measure(size: int, saves: int, loads: int, workdir: Path) -> tuple[float, float, float, float]:
    """Return (seconds to build, median save, median load, its CPU) for a store of ``size`` sessions."""
    root = workdir / f"store-{size}"
    built = fill(root, size)
    store = JSONStorage(root)  # timed saves are durable (fsync), as by default
    extra = [_session(size + index, prefix="extra") for index in range(saves)]
    store.save_session(_session(size + saves, prefix="warm-up"))
    save, _ = median_seconds(lambda index: store.save_session(extra[index]), saves)
    load, load_cpu = median_seconds(lambda index: store.load_sessions(), loads)
    return built, save, load, load_cpu


def main(argv: Sequence[str] | None = None) -> None:
    """Print the benchmark table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,10000,100000", help="comma-separated store sizes")
    parser.add_argument("--saves", type=int, default=25, help="save_session calls timed per size")
    parser.add_argument("--loads", type=int, default=3, help="load_sessions calls timed per size")
    parser.add_argument("--dir", type=Path, default=None, help="where to build the stores (a temp dir)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="insight-bench-") as workdir:
        columns = ("build s", "save_session ms", "load_sessions s", "load CPU s", "load µs/session")
        print(f"{'sessions':>9} {columns[0]:>9}" + "".join(f" {name:>16}" for name in columns[1:]))
        saves: dict[int, float] = {}
        for size in sizes:
            built, save, load, cpu = measure(size, args.saves, args.loads, Path(workdir))
            saves[size] = save
            per = load / (size + args.saves) * 1e6
            figures = f"{save * 1e3:>16.2f} {load:>16.3f} {cpu:>16.3f} {per:>16.1f}"
            print(f"{size:>9} {built:>9.2f} {figures}", flush=True)
    smallest, largest = min(sizes), max(sizes)
    print(f"save({largest}) / save({smallest}) = {saves[largest] / saves[smallest]:.2f} (target < 2)")


if __name__ == "__main__":
    main()
