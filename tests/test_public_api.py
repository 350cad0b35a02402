"""The public names: what the spec and README promise can be imported, and nothing heavy loads early."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

import pytest_insight.errors as errors

PUBLIC_MODULES = [
    "pytest_insight",
    "pytest_insight.errors",
    "pytest_insight.model.sessions",
    "pytest_insight.core.storage",
    "pytest_insight.core.facade",
    "pytest_insight.core.profiles",
    "pytest_insight.exchange.operations",
    "pytest_insight.exchange.merging",
    "pytest_insight.progress",
    "pytest_insight.format.bundle",
    "pytest_insight.format.decoding",
    "pytest_insight.query.builder",
    "pytest_insight.query",
    "pytest_insight.core.query",
    "pytest_insight.model",
    "pytest_insight.core.models",
    "pytest_insight.storage.local",
    "pytest_insight.query.summary",
    "pytest_insight.storage.base",
    "pytest_insight.storage.s3",
    *(
        f"pytest_insight.storage.s3.{name}"
        for name in (
            "backend",
            "bucket",
            "clear",
            "compact",
            "config",
            "deletes",
            "errors",
            "ids",
            "index",
            "listing",
            "objects",
            "pipeline",
            "reads",
            "rewrite",
            "transaction",
        )
    ),
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_name_in_all_exists(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported)), "duplicate names in __all__"
    missing = [attr for attr in exported if not hasattr(module, attr)]
    assert not missing


def test_the_spec_import_paths() -> None:
    from pytest_insight.core.query import Query
    from pytest_insight.core.storage import (
        InMemoryStorage,
        JSONStorage,
        S3Storage,
        get_storage_instance,
    )

    for method in ("export_sessions", "import_sessions", "clear_sessions", "save_session", "load_sessions"):
        assert callable(getattr(JSONStorage, method))
        assert callable(getattr(S3Storage, method))
        assert callable(getattr(InMemoryStorage, method))
    assert callable(get_storage_instance)
    assert callable(Query)


def test_the_import_paths_of_earlier_releases_name_the_same_objects() -> None:
    import pytest_insight.core.models as old_models
    import pytest_insight.core.query as old_query
    import pytest_insight.model.sessions as models
    import pytest_insight.query.builder as builder

    assert old_query.Query is builder.Query
    assert old_query.QueryResult is builder.QueryResult
    assert set(old_models.__all__) == set(models.__all__)
    assert all(getattr(old_models, name) is getattr(models, name) for name in models.__all__)


def test_every_error_derives_from_the_root() -> None:
    classes = [getattr(errors, name) for name in errors.__all__ if isinstance(getattr(errors, name), type)]
    assert len(classes) == len(errors.__all__) - 2  # and the message helpers did_you_mean, file_error
    for error in classes:
        assert issubclass(error, errors.InsightError)


def test_importing_the_storage_facade_does_not_import_boto3() -> None:
    code = (
        "import sys, pytest_insight.core.storage, pytest_insight.query.builder\n"
        "print(sorted({'boto3', 'botocore'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_an_s3_storage_with_static_keys_is_made_without_importing_boto3() -> None:
    code = (
        "import sys\n"
        "from pytest_insight.core.storage import S3Storage\n"
        "S3Storage('bucket', endpoint_url='http://127.0.0.1:9', region='us-east-1')\n"
        "print('boto3' in sys.modules, 's3transfer' in sys.modules)"
    )
    env = dict(os.environ, AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert result.stdout.strip() == "False False"  # botocore resolves them; boto3 only for refreshed ones


def test_the_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    import pytest_insight

    assert pytest_insight.__version__ == version("pytest-insight")
