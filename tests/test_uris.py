"""The one URI parser and scheme registry: storages, export targets and import sources agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_insight.core.storage import InMemoryStorage, JSONStorage, S3Storage, open_storage
from pytest_insight.errors import ConfigurationError
from pytest_insight.exchange.file_sinks import DirectorySink
from pytest_insight.exchange.locations import open_sink, open_source
from pytest_insight.storage import uris
from pytest_insight.storage.s3 import S3Backend


@pytest.fixture(autouse=True)
def aws_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, uris.Scheme]:
    schemes = dict(uris.SCHEMES)
    monkeypatch.setattr(uris, "SCHEMES", schemes)
    return schemes


def test_every_storage_scheme_opens_a_storage_in_any_letter_case(tmp_path: Path) -> None:
    assert uris.storage_schemes() == {"file", "s3", "memory"}
    assert isinstance(open_storage(f"FILE://{tmp_path}/store"), JSONStorage)
    assert isinstance(open_storage("Memory://"), InMemoryStorage)
    assert isinstance(open_storage("S3://bucket/team", region="us-east-1"), S3Storage)


def test_s3_is_a_location_and_memory_is_not(tmp_path: Path) -> None:
    assert uris.location_schemes() == {"file", "s3"}
    assert isinstance(open_sink("S3://bucket/team"), S3Backend)
    assert isinstance(open_sink(f"file://{tmp_path}"), DirectorySink)
    with pytest.raises(ConfigurationError, match=r"unsupported URI scheme in 'memory://x'.*file://, s3://"):
        open_source("memory://x")


def test_a_registered_scheme_is_a_location_and_not_a_storage(registry: dict[str, uris.Scheme]) -> None:
    made: list[str] = []

    def factory(uri: str) -> DirectorySink:
        made.append(uri)
        return DirectorySink(Path("/nonexistent"))

    uris.register_location("Team", factory)
    assert isinstance(open_sink("team://shared/x"), DirectorySink)
    assert made == ["team://shared/x"]
    with pytest.raises(ConfigurationError, match="unsupported URI scheme"):
        open_storage("team://shared/x")


def test_a_scheme_whose_module_is_missing_names_the_uri(registry: dict[str, uris.Scheme]) -> None:
    uris.register_location("gone", "pytest_insight.no_such_module:factory")
    with pytest.raises(ConfigurationError, match=r"gone://x: gone:// locations are not available"):
        open_source("gone://x")


@pytest.mark.parametrize("text", ["s3:/bucket/team", "s3:bucket", "team:/x", "memory:"])
def test_a_uri_with_its_slashes_mangled_is_refused_with_the_one_meant(
    registry: dict[str, uris.Scheme], text: str
) -> None:
    uris.register_location("team", "pytest_insight.no_such_module:factory")
    with pytest.raises(ConfigurationError, match="looks like a mistyped URI: did you mean"):
        uris.split_uri(text, uris.storage_schemes())
