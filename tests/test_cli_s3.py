"""The ``insight`` command against a bucket: moto's S3 server over HTTP, driven by subprocesses."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_insight.core.storage import JSONStorage
from pytest_insight.model.sessions import TestSession
from tests.test_cli import Run, assert_user_error, insight, sessions, store, stored_ids

if TYPE_CHECKING:  # imported by pytest as a plugin below; importing it first would skip assert rewriting
    from tests.s3servers import S3Target

__all__ = ["insight", "sessions", "store"]  # fixtures shared with test_cli

# The moto server fixtures; a no-op once the root conftest registers the same plugin.


def test_publish_import_clear_through_a_bucket(
    insight: Run,
    store: Path,
    tmp_path: Path,
    moto_server_s3: S3Target,
    monkeypatch: pytest.MonkeyPatch,
    sessions: list[TestSession],
) -> None:
    bucket = f"s3://{moto_server_s3.bucket}/team"
    published = insight("export", bucket, "--storage", store, "--json")
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout)["exported"] == 3
    published_keys = moto_server_s3.keys("team/")
    assert published_keys
    assert all(key.startswith(("team/v1/sut=api/", "team/v1/sut=web/")) for key in published_keys)
    again = insight("export", bucket, "--storage", store)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith(f"(0 of {len(published_keys)} bundles new)")  # a log can tell

    developer = tmp_path / "developer"
    imported = insight("import", f"{bucket}/v1/sut=api", "--storage", developer, "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["added"] == 2
    assert stored_ids(developer) == {"api-1", "api-2"}

    cleared = insight("clear", "--storage", bucket, "--older-than", "30d", "--yes", "--json")
    assert cleared.returncode == 0, cleared.stderr
    assert json.loads(cleared.stdout)["cleared"] == 2  # counted from metadata, not downloaded
    assert all(key.startswith("team/v1/sut=web/") for key in moto_server_s3.keys("team/"))

    # A profile carries the endpoint, so the environment no longer needs to.
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    created = insight("profile", "create", "team", bucket, "--endpoint-url", moto_server_s3.endpoint_url)
    assert created.returncode == 0, created.stderr
    left = insight("sessions", "--profile", "team", "--json")
    assert left.returncode == 0, left.stderr
    assert [item["session_id"] for item in json.loads(left.stdout)] == ["web-1"]
    assert JSONStorage(store).get_session_by_id("web-1") == sessions[2]

    missing = insight("sessions", "--storage", f"s3://missing-{uuid.uuid4().hex[:12]}/x", "--profile", "team")
    assert_user_error(missing, 2, "--profile")
    monkeypatch.setenv("AWS_ENDPOINT_URL", str(moto_server_s3.endpoint_url))
    no_bucket = insight("sessions", "--storage", f"s3://missing-{uuid.uuid4().hex[:12]}/x")
    assert_user_error(no_bucket, 3, "s3://")
