"""The benchmarks ``nox -s bench`` runs still run: each, tiny, in a process of its own.

The S3 benchmark needs awscli and s5cmd, which ``nox -s bench`` installs and
the tests do not; the quick local ones are run here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize(
    ("module", "arguments", "expected"),
    [
        ("tests.bench.store", ["--sizes", "10,20", "--saves", "2", "--loads", "1"], "save(20) / save(10) ="),
        ("tests.bench.exchange", ["--sessions", "20", "--tests", "3"], "import <- bundles"),
        (
            "tests.bench.decode",
            ["--sessions", "3", "--results", "5", "--rounds", "1", "--big-mb", "1"],
            "MB gzipped",
        ),
        ("tests.bench.plugin_parts", ["--tests", "30", "--rounds", "1"], "µs"),
    ],
)
def test_a_benchmark_runs_to_its_report(module: str, arguments: list[str], expected: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", module, *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert expected in run.stdout
