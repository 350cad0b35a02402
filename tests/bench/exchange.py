"""Export and import throughput of the exchange core, to and from local files.

Run with ``python -m tests.bench.exchange [--sessions 10000] [--tests 50]``.
Fills a local JSON store, exports it to a ``.jsonl.gz`` bundle, a ``.json``
document and a directory of bundles, then imports each into a fresh local
store, and prints sessions/s and the size written for every step.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from pytest_insight.core.storage import JSONStorage
from tests.conftest import BASE_TIME, build_session

__all__ = ["main"]

_FILL_BATCH = 1_000
_TARGETS = ("sessions.jsonl.gz", "sessions.json", "bundles")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def _fill(store: JSONStorage, count: int, tests: int) -> None:
    for first in range(0, count, _FILL_BATCH):
        store.save_sessions(
            build_session(
                f"bench-{number:06d}",
                sut_name=f"service-{number % 5}",
                start=BASE_TIME + timedelta(minutes=7 * number),
                tests=tests,
            )
            for number in range(first, min(first + _FILL_BATCH, count))
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print one line per step."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--tests", type=int, default=50, help="test results per session")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="insight-bench-") as scratch:
        root = Path(scratch)
        source = JSONStorage(root / "source")
        started = time.perf_counter()
        _fill(source, options.sessions, options.tests)
        fill = time.perf_counter() - started
        print(f"{options.sessions} sessions x {options.tests} tests stored in {fill:.1f} s")
        print(f"{'step':<32}{'seconds':>9}{'sessions/s':>12}{'MB':>9}")
        (root / "out").mkdir()
        for name in _TARGETS:
            target = root / "out" / name
            started = time.perf_counter()
            exported = source.export_sessions(target)
            elapsed = time.perf_counter() - started
            size = _size(target) / 1e6
            print(f"{'export -> ' + name:<32}{elapsed:>9.2f}{exported / elapsed:>12.0f}{size:>9.1f}")
        for name in _TARGETS:
            fresh = JSONStorage(root / f"import-{name}")
            started = time.perf_counter()
            stats = fresh.import_sessions(root / "out" / name)
            elapsed = time.perf_counter() - started
            if stats["added"] != options.sessions or stats["errors"]:
                raise SystemExit(f"import of {name} went wrong: {stats}")
            print(f"{'import <- ' + name:<32}{elapsed:>9.2f}{stats['added'] / elapsed:>12.0f}{'':>9}")


if __name__ == "__main__":
    main()
