"""The S3 cases an audit of the old hand-written transport found wrong, against a stub server.

Each test is one case a user met or would meet: the checksum opt-out
(Backblaze B2 and others refuse checksum headers), composite checksums,
the wrong region under parallel uploads, unsigned reads of a public bucket,
encryption headers from the configuration, and a hostile response body.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from pytest_insight.core.storage import S3Storage, run_sync
from pytest_insight.format.bundle import encode_session
from pytest_insight.format.decoding import Limits
from pytest_insight.storage.s3 import S3Backend
from pytest_insight.storage.s3.errors import WrongRegionError
from tests.conftest import BASE_TIME, MakeSession
from tests.s3stub import S3Stub, s3_stub


@pytest.fixture
def stub(aws_env: dict[str, str]) -> Iterator[S3Stub]:
    with s3_stub() as running:
        yield running


def checksum_headers(stub: S3Stub) -> set[str]:
    return {name for put in stub.of("PUT") for name in put.headers if "checksum" in name}


def test_uploads_carry_a_sha256_checksum_by_default(stub: S3Stub, make_session: MakeSession) -> None:
    S3Storage(stub.bucket, "team", endpoint_url=stub.endpoint_url).save_session(make_session())
    assert checksum_headers(stub) == {"x-amz-checksum-sha256"}


def test_the_checksum_opt_out_in_the_environment_is_honoured(
    stub: S3Stub, make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    S3Storage(stub.bucket, "team", endpoint_url=stub.endpoint_url).save_session(make_session())
    assert stub.of("PUT")
    assert checksum_headers(stub) == set()


def test_the_checksum_opt_out_in_the_aws_config_is_honoured(
    stub: S3Stub, make_session: MakeSession, aws_env: dict[str, str]
) -> None:
    Path(aws_env["AWS_CONFIG_FILE"]).write_text("[default]\nrequest_checksum_calculation = when_required\n")
    S3Storage(stub.bucket, "team", endpoint_url=stub.endpoint_url).save_session(make_session())
    assert stub.of("PUT")
    assert checksum_headers(stub) == set()


def test_a_composite_checksum_on_download_is_accepted(stub: S3Stub, make_session: MakeSession) -> None:
    session = make_session()
    storage = S3Storage(stub.bucket, "team", endpoint_url=stub.endpoint_url)
    storage.save_session(session)
    stub.get_headers = {"x-amz-checksum-crc32": "AAAAAA==-3", "x-amz-checksum-type": "COMPOSITE"}
    assert S3Storage(stub.bucket, "team", endpoint_url=stub.endpoint_url).load_sessions() == [session]


def test_parallel_uploads_to_a_bucket_in_another_region_all_land_after_one_lookup(
    stub: S3Stub, make_session: MakeSession
) -> None:
    stub.bucket_region = "eu-west-2"
    sessions = [make_session(sut_name=f"svc-{n}", start=BASE_TIME + timedelta(days=n)) for n in range(8)]
    backend = S3Backend(
        stub.bucket, "team", endpoint_url=stub.endpoint_url, region="us-east-1", concurrency=8
    )
    assert run_sync(backend.write, [encode_session(s) for s in sessions]) == 8
    assert len(stub.objects) == 8
    lookups = [r for r in stub.requests if r.method == "HEAD" and "/" not in r.path.strip("/")]
    assert 1 <= len(lookups) <= 2  # botocore may ask twice (its own redirect), once per store move
    regions = [put.signed_region for put in stub.of("PUT")]
    assert "us-east-1" in regions  # refused with a redirect first
    assert regions.count("eu-west-2") == 8  # then every upload signed for the bucket's region
    assert backend.bucket.settings is not None
    assert backend.bucket.settings.region == "eu-west-2"


def test_without_boto3_the_wrong_region_is_one_line_naming_the_fix(
    stub: S3Stub, make_session: MakeSession
) -> None:
    stub.bucket_region = "eu-west-2"
    backend = S3Backend(stub.bucket, "team", endpoint_url=stub.endpoint_url, region="us-east-1")
    assert backend.bucket.settings is not None
    backend.bucket.settings = backend.bucket.settings.__class__(
        **{**backend.bucket.settings.__dict__, "session": None}  # as when boto3 is not installed
    )
    with pytest.raises(WrongRegionError, match="another region") as error:
        run_sync(backend.write, [encode_session(make_session())])
    assert "\n" not in str(error.value)


def test_a_public_bucket_is_read_unsigned_with_a_host_header(
    stub: S3Stub, make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = make_session()
    S3Storage(stub.bucket, "team", endpoint_url=stub.endpoint_url).save_session(session)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    stub.requests.clear()
    public = S3Storage(stub.bucket, "team", endpoint_url=stub.endpoint_url, unsigned=True)
    assert public.load_sessions() == [session]
    assert stub.requests
    assert all("authorization" not in r.headers for r in stub.requests)
    host = stub.endpoint_url.removeprefix("http://")
    assert all(r.headers.get("host") == host for r in stub.requests)

    stub.requests.clear()
    monkeypatch.setenv("AWS_SKIP_SIGNATURE", "true")  # the same, from the environment
    assert S3Storage(stub.bucket, "team", endpoint_url=stub.endpoint_url).load_sessions() == [session]
    assert all("authorization" not in r.headers for r in stub.requests)


def test_encryption_settings_from_the_environment_reach_every_upload(
    stub: S3Stub, make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SERVER_SIDE_ENCRYPTION", "aws:kms")
    monkeypatch.setenv("AWS_SSE_KMS_KEY_ID", "alias/insight")
    S3Storage(stub.bucket, "team", endpoint_url=stub.endpoint_url).save_sessions(
        [make_session(sut_name="a"), make_session(sut_name="b")]
    )
    puts = stub.of("PUT")
    assert len(puts) == 2
    assert all(put.headers.get("x-amz-server-side-encryption") == "aws:kms" for put in puts)
    assert all(
        put.headers.get("x-amz-server-side-encryption-aws-kms-key-id") == "alias/insight" for put in puts
    )


def test_an_endless_chunked_body_is_cut_off_and_reported(
    stub: S3Stub, make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    S3Storage(stub.bucket, "team", endpoint_url=stub.endpoint_url).save_session(make_session())
    stub.hostile_body = True
    backend = S3Backend(stub.bucket, "team", endpoint_url=stub.endpoint_url, limits=Limits(max_bytes=1000))
    key = next(iter(stub.objects))
    stored = run_sync(backend.read_bundle, key)
    assert not stored.sessions
    assert stored.failure is not None or stored.errors
    assert stub.hostile_bytes_sent < 64 << 20  # read no further than a bounded buffer, not the gigabyte
