"""What recording costs a pytest run: the same suite without the plugin, with it off, and recording.

Run with ``python -m tests.bench.plugin [--rounds 5] [--baseline DIR]``. Two
shapes of suite, each run in fresh processes, the kinds of run alternating
within each round so that drift on the machine hits them alike:

- ``fast``: 3,000 tests that pass at once, the case where a fixed cost per
  test shows most;
- ``real``: 1,000 tests that print a few lines each, 5% of them failing with
  a traceback, as a real suite's results look.

Kinds of run: ``plain`` (``-p no:insight``: the plugin not even imported),
``off`` (the plugin loaded, not recording: what every user's pytest run
pays) and ``recorded`` (``--insight`` into a local store). With
``--baseline DIR`` (a checkout of another commit, e.g. from ``git archive``),
a fourth kind records with that checkout's ``pytest_insight`` first on
``PYTHONPATH``, for a before/after in one run.

Prints the best (lowest) wall time of each kind over the rounds, the best
CPU time (user + system) of ``plain`` and ``recorded``, and the overheads in
percent (target: under 3%): of the best times, since other work on the
machine only ever adds time, and ``paired``, the median over the rounds of
each recorded run's CPU time less the plain run's beside it, against the
median plain run, which a noisy machine disturbs least. The kinds run in a
shuffled order each round (seeded), so that none always follows another. The
store gains a session every recorded run, so later rounds save into a store
that already holds several.

With ``--instructions``, each kind instead runs once a round under
valgrind's cachegrind, and the overheads are in instructions executed: a
count that the machine's speed, which drifts by 10-20% on a shared VM, does
not move. Each round has its own hash seed (runs of the same code differ by
about 0.2% between seeds); a round takes about two minutes a shape.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["instructions", "main", "median_overhead", "need_valgrind", "paired"]

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


def _command(extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *extra]


def _env(suite: Path, pythonpath: str | None) -> dict[str, str]:
    env = {**os.environ, "PYTEST_ADDOPTS": "", "PYTEST_INSIGHT_HOME": str(suite / "home")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as users run: imports from cached bytecode
    env.pop("PYTEST_INSIGHT", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return env


def _run(suite: Path, extra: list[str], pythonpath: str | None = None) -> tuple[float, float]:
    """One pytest run: its wall time and its CPU time (user + system), in seconds."""
    command, env = _command(extra), _env(suite, pythonpath)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(command, cwd=suite, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def instructions(command: list[str], cwd: Path, env: dict[str, str], seed: int) -> int:
    """The instructions ``command`` executes, counted by valgrind's cachegrind, with this hash seed."""
    valgrind = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    env = {**env, "PYTHONHASHSEED": str(seed)}
    done = subprocess.run([*valgrind, *command], cwd=cwd, env=env, capture_output=True, text=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise SystemExit(f"valgrind gave no instruction count: {done.stderr[-500:]}")
    return int(found[1].replace(",", ""))


def need_valgrind() -> None:
    """Stop with a hint when valgrind is missing."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt install valgrind)")


def median_overhead(counts: list[int], plain: list[int]) -> str:
    """The median, over rounds, of each round's count against plain's, in percent."""
    return f"{100 * statistics.median(n / p - 1 for n, p in zip(counts, plain, strict=True)):+.2f}%"


def _instructions(suite: Path, extra: list[str], pythonpath: str | None, seed: int) -> int:
    return instructions(_command(extra), suite, _env(suite, pythonpath), seed)


def _suite(work: Path, name: str, source: str) -> Path:
    """Write the suite ``name`` into a directory of its own; return that directory."""
    suite = work / name
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (suite / f"test_{name}.py").write_text(source, encoding="utf-8")
    return suite


def _kinds(work: Path, name: str, baseline: Path | None) -> dict[str, tuple[list[str], str | None]]:
    record = ["--insight", "--insight-sut", "bench"]
    # "=": a store path after a space would be taken for a test path when pytest picks its rootdir
    kinds: dict[str, tuple[list[str], str | None]] = {
        "plain": (["-p", "no:insight"], None),
        "off": ([], None),
        "recorded": ([*record, f"--insight-storage={work / f'{name}-store'}"], None),
    }
    if baseline is not None:
        store = f"--insight-storage={work / f'{name}-baseline-store'}"
        kinds["baseline"] = ([*record, store], str(baseline))
    return kinds


def _percent(value: float, reference: float) -> str:
    return f"{100 * (value / reference - 1):+.1f}%"


def paired(times: list[float], plain: list[float]) -> str:
    """The median of each round's difference to ``plain``, in percent of the median ``plain`` time."""
    differences = [time - reference for time, reference in zip(times, plain, strict=True)]
    return f"{100 * statistics.median(differences) / statistics.median(plain):+.1f}%"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per suite shape."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="runs of each kind per shape (5)")
    parser.add_argument("--baseline", type=Path, help="a checkout whose plugin to time beside this one")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions under valgrind instead of timing"
    )
    args = parser.parse_args(argv)
    baseline = args.baseline.resolve() if args.baseline else None
    if args.instructions:
        need_valgrind()
        return _count(baseline, args.rounds)
    header = f"{'suite':<6} {'tests':>6} {'plain':>7} {'off':>7} {'recorded':>9}"
    header += f" {'baseline':>9}" if baseline else ""
    header += f" {'cpu plain':>10} {'cpu rec.':>9}   overhead: off, recorded, cpu recorded, paired"
    header += ", baseline, cpu baseline, paired" if baseline else ""
    print(header)
    with tempfile.TemporaryDirectory(prefix="insight-plugin-bench-") as work:
        for name, source in SUITES.items():
            suite = _suite(Path(work), name, source)
            kinds = _kinds(Path(work), name, baseline)
            for extra, pythonpath in kinds.values():  # warm the file cache and the bytecode
                _run(suite, extra, pythonpath)
            walls: dict[str, list[float]] = {kind: [] for kind in kinds}
            cpus: dict[str, list[float]] = {kind: [] for kind in kinds}
            order = list(kinds.items())
            for round_number in range(args.rounds):
                random.Random(round_number).shuffle(order)
                for kind, (extra, pythonpath) in order:
                    spent = _run(suite, extra, pythonpath)
                    walls[kind].append(spent[0])
                    cpus[kind].append(spent[1])
            wall = {kind: min(times) for kind, times in walls.items()}
            cpu = {kind: min(times) for kind, times in cpus.items()}
            tests = 3000 if name == "fast" else 1000
            line = (
                f"{name:<6} {tests:>6} {wall['plain']:>6.2f}s {wall['off']:>6.2f}s {wall['recorded']:>8.2f}s"
            )
            line += f" {wall['baseline']:>8.2f}s" if baseline else ""
            line += f" {cpu['plain']:>9.2f}s {cpu['recorded']:>8.2f}s   "
            shown = [_percent(wall[kind], wall["plain"]) for kind in ("off", "recorded")]
            shown += [_percent(cpu["recorded"], cpu["plain"]), paired(cpus["recorded"], cpus["plain"])]
            if baseline:
                shown += [_percent(wall["baseline"], wall["plain"]), _percent(cpu["baseline"], cpu["plain"])]
                shown += [paired(cpus["baseline"], cpus["plain"])]
            line += ", ".join(shown)
            print(line, flush=True)
    return 0


