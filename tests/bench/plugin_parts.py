"""Where a recorded run's overhead goes, part by part (``python -m tests.bench.plugin``'s total, split).

Run with ``python -m tests.bench.plugin_parts [--tests 3000] [--rounds 7]``.
Each figure is the best of ``--rounds`` fresh processes (imports are paid once
a process), so a busy machine disturbs it less than the whole-run benchmark:

- ``import off``: importing the plugin as pytest does in every run, recording or not;
- ``import on``: what ``pytest_configure`` imports when a run records;
- ``record``: ``SessionRecorder.add_reports`` of the setup, call and teardown
  reports of every test (real ``pytest.TestReport`` objects), as the end of a
  run turns the reports it kept into results;
- ``finish``: the end of the run: build the session, redact it and publish it
  to a local store (the storage layer is imported here). In the ``real``
  shape 5% of the tests fail with output, so the SUT's history is read for
  the known-flaky note; the store already holds the earlier rounds' sessions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

__all__ = ["main"]


def _child(shape: str, tests: int, store: str) -> dict[str, float]:
    """One fresh process's figures, in seconds."""
    import importlib.metadata  # noqa: F401  (pytest has imported both before it loads the plugin)

    import anyio.pytest_plugin  # noqa: F401  (anyio, a dependency, is a pytest plugin: every run loads it)
    import pytest

    began = time.perf_counter()
    import pytest_insight.plugin  # noqa: F401  (what every pytest run imports)

    import_off = time.perf_counter() - began

    began = time.perf_counter()
    from pytest_insight.plugin import recording  # noqa: F401
    from pytest_insight.plugin.publish import publish
    from pytest_insight.plugin.recorder import SessionRecorder
    from pytest_insight.plugin.settings import InsightSettings

    import_on = time.perf_counter() - began
    now = time.time()
    reports = []
    for n in range(tests):
        nodeid = f"test_{shape}.py::test_{shape}[{n}]"
        failed = shape == "real" and n % 20 == 7
        output = "".join(f"step {line} of case {n}: {'x' * 60}\n" for line in range(5))
        sections = [("Captured stdout call", output)] if shape == "real" else []
        for when in ("setup", "call", "teardown"):
            outcome: Literal["passed", "failed"] = "failed" if failed and when == "call" else "passed"
            longrepr = (
                f"E   AssertionError: case {n} failed on purpose\n" * 20 if outcome == "failed" else None
            )
            reports.append(
                pytest.TestReport(
                    nodeid, (nodeid, 1, "t"), {}, outcome, longrepr, when, sections if when == "call" else [],
                    0.0001, now, now,
                )
            )  # fmt: skip
    recorder = SessionRecorder("bench")
    began = time.perf_counter()
    recorder.add_reports(reports)
    record = time.perf_counter() - began
    began = time.perf_counter()
    session = recorder.build()
    settings = InsightSettings(True, "bench", store)
    redactor = settings.redactor()
    redactor.session(session)
    published = publish(session, settings)
    finish = time.perf_counter() - began
    if not published.saved:
        raise SystemExit(published.line)
    return {"import off": import_off, "import on": import_on, "record": record, "finish": finish}


def main(argv: list[str] | None = None) -> int:
    """Print the best figure of each part for the two suite shapes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--tests", type=int, default=3000, help="tests in the fast shape; a third in real (3000)"
    )
    parser.add_argument("--rounds", type=int, default=7, help="fresh processes per shape (7)")
    parser.add_argument("--child", nargs=3, metavar=("SHAPE", "TESTS", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        shape, tests, store = args.child
        print(json.dumps(_child(shape, int(tests), store)))
        return 0
    env = {**os.environ, "PYTEST_ADDOPTS": ""}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as users run: imports from cached bytecode
    print(f"{'suite':<6} {'tests':>6} {'import off':>11} {'import on':>10} {'record':>14} {'finish':>9}")
    with tempfile.TemporaryDirectory(prefix="insight-plugin-parts-") as work:
        env["PYTEST_INSIGHT_HOME"] = work
        for shape, tests in (("fast", args.tests), ("real", max(args.tests // 3, 1))):
            store = str(Path(work) / f"{shape}-store")
            command = [sys.executable, "-m", "tests.bench.plugin_parts", "--child", shape, str(tests), store]
            subprocess.run(command, env=env, capture_output=True, check=True)  # warm the bytecode
            runs = [
                json.loads(
                    subprocess.run(command, env=env, capture_output=True, check=True, text=True).stdout
                )
                for _ in range(args.rounds)
            ]
            best = {part: min(run[part] for run in runs) for part in runs[0]}
            per_test = best["record"] / tests * 1e6
            print(
                f"{shape:<6} {tests:>6} {best['import off'] * 1e3:>9.1f}ms {best['import on'] * 1e3:>8.1f}ms "
                f"{best['record'] * 1e3:>5.1f}ms {per_test:>4.1f}µs {best['finish'] * 1e3:>7.1f}ms",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
