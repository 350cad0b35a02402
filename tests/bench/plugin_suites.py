"""What recording costs real test suites: three projects' own tests with and without recording.

Run with ``python -m tests.bench.plugin_suites [--rounds 9] [--suites
more-itertools,boltons,python-dateutil] [--cache DIR] [--baseline DIR]``. The
first run needs the network: each sdist comes from PyPI's simple index
(checked against its sha256) into ``--cache`` (``~/.cache/pytest-insight-bench/suites``),
is unpacked there once and reused. The suites are not installed: each runs
from its unpacked source, with the source root (or its ``src/``) on ``PYTHONPATH``.

- ``more-itertools`` 10.5.0, ``tests/`` (its unittest ``subTest`` calls are
  pytest 9 subtests); ``boltons`` 26.2.0, ``tests/``;
- ``python-dateutil`` 4.0.0, ``tests/`` and ``docs/`` as its tox.ini runs
  them, with ``tzdata`` and ``freezegun`` (pinned below) installed once by
  ``uv pip install --target`` into the cache. Its conftest uses pytest-cov's
  ``no_cover`` mark, which its ``filterwarnings = error`` turns into an error
  without pytest-cov: the runs pass ``-W ignore::pytest.PytestUnknownMarkWarning``.
  Nothing is deselected; the few tests that fail here (one finds the older
  dateutil installed beside us, some disagree with the system's zone data)
  fail in every kind of run alike.

Kinds of run, each a fresh ``python -m pytest -q -p no:cacheprovider -p
no:randomly`` in the suite's directory: ``plain`` (``-p no:insight``) and
``recorded`` (``--insight`` into a local store), both with this checkout first
on ``PYTHONPATH``; with ``--baseline DIR`` (a checkout of another commit),
``baseline`` records with that checkout's ``pytest_insight`` first instead.
One warm-up run of each kind, then the kinds alternate within each round so
that drift on the machine hits them alike.

Prints per suite the results pytest reported (from its summary line), the
wall and CPU (user + system) times of each kind, best and median over the
rounds, and the overheads against ``plain`` in percent (target: under 3% for
suites of thousands of fast tests). Best is the closest to a run's own cost,
since other work on the machine only adds time; the median shows how steady
it is; ``paired`` is the median of each round's CPU difference to the plain
run beside it, the figure a noisy machine disturbs least. A warning follows
when a kind's warm-up run exits with another code, or reports other counts,
than ``plain``'s.

With ``--instructions``, each round instead counts the instructions of one
run of every kind under valgrind's cachegrind (a hash seed a round), which
the machine's drift does not move, and prints the median overheads (as
``python -m tests.bench.plugin --instructions``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urljoin

from packaging.utils import canonicalize_name, parse_sdist_filename
from packaging.version import Version

from tests.bench.plugin import instructions, median_overhead, need_valgrind, paired

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[2]  # the checkout holding the pytest_insight measured
INDEX = "https://pypi.org/simple/"
CACHE = Path.home() / ".cache" / "pytest-insight-bench" / "suites"


class Suite(NamedTuple):
    """A project whose own tests are run: which release, which paths, and what else they need."""

    version: str
    paths: tuple[str, ...]
    deps: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


SUITES = {
    "more-itertools": Suite("10.5.0", ("tests",)),
    "boltons": Suite("26.2.0", ("tests",)),
    "python-dateutil": Suite(
        "4.0.0",
        ("tests", "docs"),
        deps=("tzdata==2026.6", "freezegun==1.5.5"),
        options=("-W", "ignore::pytest.PytestUnknownMarkWarning"),
    ),
}


class Run(NamedTuple):
    """One pytest run: its wall and CPU time in seconds, its exit code and its summary counts."""

    wall: float
    cpu: float
    code: int
    summary: str


class Kind(NamedTuple):
    """A kind of run: what goes on ``PYTHONPATH``, in order, and the pytest options it adds."""

    pythonpath: list[Path]
    extra: list[str]


def _source(name: str, suite: Suite, cache: Path) -> Path:
    """The unpacked sdist of ``name``, downloaded and unpacked the first time only."""
    unpacked = cache / f"{name}-{suite.version}"
    if unpacked.is_dir():
        return unpacked
    project = f"{INDEX}{canonicalize_name(name)}/"
    json_index = {"Accept": "application/vnd.pypi.simple.v1+json"}  # PEP 691
    request = urllib.request.Request(project, headers=json_index)  # noqa: S310 (a fixed https URL)
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (the same)
        files = json.load(response)["files"]
    wanted = (canonicalize_name(name), Version(suite.version))
    sdists = [f for f in files if f["filename"].endswith(f"-{suite.version}.tar.gz")]
    found = [f for f in sdists if parse_sdist_filename(f["filename"]) == wanted]
    if not found:
        raise SystemExit(f"no sdist of {name} {suite.version} on {INDEX}")
    url = urljoin(request.full_url, found[0]["url"])
    if not url.startswith("https://"):
        raise SystemExit(f"refusing to download {url}: not https")
    print(f"downloading {url}", file=sys.stderr, flush=True)
    with urllib.request.urlopen(url, timeout=300) as response:  # noqa: S310 (checked to be https above)
        archive = response.read()
    if hashlib.sha256(archive).hexdigest() != found[0]["hashes"]["sha256"]:
        raise SystemExit(f"{url}: sha256 differs from the index's")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as work:
        path = Path(work) / found[0]["filename"]
        path.write_bytes(archive)
        with tarfile.open(path) as tar:
            tar.extractall(Path(work) / "src", filter="data")
        (top,) = (Path(work) / "src").iterdir()  # an sdist holds one directory, NAME-VERSION
        top.rename(unpacked)  # last, so that an interrupted download leaves nothing to reuse
    return unpacked


def _deps(name: str, suite: Suite, cache: Path) -> list[Path]:
    """Where what the suite's tests import beyond our environment is, installed the first time only."""
    if not suite.deps:
        return []
    target = cache / f"deps-{name}-{suite.version}"
    if not target.is_dir():
        with tempfile.TemporaryDirectory(dir=cache) as work:
            install = [sys.executable, "-m", "uv", "pip", "install", "--python", sys.executable, "--no-deps"]
            subprocess.run([*install, "--target", str(Path(work) / "deps"), *suite.deps], check=True)
            (Path(work) / "deps").rename(target)
    return [target]


