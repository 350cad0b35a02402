"""Mixed concurrent work on one store: savers with an import, agents with a cleanup job and a developer.

Re-running an import is idempotent under every strategy for the memory and
local targets in ``tests/test_exchange.py::test_reimport_is_idempotent`` and
for any sequence of sources in ``tests/test_exchange_properties.py``; here
the same is checked for an S3 target and an S3 source.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_insight.core.storage import InMemoryStorage, JSONStorage
from pytest_insight.exchange.operations import MergeStrategy
from pytest_insight.model.sessions import TestSession
from tests.conftest import BASE_TIME, build_session
from tests.s3servers import S3Target

REPO = Path(__file__).resolve().parents[1]
SAVERS = 16
SAVES = 60
IMPORTED = 1000
AGENTS = 4
EXPORTS = 25
PER_EXPORT = 3
CUTOFF = datetime(2024, 6, 1, 12, tzinfo=UTC)  # mid-day: the cleanup rewrites that day's bundles

SAVER = """
import sys
from datetime import timedelta
from pytest_insight.core.storage import JSONStorage
from tests.conftest import BASE_TIME, build_session

store, worker, saves = JSONStorage(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
for n in range(saves):
    store.save_session(build_session(f"w{worker}-{n}", start=BASE_TIME + timedelta(seconds=n), tests=2))
"""

AGENT = """
import sys
from pytest_insight.core.storage import InMemoryStorage
from tests.test_concurrency_mixed import agent_run

uri, agent, exports = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
for run in range(exports):
    InMemoryStorage(agent_run(agent, run)).export_sessions(uri)
"""

CLI = """
import sys
from pytest_insight.cli.main import main
print("ready", flush=True)
sys.stdin.readline()
sys.exit(main(sys.argv[1:]))
"""


def agent_run(agent: int, run: int) -> list[TestSession]:
    """The sessions one CI agent publishes in one run: after the cutoff, partitions shared between agents.

    Runs of day 0 land in the partitions whose bundles the cleanup rewrites.
    """
    start = CUTOFF + timedelta(days=run % 7, minutes=agent * 100 + run)
    return [
        build_session(f"a{agent}-r{run}-{n}", sut_name=f"svc-{(agent + n) % 3}", start=start, tests=2)
        for n in range(PER_EXPORT)
    ]


def old_sessions() -> list[TestSession]:
    """What the cleanup job is meant to remove: sessions before the cutoff, some on the cutoff's day."""
    months_ago = [
        build_session(
            f"old-{n}", sut_name=f"svc-{n % 3}", start=BASE_TIME - timedelta(days=70 + n % 40), tests=1
        )
        for n in range(240)
    ]
    that_morning = [
        build_session(f"morning-{n}", sut_name=f"svc-{n % 3}", start=CUTOFF - timedelta(minutes=10 + n * 11))
        for n in range(30)
    ]
    return months_ago + that_morning


def afternoon_sessions() -> list[TestSession]:
    """Seeded in the same bundles as the cutoff day's morning sessions, and meant to stay."""
    return [
        build_session(f"afternoon-{n}", sut_name=f"svc-{n % 3}", start=CUTOFF + timedelta(minutes=7 + n * 13))
        for n in range(15)
    ]


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def run_together(processes: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    """Release every process at once (each waits for a line on stdin), then wait for them all."""
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline() == "ready\n"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = []
        for process in processes:
            out, err = process.communicate(timeout=300)
            results.append((process.returncode, out, err))
        return results
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def by_id(sessions: list[TestSession]) -> dict[str, TestSession]:
    found = {session.session_id: session for session in sessions}
    assert len(found) == len(sessions), "duplicate session ids"
    return found


@pytest.mark.slow
def test_sixteen_savers_and_an_import_into_one_local_store(tmp_path: Path) -> None:
    root = tmp_path / "store"
    imported = [
        build_session(f"imp-{n}", sut_name=f"svc-{n % 4}", start=BASE_TIME + timedelta(minutes=n), tests=2)
        for n in range(IMPORTED)
    ]
    source = tmp_path / "team.jsonl.gz"
    InMemoryStorage(imported).export_sessions(source)
    savers = [spawn(SAVER, str(root), str(worker), str(SAVES)) for worker in range(SAVERS)]
    importer = spawn(CLI, "import", str(source), "--storage", str(root), "--json")
    results = run_together([*savers, importer])
    assert [code for code, _, _ in results] == [0] * (SAVERS + 1), [err for _, _, err in results if err]
    stats = json.loads(results[-1][1])
    assert (stats["added"], stats["skipped"], stats["errors"]) == (IMPORTED, 0, 0)

    stored = by_id(JSONStorage(root).load_sessions())
    saved = {f"w{worker}-{n}" for worker in range(SAVERS) for n in range(SAVES)}
    assert stored.keys() == saved | {s.session_id for s in imported}
    assert all(stored[s.session_id] == s for s in imported)
    probe = stored["w11-42"]
    assert probe == build_session("w11-42", start=probe.session_start_time, tests=2)
    assert list((root / "staging").iterdir()) == []


@pytest.mark.slow
def test_agents_export_while_a_cleanup_clears_and_a_developer_imports(
    seaweedfs_s3: S3Target, tmp_path: Path
) -> None:
    uri = f"s3://{seaweedfs_s3.bucket}/team"
    old, afternoon = old_sessions(), afternoon_sessions()
    assert InMemoryStorage(old + afternoon).export_sessions(uri) == len(old) + len(afternoon)
    old_keys = set(seaweedfs_s3.keys("team/"))
    developer_store = tmp_path / "dev"

    agents = [spawn(AGENT, uri, str(agent), str(EXPORTS)) for agent in range(AGENTS)]
    cleanup = spawn(CLI, "clear", "--storage", uri, "--before", CUTOFF.isoformat(), "--yes", "--json")
    developer = spawn(CLI, "import", uri, "--storage", str(developer_store), "--json")
    results = run_together([*agents, cleanup, developer])
    assert [code for code, _, _ in results[:-1]] == [0] * (AGENTS + 1), [err for _, _, err in results]
    cleared = json.loads(results[AGENTS][1])
    assert cleared["cleared"] == len(old)

    agents_published = {
        s.session_id: s for a in range(AGENTS) for r in range(EXPORTS) for s in agent_run(a, r)
    }
    published = {**agents_published, **by_id(afternoon)}
    # a strict read: every object's content matches the bundle id in its key, so none was overwritten
    in_bucket = by_id(seaweedfs_s3.storage("team").load_sessions())
    assert in_bucket == published, "an exported session is missing, changed or an old one survived"
    rewritten = old_keys & set(seaweedfs_s3.keys("team/"))  # in place, holding the afternoon only
    assert {key.partition("date=")[2][:10] for key in rewritten} == {CUTOFF.date().isoformat()}
    assert len(rewritten) == 3

    # the developer raced the cleanup: objects it deleted between listing and download may be errors,
    # nothing else; what was imported is intact
    stats = json.loads(results[-1][1])
    assert all(any(key in message for key in old_keys) for message in stats["error_messages"]), stats
    mine = by_id(JSONStorage(developer_store).load_sessions())
    everything = {**published, **by_id(old)}
    assert all(everything[sid] == session for sid, session in mine.items())
    assert stats["added"] == len(mine)
    # after the race, importing again completes the developer's copy of what the bucket holds
    again = JSONStorage(developer_store).import_sessions(uri)
    assert (again["errors"], again["skipped"] + again["added"]) == (0, len(published))
    assert published.items() <= by_id(JSONStorage(developer_store).load_sessions()).items()
    print(
        {
            "published_by_agents": len(agents_published),
            "kept_in_rewritten_bundles": len(afternoon),
            "cleared": cleared["cleared"],
            "developer_imported_during_race": stats["added"],
            "developer_errors_during_race": stats["errors"],
            "objects_after": len(seaweedfs_s3.keys("team/")),
            "bundles_rewritten": len(rewritten),
        }
    )


def conflicting(sessions: list[TestSession]) -> list[TestSession]:
    """Half the ids again with other content, and a new id."""
    changed = [dataclasses.replace(s, session_tags={"variant": "b"}) for s in sessions[::2]]
    return [*changed, build_session("brand-new", start=BASE_TIME, tests=1)]


@pytest.mark.parametrize("strategy", [strategy.value for strategy in MergeStrategy])
def test_reimport_into_and_from_s3_is_idempotent(
    seaweedfs_s3: S3Target, tmp_path: Path, strategy: str
) -> None:
    first = [
        build_session(f"s-{n}", sut_name=f"svc-{n % 2}", start=BASE_TIME + timedelta(days=n))
        for n in range(6)
    ]
    second = tmp_path / "second.jsonl.gz"
    InMemoryStorage(conflicting(first)).export_sessions(second)
    target = seaweedfs_s3.storage("target")
    target.save_sessions(first)

    stats = target.import_sessions(second, strategy)
    assert stats["errors"] == 0
    assert stats["imported"] >= 1  # the new id at least
    held = by_id(target.load_sessions())
    again = target.import_sessions(second, strategy)
    assert (again["imported"], again["skipped"], again["errors"]) == (0, stats["total"], 0), again
    assert by_id(target.load_sessions()) == held

    local = JSONStorage(tmp_path / "local")
    local.save_sessions(conflicting(first)[:1])
    once = local.import_sessions(f"s3://{seaweedfs_s3.bucket}/target", strategy)
    copy = by_id(local.load_sessions())
    twice = local.import_sessions(f"s3://{seaweedfs_s3.bucket}/target", strategy)
    assert (twice["imported"], twice["skipped"], twice["errors"]) == (0, once["total"], 0), twice
    assert by_id(local.load_sessions()) == copy
