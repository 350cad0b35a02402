"""``insight flaky``, ``regressions`` and ``report`` over a large local store, and their accuracy.

Run with ``python -m tests.bench.insight [--sessions 100000] [--results 50] [--seeds 10]``.

1. Builds a local store of ``--sessions`` sessions of ``--results`` results
   each (four CI runs a commit, a few flaky, regressed and slowed tests among
   steady ones), then runs each command as its own ``insight`` process and
   prints its wall time, CPU time and peak RSS (from ``wait4``, that process
   alone; on a shared machine the CPU time is the steadier figure).
   Targets: under 10 s and under 500 MB for ``flaky`` and ``report``.
2. Scores ``insight flaky`` and ``insight regressions`` (run as processes,
   ``--json``) against ``--seeds`` labelled histories of
   :mod:`tests.labelled_history`: flaky precision and recall, and the share
   of regressions found with the right first-bad commit.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import anyio

from pytest_insight.core.storage import JSONStorage
from pytest_insight.model.sessions import TestOutcome, TestResult, TestSession
from pytest_insight.storage.local.store import LocalBackend
from tests.labelled_history import START, make_history

__all__ = ["fill", "main", "run_insight", "score"]

_BATCH = 5_000


def _session(number: int, results: int, rng: random.Random) -> TestSession:
    start = START + timedelta(minutes=5 * number)
    commit = f"{number // 4:040x}"
    items = []
    for index in range(results):
        nodeid = f"tests/test_mod{index % 10}.py::test_case_{index}"
        if index % 25 == 1:  # flaky
            failed = rng.random() < 0.1
        elif index % 25 == 2:  # regressed two thirds of the way through
            failed = number * 3 >= 2 * 100_000
        else:
            failed = False
        seconds = (
            (0.05 + index / 500) * (3 if index % 25 == 3 and number > 50_000 else 1) * rng.uniform(0.9, 1.1)
        )
        outcome = TestOutcome.FAILED if failed else TestOutcome.PASSED
        text = "AssertionError: expected 200, got 500" if failed else ""
        items.append(
            TestResult(nodeid, outcome, start, start + timedelta(seconds=seconds), seconds, longreprtext=text)
        )
    tags = {"ci": "github-actions", "commit": commit, "branch": "main", "ci_run_id": str(number)}
    system = {"hostname": f"runner-{number % 4}", "python_version": "3.12.8"}
    return TestSession(
        "bench", f"bench-{number:07d}", start, start + timedelta(minutes=3), 180.0, tags, system, items
    )


def fill(root: Path, sessions: int, results: int) -> float:
    """Store the synthetic sessions at ``root`` in batches, without fsync; return the seconds."""
    backend = LocalBackend(root, durable=False)
    rng = random.Random(22)

    async def write() -> None:
        for first in range(0, sessions, _BATCH):
            batch = [_session(n, results, rng) for n in range(first, min(first + _BATCH, sessions))]
            async with backend.transaction() as transaction:
                await transaction.put(batch)

    began = time.perf_counter()
    anyio.run(write)
    os.sync()
    return time.perf_counter() - began


def run_insight(*args: str) -> tuple[float, float, float, str]:
    """Run ``insight ARGS`` in its own process; return (wall seconds, CPU seconds, peak RSS in MB, stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "pytest_insight", *args], stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)  # reaped here, so its own peak RSS is known
        elapsed = time.perf_counter() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"insight {' '.join(args)} failed: {err.read().decode().strip()}")
        return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read().decode()


def score(seeds: int, workdir: Path) -> dict[str, float]:
    """Flaky precision and recall and regression first-bad accuracy, summed over ``seeds`` histories."""
    flagged = right = detectable = recalled = regressed = first_bad = 0
    for seed in range(seeds):
        made = make_history(seed)
        store = workdir / f"labelled-{seed}"
        JSONStorage(store).save_sessions(made.sessions)  # after the timings: its memory is no one's peak
        flaky = {
            t["nodeid"]
            for t in json.loads(run_insight("flaky", "--json", "--storage", str(store))[3])["flaky"]
        }
        flagged += len(flaky)
        right += sum(1 for n in flaky if made.labels[n].kind == "flaky")
        wanted = made.flaky_detectable()
        detectable += len(wanted)
        recalled += len(wanted & flaky)
        found = json.loads(run_insight("regressions", "--json", "--storage", str(store))[3])["regressions"]
        after = {change["nodeid"]: change["after"]["commit"] for change in found}
        for nodeid, label in made.labels.items():
            if label.kind == "regressed":
                regressed += 1
                first_bad += after.get(nodeid) == made.commits[label.change]
    return {
        "flaky precision": right / flagged,
        "flaky recall": recalled / detectable,
        "regressions with the right first-bad commit": first_bad / regressed,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print the timings and the scores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--results", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=10, help="labelled histories to score against")
    parser.add_argument("--dir", type=Path, default=None, help="where to build the stores (a temp dir)")
    parser.add_argument("--fill", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fill is not None:  # in a process of its own: Linux hands a parent's peak RSS to its children
        print(f"{fill(args.fill, args.sessions, args.results):.1f}")
        return
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="insight-bench-") as name:
        workdir = Path(name)
        store = workdir / "store"
        filler = [sys.executable, "-m", "tests.bench.insight", "--fill", str(store)]
        sizes = ["--sessions", str(args.sessions), "--results", str(args.results)]
        built = float(subprocess.run([*filler, *sizes], check=True, capture_output=True, text=True).stdout)
        print(f"store: {args.sessions:,} sessions of {args.results} results, built in {built:.1f} s")
        print(f"{'command':<28} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>12}")
        report = workdir / "report.html"
        for command in (
            ["flaky"],
            ["regressions"],
            ["report", "--html", str(report)],
        ):
            seconds, cpu, peak, _ = run_insight(*command, "--storage", str(store))
            print(f"insight {command[0]:<20} {seconds:>8.2f} {cpu:>8.2f} {peak:>12.0f}", flush=True)
        print(f"report size: {report.stat().st_size / 1024:.0f} KB")
        for name_, value in score(args.seeds, workdir).items():
            print(f"{name_}: {value:.3f}")


if __name__ == "__main__":
    main()
