"""The S3 id index: transactions read each target bundle once per change, and see other writers' changes."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from pathlib import Path

import anyio
import pytest

from pytest_insight.core.storage import InMemoryStorage, S3Storage
from pytest_insight.errors import SessionExistsError
from pytest_insight.exchange import operations
from pytest_insight.format.bundle import encode_bundle
from pytest_insight.format.layout import bundle_key
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.s3.index import refresh_index
from pytest_insight.storage.scope import EVERYTHING
from tests.conftest import BASE_TIME, MakeSession
from tests.s3servers import RequestLog, S3Target

BATCH = 10


def one_per_partition(make_session: MakeSession, count: int) -> list[TestSession]:
    """``count`` sessions with ids not of the plugin's form, each alone in its (SUT, day)."""
    return [
        make_session(sut_name=f"svc-{n % 5}", start=BASE_TIME + timedelta(days=n // 5)) for n in range(count)
    ]


def import_in_batches(
    target: S3Storage,
    source: Path,
    strategy: operations.MergeStrategy = operations.MergeStrategy.SKIP_EXISTING,
) -> operations.ImportStats:
    run = partial(
        operations.import_sessions,
        target.backend,
        source,
        merge_strategy=strategy,
        scope=EVERYTHING,
        batch_size=BATCH,
    )
    return anyio.run(run)


def target_reads(log: RequestLog, prefix: str) -> int:
    return sum(1 for request in log.seen["GetObject"] if request["Key"].startswith(prefix + "/"))


def test_an_import_into_a_bucket_downloads_each_target_bundle_once_per_change(
    s3: S3Target, request_log: RequestLog, make_session: MakeSession, tmp_path: Path
) -> None:
    sessions = one_per_partition(make_session, 60)
    InMemoryStorage(sessions).export_sessions(tmp_path / "source.jsonl.gz")
    target = s3.storage("team", endpoint_url=request_log.endpoint_url)
    log = request_log

    stats = import_in_batches(target, tmp_path / "source.jsonl.gz")
    assert (stats["added"], stats["errors"]) == (60, 0)
    # the index learnt each bundle from its own upload: none is read back, let alone once per batch
    first = target_reads(log, "team")
    assert first == 0

    stats = import_in_batches(target, tmp_path / "source.jsonl.gz")
    assert (stats["added"], stats["skipped"]) == (0, 60)
    # skip_existing needs to know only that an id is stored: the index knows, nothing is read
    assert target_reads(log, "team") == 0

    stats = import_in_batches(target, tmp_path / "source.jsonl.gz", operations.MergeStrategy.REPLACE_EXISTING)
    assert (stats["updated"], stats["skipped"]) == (0, 60)
    # replace_existing compares content: each stored session's own bundle, once
    assert target_reads(log, "team") == len(sessions)
    assert {s.session_id for s in target.load_sessions()} == {s.session_id for s in sessions}


def test_changes_by_another_writer_between_transactions_are_seen(
    s3: S3Target, make_session: MakeSession
) -> None:
    mine = s3.storage("team")
    theirs = s3.storage("team")  # another process: its own index
    kept, cleared = make_session(sut_name="api"), make_session(sut_name="api")  # one bundle
    mine.save_sessions([kept, cleared])

    added = make_session(sut_name="elsewhere")
    theirs.save_sessions([added])  # a bundle that appeared after my index was built
    with pytest.raises(SessionExistsError):
        mine.save_sessions([added])

    assert theirs.clear_sessions([cleared]) == 1  # its bundle rewritten in place behind my back
    assert len(s3.keys("team/v1/sut=api/")) == 1
    mine.save_sessions([cleared])  # so its id is free again
    assert theirs.get_session_by_id(cleared.session_id) == cleared

    alone = make_session(sut_name="alone")
    mine.save_sessions([alone])
    mine.save_sessions([make_session(sut_name="later")])  # my index now holds alone's bundle
    assert theirs.clear_sessions([alone]) == 1  # its bundle deleted behind my back
    assert s3.keys("team/v1/sut=alone/") == []
    mine.save_sessions([alone])

    assert theirs.clear_sessions() == 5  # every bundle deleted
    assert mine.clear_sessions() == 0
    assert s3.keys("team/") == []


def test_a_bundle_holding_an_id_twice_is_indexed_once_and_dropped_cleanly(
    mock_s3: S3Target, make_session: MakeSession
) -> None:
    twice = make_session()
    bundle = encode_bundle([twice, twice])  # made by hand: the library never writes one
    key = bundle_key(twice.sut_name, twice.session_start_time.date(), bundle.bundle_id, "team")
    mock_s3.client.put_object(Bucket=mock_s3.bucket, Key=key, Body=bundle.data)
    backend = mock_s3.backend("team")

    index = backend.bucket.index
    anyio.run(refresh_index, backend.bucket, EVERYTHING)
    assert list(index.keys_of(twice.session_id)) == [key]

    mock_s3.client.delete_object(Bucket=mock_s3.bucket, Key=key)
    anyio.run(refresh_index, backend.bucket, EVERYTHING)
    assert (list(index.keys_of(twice.session_id)), index.keys()) == ([], [])