def _count(baseline: Path | None, rounds: int) -> int:
    """Print each shape's median instructions, plain and recorded, and the median overheads.

    Each round runs every kind once (at once: a count does not depend on the
    machine's load) with its own hash seed, which moves a run's count by
    about 0.2%; the overheads are the medians of each round's.
    """
    print(
        f"{'suite':<6} {'tests':>6} {'plain':>14} {'recorded':>14}   overhead: recorded"
        + (", baseline" if baseline else "")
    )
    with tempfile.TemporaryDirectory(prefix="insight-plugin-bench-") as work:
        for name, source in SUITES.items():
            suite = _suite(Path(work), name, source)
            kinds = _kinds(Path(work), name, baseline)
            del kinds["off"]
            for extra, pythonpath in kinds.values():
                _run(suite, extra, pythonpath)  # the bytecode, and a store that holds a session already
            counts: dict[str, list[int]] = {kind: [] for kind in kinds}
            with ThreadPoolExecutor(len(kinds)) as pool:
                for seed in range(rounds):
                    runs = {kind: pool.submit(_instructions, suite, *kinds[kind], seed) for kind in kinds}
                    for kind, run in runs.items():
                        counts[kind].append(run.result())
            tests = 3000 if name == "fast" else 1000
            plain = counts["plain"]
            shown = [median_overhead(counts[kind], plain) for kind in kinds if kind != "plain"]
            line = f"{name:<6} {tests:>6} {statistics.median(plain):>14,.0f}"
            print(f"{line} {statistics.median(counts['recorded']):>14,.0f}   {', '.join(shown)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
