"""What the release before the msgspec codec wrote stays readable, keeps its ids and is never stored twice.

``tests/data/release_1`` holds a directory export (the bucket layout) and a
local store written by that release (see its ``make_fixture.py``). Its lines
differ in form from this release's (``+00:00`` against ``Z``, ``\\u00e9``
against UTF-8, ``1e-05`` against ``0.00001``), so a bundle id, the hash of a
bundle's bytes, stays the same only because a stored line is never encoded
again: a store keeps the line it read, and an export sends it as it is.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_insight.core.storage import InMemoryStorage, JSONStorage, S3Storage
from tests.s3servers import S3Target

RELEASE = Path(__file__).parent / "data" / "release_1"


def expected() -> dict[str, dict[str, Any]]:
    written: list[dict[str, Any]] = json.loads((RELEASE / "sessions.json").read_text())
    return {data["session_id"]: data for data in written}


def by_id(storage: JSONStorage | InMemoryStorage | S3Storage) -> dict[str, dict[str, Any]]:
    return {session.session_id: session.to_dict() for session in storage.load_sessions()}


def files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


def inflated(root: Path) -> dict[str, bytes]:
    return {name: gzip.decompress(data) for name, data in files(root).items()}


@pytest.fixture
def old_store(tmp_path: Path) -> JSONStorage:
    shutil.copytree(RELEASE / "store", tmp_path / "store")
    return JSONStorage(tmp_path / "store")


def test_the_fixture_is_what_that_release_wrote() -> None:
    lines = b"".join(path.read_bytes() for path in (RELEASE / "store" / "sessions").rglob("*.json"))
    assert b"+00:00" in lines
    assert b"\\u00e9" in lines  # that release escaped every non-ASCII character
    assert len(files(RELEASE / "export")) == 4


def test_a_store_of_that_release_reads_as_it_was_written(old_store: JSONStorage) -> None:
    assert by_id(old_store) == expected()


def test_its_bundles_import_as_they_were_written() -> None:
    storage = InMemoryStorage()
    result = storage.import_sessions(RELEASE / "export")
    assert (result["added"], result["errors"]) == (len(expected()), 0)
    assert by_id(storage) == expected()


def test_its_store_exports_the_very_bundles_it_exported_then(old_store: JSONStorage, tmp_path: Path) -> None:
    target = tmp_path / "export"
    shutil.copytree(RELEASE / "export", target)
    before = files(target)
    assert old_store.export_sessions(target) == len(expected())
    assert files(target) == before  # every bundle already there: nothing new, nothing twice


def test_bundles_imported_then_exported_again_keep_their_ids(tmp_path: Path) -> None:
    store = JSONStorage(tmp_path / "store")
    store.import_sessions(RELEASE / "export")
    store.export_sessions(tmp_path / "again")
    # the same names, and in them the same lines (compressed by this release's compressor)
    assert inflated(tmp_path / "again") == inflated(RELEASE / "export")


def test_a_bucket_of_that_release_reads_and_takes_no_second_copy(
    mock_s3: S3Target, old_store: JSONStorage
) -> None:
    for name, data in files(RELEASE / "export").items():
        mock_s3.client.put_object(Bucket=mock_s3.bucket, Key=f"team/{name}", Body=data)
    bucket = mock_s3.storage("team")
    assert by_id(bucket) == expected()
    old_store.export_sessions(f"s3://{mock_s3.bucket}/team")
    listed = mock_s3.client.list_objects_v2(Bucket=mock_s3.bucket, Prefix="team/")
    assert sorted(item["Key"] for item in listed["Contents"]) == sorted(
        f"team/{name}" for name in files(RELEASE / "export")
    )
    fresh = InMemoryStorage()
    assert fresh.import_sessions(f"s3://{mock_s3.bucket}/team")["errors"] == 0
    assert by_id(fresh) == expected()
