"""How long a pytest run takes when its bucket is down: refused, or silent.

Run with ``python -m tests.bench.plugin_publish [--rounds 3] [--timeout 5] [--baseline DIR]``.
A one-test suite is run in fresh processes: without recording, recording to
``s3://bucket/team`` at a 127.0.0.1 port nothing listens on (connections
refused), and at a socket that accepts connections and never answers. Prints
the best wall time of each and the last line the plugin printed. With
``--baseline DIR`` (a checkout of another commit), the refused case is also
run with that checkout's ``pytest_insight`` first on ``PYTHONPATH`` and
without the timeout option (the silent case is left out there: before the
publish deadline it waited for minutes).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]


def _run(suite: Path, endpoint: str, extra: list[str], pythonpath: str | None = None) -> tuple[float, str]:
    env: dict[str, str] = {
        **os.environ,
        "PYTEST_ADDOPTS": "",
        "PYTEST_INSIGHT_HOME": str(suite / "home"),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(suite / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(suite / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *extra]
    began = time.perf_counter()
    run = subprocess.run(command, cwd=suite, env=env, capture_output=True, text=True, check=False)
    spent = time.perf_counter() - began
    said = [line for line in run.stdout.splitlines() if line.startswith("pytest-insight:")]
    return spent, said[-1] if said else ""


def main(argv: list[str] | None = None) -> int:
    """Print one line per kind of endpoint."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each kind (3)")
    parser.add_argument("--timeout", default="5", help="--insight-publish-timeout (5)")
    parser.add_argument("--baseline", type=Path, help="a checkout whose plugin to time on the refused port")
    args = parser.parse_args(argv)
    before = ["--insight", "--insight-sut", "api", "--insight-storage", "s3://bucket/team"]
    record = [*before, "--insight-publish-timeout", args.timeout]
    with tempfile.TemporaryDirectory(prefix="insight-publish-bench-") as work, socket.socket() as silent:
        suite = Path(work)
        (suite / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        (suite / "test_one.py").write_text("def test_one():\n    pass\n", encoding="utf-8")
        silent.bind(("127.0.0.1", 0))
        silent.listen(128)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            refused = probe.getsockname()[1]
        kinds: dict[str, tuple[str, list[str], str | None]] = {
            "not recording": ("http://127.0.0.1:9", ["-p", "no:insight"], None),
            "refused": (f"http://127.0.0.1:{refused}", record, None),
            "silent": (f"http://127.0.0.1:{silent.getsockname()[1]}", record, None),
        }
        if args.baseline is not None:
            kinds["refused, base"] = (f"http://127.0.0.1:{refused}", before, str(args.baseline.resolve()))
        for name, (endpoint, extra, pythonpath) in kinds.items():
            runs = [_run(suite, endpoint, extra, pythonpath) for _ in range(args.rounds)]
            best = min(spent for spent, _ in runs)
            print(f"{name:<14} {best:>6.2f}s  {runs[-1][1][:150]}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