def _command(kind: Kind, options: list[str]) -> list[str]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    return [*command, *kind.extra, *options]


def _env(kind: Kind, home: Path) -> dict[str, str]:
    env = {**os.environ, "PYTEST_ADDOPTS": "", "PYTEST_INSIGHT_HOME": str(home)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as users run: imports from cached bytecode
    env.pop("PYTEST_INSIGHT", None)
    env["PYTHONPATH"] = os.pathsep.join(str(path) for path in kind.pythonpath)
    return env


def _run(source: Path, kind: Kind, options: list[str], home: Path) -> Run:
    """One pytest run of the suite in ``source``, in a fresh process."""
    command, env = _command(kind, options), _env(kind, home)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(command, cwd=source, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall, cpu, done.returncode, _summary(done.stdout))


def _summary(output: str) -> str:
    """The counts of pytest's last line, e.g. ``4 failed, 5059 passed``, without its duration."""
    for line in reversed(output.splitlines()):
        found = re.fullmatch(r"=*\s*(.+?) in [\d.]+s\b.*", line)
        if found:
            return found[1]
    return "(no summary line)"


def _results(summary: str) -> int:
    """How many results a summary reports: every count but warnings and deselected tests."""
    counts = (part.split(" ", 1) for part in summary.split(", "))
    uncounted = ("warning", "warnings", "deselected")
    return sum(int(count) for count, what in counts if count.isdigit() and what not in uncounted)


def _kinds(name: str, code: list[Path], work: Path, baseline: Path | None) -> dict[str, Kind]:
    record = ["--insight", "--insight-sut", "bench"]
    # "=": a store path after a space would be taken for a test path when pytest picks its rootdir
    kinds = {
        "plain": Kind([ROOT, *code], ["-p", "no:insight"]),
        "recorded": Kind([ROOT, *code], [*record, f"--insight-storage={work / f'{name}-store'}"]),
    }
    if baseline is not None:
        store = f"--insight-storage={work / f'{name}-baseline-store'}"
        kinds["baseline"] = Kind([baseline, *code], [*record, store])
    return kinds


def _percent(value: float, reference: float) -> str:
    return f"{100 * (value / reference - 1):+.1f}%"


def _overheads(times: list[float], plain: list[float]) -> str:
    """The overhead against ``plain`` of the best time, then of the median time."""
    best = _percent(min(times), min(plain))
    return f"{best}, {_percent(statistics.median(times), statistics.median(plain))}"


def _times(times: list[float]) -> str:
    return f"{min(times):.2f}/{statistics.median(times):.2f}s"


def _counted(
    name: str, suite: Suite, source: Path, kinds: dict[str, Kind], options: list[str], home: Path, rounds: int
) -> str:
    """The suite's line of instruction counts: the kinds of a round counted at once, a hash seed a round."""
    counts: dict[str, list[int]] = {kind: [] for kind in kinds}
    with ThreadPoolExecutor(len(kinds)) as pool:
        for seed in range(rounds):
            runs = {
                kind: pool.submit(instructions, _command(setup, options), source, _env(setup, home), seed)
                for kind, setup in kinds.items()
            }
            for kind, run in runs.items():
                counts[kind].append(run.result())
    shown = "; ".join(f"{kind} {median_overhead(counts[kind], counts['plain'])}" for kind in list(kinds)[1:])
    plain = statistics.median(counts["plain"])
    return f"{name + ' ' + suite.version:<22} instructions: plain {plain:,.0f}; {shown}"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per suite."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=9, help="runs of each kind per suite (9)")
    parser.add_argument("--suites", default=",".join(SUITES), help=f"comma-separated ({','.join(SUITES)})")
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"where the sdists are kept ({CACHE})")
    parser.add_argument("--baseline", type=Path, help="a checkout whose plugin to time beside this one")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions under valgrind, a hash seed a round (see tests.bench.plugin)",
    )
    args = parser.parse_args(argv)
    if args.instructions:
        need_valgrind()
    names = args.suites.split(",")
    unknown = sorted(set(names) - set(SUITES))
    if unknown:
        parser.error(f"unknown suites: {', '.join(unknown)}")
    cache = args.cache.expanduser().resolve()
    baseline = args.baseline.resolve() if args.baseline else None
    sources = {name: _source(name, SUITES[name], cache) for name in names}  # all downloads before any timing
    deps = {name: _deps(name, SUITES[name], cache) for name in names}
    header = f"{'suite':<22} {'results':>7} {'plain':>12} {'recorded':>12}"
    header += f" {'baseline':>12}" if baseline else ""
    header += f" {'cpu plain':>12} {'cpu rec.':>12}" + (f" {'cpu base.':>12}" if baseline else "")
    if not args.instructions:
        print(header + "   (times: best/median) overhead: wall best, median, cpu best, median, paired")
    with tempfile.TemporaryDirectory(prefix="insight-suites-bench-") as work:
        for name in names:
            suite, source = SUITES[name], sources[name]
            code = [source / "src" if (source / "src").is_dir() else source, *deps[name]]
            kinds = _kinds(name, code, Path(work), baseline)
            options = [*suite.options, *suite.paths]
            home = Path(work) / "home"
            # warm the bytecode and the file cache; check that recording changes no outcome
            warm = {kind: _run(source, setup, options, home) for kind, setup in kinds.items()}
            if args.instructions:
                print(_counted(name, suite, source, kinds, options, home, args.rounds), flush=True)
                continue
            walls: dict[str, list[float]] = {kind: [] for kind in kinds}
            cpus: dict[str, list[float]] = {kind: [] for kind in kinds}
            for _ in range(args.rounds):
                for kind, setup in kinds.items():
                    spent = _run(source, setup, options, home)
                    walls[kind].append(spent.wall)
                    cpus[kind].append(spent.cpu)
            line = f"{name + ' ' + suite.version:<22} {_results(warm['plain'].summary):>7}"
            line += "".join(f" {_times(walls[kind]):>12}" for kind in kinds)
            line += "".join(f" {_times(cpus[kind]):>12}" for kind in kinds) + "   "
            overheads = (
                f"{kind}: {_overheads(walls[kind], walls['plain'])}, "
                f"{_overheads(cpus[kind], cpus['plain'])}, {paired(cpus[kind], cpus['plain'])}"
                for kind in list(kinds)[1:]
            )
            line += "; ".join(overheads)
            print(line, flush=True)
            plain = warm["plain"]
            for kind, first in warm.items():
                if first.code != plain.code:
                    print(f"warning: {name}: {kind} exited {first.code}, plain {plain.code}")
                if first.summary != plain.summary:
                    print(f"warning: {name}: {kind} reported {first.summary!r}, plain {plain.summary!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
