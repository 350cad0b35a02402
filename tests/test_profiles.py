"""Profiles and the order in which get_storage_instance resolves the storage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_insight.core import profiles
from pytest_insight.core.storage import InMemoryStorage, JSONStorage, get_storage_instance, open_storage
from pytest_insight.errors import ConfigurationError, UnknownProfileError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("PYTEST_INSIGHT_HOME", str(home))
    monkeypatch.delenv("PYTEST_INSIGHT_PROFILE", raising=False)
    monkeypatch.delenv("PYTEST_INSIGHT_STORAGE", raising=False)
    return home


def test_default_is_the_local_store_under_the_home(home: Path) -> None:
    storage = get_storage_instance()
    assert isinstance(storage, JSONStorage)
    assert storage.uri == (home / "store").resolve().as_uri()


def test_profiles_are_created_listed_used_and_deleted(home: Path) -> None:
    profiles.create_profile("team", "memory://team")
    profiles.create_profile("ci", "s3://bucket/ci", {"endpoint_url": "http://127.0.0.1:9"})
    assert list(profiles.list_profiles()) == ["ci", "team"]
    assert profiles.list_profiles()["ci"]["options"] == {"endpoint_url": "http://127.0.0.1:9"}
    assert profiles.active_profile() is None

    profiles.use_profile("team")
    assert profiles.active_profile() == "team"
    assert get_storage_instance().uri == "memory://team"

    profiles.delete_profile("team")
    assert profiles.active_profile() is None
    assert list(profiles.list_profiles()) == ["ci"]
    assert json.loads((home / "profiles.json").read_text())["profiles"].keys() == {"ci"}


def test_resolution_order(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profiles.create_profile("explicit", "memory://explicit")
    profiles.create_profile("from-env", "memory://from-env")
    profiles.create_profile("active", "memory://active")
    profiles.use_profile("active")
    monkeypatch.setenv("PYTEST_INSIGHT_PROFILE", "from-env")
    monkeypatch.setenv("PYTEST_INSIGHT_STORAGE", "memory://uri")

    assert get_storage_instance("explicit").uri == "memory://explicit"
    assert get_storage_instance().uri == "memory://from-env"
    monkeypatch.delenv("PYTEST_INSIGHT_PROFILE")
    assert get_storage_instance().uri == "memory://uri"
    monkeypatch.delenv("PYTEST_INSIGHT_STORAGE")
    assert get_storage_instance().uri == "memory://active"


@pytest.mark.parametrize("source", ["argument", "environment"])
def test_unknown_profile_lists_the_known_ones(
    home: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    profiles.create_profile("alpha", "memory://a")
    profiles.create_profile("beta", "memory://b")
    if source == "environment":
        monkeypatch.setenv("PYTEST_INSIGHT_PROFILE", "gamma")
    with pytest.raises(UnknownProfileError, match=r"unknown profile 'gamma' \(known profiles: alpha, beta\)"):
        get_storage_instance("gamma" if source == "argument" else None)
    assert list(profiles.list_profiles()) == ["alpha", "beta"]  # never silently created


def test_profile_names_and_options_are_checked(home: Path) -> None:
    with pytest.raises(ConfigurationError, match="invalid profile name"):
        profiles.create_profile("a b", "memory://")
    with pytest.raises(ConfigurationError, match="unknown profile options: colour"):
        profiles.create_profile("a", "memory://", {"colour": "red"})
    profiles.create_profile("a", "memory://")
    with pytest.raises(ConfigurationError, match="exists already"):
        profiles.create_profile("a", "memory://other")
    profiles.create_profile("a", "memory://other", replace=True)
    assert profiles.get_profile("a")["storage"] == "memory://other"


def test_a_corrupt_profiles_file_names_file_and_line(home: Path) -> None:
    home.mkdir()
    (home / "profiles.json").write_text('{\n  "profiles": {,\n}')
    with pytest.raises(ConfigurationError, match=r"profiles\.json:2: not valid JSON"):
        profiles.list_profiles()


def test_storage_uris_select_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_storage("memory://"), InMemoryStorage)
    local = open_storage(f"file://{tmp_path}/store")
    assert isinstance(local, JSONStorage)
    assert local.uri == (tmp_path / "store").as_uri()
    assert open_storage(tmp_path / "bare").uri == (tmp_path / "bare").as_uri()
    with pytest.raises(ConfigurationError, match="unsupported URI scheme in 'ftp://x'"):
        open_storage("ftp://x")
    with pytest.raises(ConfigurationError, match="apply only to s3://"):
        open_storage("memory://", region="eu-west-1")
