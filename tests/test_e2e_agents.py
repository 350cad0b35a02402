"""End to end on SeaweedFS: CI agents publish at once, a developer imports, a cleanup job clears.

Every actor is a separate process, as in real life: three ``pytest`` runs
with the plugin writing to one bucket prefix at the same time, then the
``insight`` command for the developer's import and the scheduled cleanup.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_insight.core.storage import JSONStorage, S3Storage
from pytest_insight.model.sessions import TestOutcome
from tests.conftest import MakeSession
from tests.s3servers import S3Target

pytestmark = [pytest.mark.seaweedfs, pytest.mark.xdist_group("seaweedfs")]

SUITE = """\
import pytest

def test_adds():
    assert 1 + 1 == 2

def test_fails():
    assert "api" == "web"

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

@pytest.mark.parametrize("n", [1, 2, 3])
def test_param(n):
    assert n > 0
"""

AGENTS = ("api", "api", "web")


def agent_env(s3: S3Target, home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env.update(
        AWS_ENDPOINT_URL=str(s3.endpoint_url),
        AWS_ACCESS_KEY_ID=os.environ["AWS_ACCESS_KEY_ID"],  # the keys SeaweedFS checks signatures with
        AWS_SECRET_ACCESS_KEY=os.environ["AWS_SECRET_ACCESS_KEY"],
        AWS_DEFAULT_REGION="us-east-1",
        PYTEST_INSIGHT_HOME=str(home),
    )
    return env


def test_three_agents_a_developer_and_a_cleanup_job(
    seaweedfs_s3: S3Target, tmp_path: Path, make_session: MakeSession
) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_service.py").write_text(SUITE, encoding="utf-8")
    uri = f"s3://{seaweedfs_s3.bucket}/team"
    env = agent_env(seaweedfs_s3, tmp_path / "home")

    # three CI agents publish at the same time
    agents = [
        subprocess.Popen(
            [sys.executable, "-m", "pytest", "--insight", "--insight-storage", uri, "--insight-sut", sut,
             "-p", "no:cacheprovider", "-q", "--rootdir", str(suite), str(suite)],
            env=env, cwd=suite, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for sut in AGENTS
    ]  # fmt: skip
    outputs = [agent.communicate(timeout=120)[0] for agent in agents]
    for agent, output in zip(agents, outputs, strict=True):
        assert agent.returncode == 1, output  # test_fails fails; the run is still published
        assert "pytest-insight: saved session" in output, output
    bucket = S3Storage(seaweedfs_s3.bucket, "team", endpoint_url=seaweedfs_s3.endpoint_url)
    published = bucket.load_sessions()
    assert sorted(s.sut_name for s in published) == ["api", "api", "web"]
    assert len({s.session_id for s in published}) == 3
    assert len(seaweedfs_s3.keys("team/v1/sut=api/")) == 2  # one bundle per run
    outcomes = {r.nodeid.rsplit("::", 1)[-1]: r.outcome for r in published[0].test_results}
    assert outcomes["test_fails"] == TestOutcome.FAILED
    assert outcomes["test_skipped"] == TestOutcome.SKIPPED
    assert len(published[0].test_results) == 6

    # the cleanup job has old sessions to remove: seeded through the library
    old = datetime.now(UTC) - timedelta(days=45)
    seeded = [make_session(sut_name=sut, start=old + timedelta(hours=n)) for n, sut in enumerate(AGENTS * 2)]
    bucket.save_sessions(seeded)
    assert len(bucket.load_sessions()) == 9

    # a developer imports one SUT's prefix, as copied from the console, into an empty local store
    developer = tmp_path / "developer"
    imported = subprocess.run(
        [sys.executable, "-m", "pytest_insight", "import", f"{uri}/v1/sut=api", "--storage", str(developer),
         "--json"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    stats = json.loads(imported.stdout)
    assert (stats["added"], stats["errors"]) == (2 + 4, 0)
    assert {s.sut_name for s in JSONStorage(developer).load_sessions()} == {"api"}

    # the cleanup job clears what is older than 30 days, in the bucket
    cleared = subprocess.run(
        [sys.executable, "-m", "pytest_insight", "clear", "--storage", uri, "--older-than", "30d", "--yes",
         "--json"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert cleared.returncode == 0, cleared.stderr
    assert json.loads(cleared.stdout)["cleared"] == 6
    left = bucket.load_sessions()
    assert sorted(s.session_id for s in left) == sorted(s.session_id for s in published)
    assert len(JSONStorage(developer).load_sessions()) == 6  # the developer's copy is theirs
