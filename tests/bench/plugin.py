"""What recording costs a pytest run: the same suite with and without ``--insight``.

Run with ``python -m tests.bench.plugin [--rounds 5]``. Two shapes of suite,
each run in fresh processes, alternating plain and recorded runs so that
drift on the machine hits both alike:

- ``fast``: 3,000 tests that pass at once, the case where a fixed cost per
  test shows most;
- ``real``: 1,000 tests that print a few lines each, 5% of them failing with
  a traceback, as a real suite's results look.

Prints the median wall time of each and the overhead of recording in
percent (target: under 3%). The store gains a session every recorded run, so
later rounds save into a store that already holds several.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

SUITES = {
    "fast": """
import pytest

@pytest.mark.parametrize("n", range(3000))
def test_fast(n):
    assert n >= 0
""",
    "real": """
import pytest

@pytest.mark.parametrize("n", range(1000))
def test_real(n):
    for line in range(5):
        print(f"step {line} of case {n}: {'x' * 60}")
    assert n % 20 != 7, f"case {n} failed on purpose"
""",
}


def _run(suite: Path, extra: list[str]) -> float:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *extra]
    env = {**os.environ, "PYTEST_ADDOPTS": "", "PYTEST_INSIGHT_HOME": str(suite / "home")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as users run: imports from cached bytecode
    began = time.perf_counter()
    subprocess.run(command, cwd=suite, env=env, capture_output=True, check=False)
    return time.perf_counter() - began


def _measure(suite: Path, store: Path, rounds: int) -> tuple[float, float]:
    plain: list[float] = []
    recorded: list[float] = []
    for _ in range(rounds):
        plain.append(_run(suite, ["-p", "no:insight"]))
        recorded.append(_run(suite, ["--insight", "--insight-sut", "bench", "--insight-storage", str(store)]))
    return statistics.median(plain), statistics.median(recorded)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per suite shape."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="runs of each kind per shape (5)")
    args = parser.parse_args(argv)
    print(f"{'suite':<6} {'tests':>6} {'plain':>8} {'recorded':>9} {'overhead':>9}")
    with tempfile.TemporaryDirectory(prefix="insight-plugin-bench-") as work:
        for name, source in SUITES.items():
            suite = Path(work) / name
            suite.mkdir()
            (suite / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
            (suite / f"test_{name}.py").write_text(source, encoding="utf-8")
            _run(suite, ["-p", "no:insight"])  # warm the file cache and the bytecode
            plain, recorded = _measure(suite, Path(work) / f"{name}-store", args.rounds)
            tests = 3000 if name == "fast" else 1000
            overhead = 100 * (recorded / plain - 1)
            print(f"{name:<6} {tests:>6} {plain:>7.2f}s {recorded:>8.2f}s {overhead:>8.1f}%", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
