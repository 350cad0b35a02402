"""GetObject, PutObject, ListObjectsV2 sent by ``s3_direct``: the same objects, keys and errors as boto3's."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import anyio
import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ClientError, ConnectionClosedError, NoCredentialsError, SSLError

from pytest_insight.errors import ConfigurationError, NotFoundError
from pytest_insight.storage.s3 import S3Backend
from pytest_insight.storage.s3_direct import HTTP_VARIABLE, DirectObjects, crc32_header
from tests.s3servers import S3Target
from tests.tls import TLSFiles, make_tls_files, terminate_tls

KEYS = [
    "team/v1/sut=my%20service/date=2026-11-25/abc.jsonl.gz",  # the layout's percent-encoded SUT
    "odd keys/with space+plus~tilde=equals/é ünïcode/日本.gz",
]


@pytest.fixture(
    params=[
        ("mock_s3", None),
        ("moto_server_s3", None),
        ("moto_server_s3", "botocore"),
        ("seaweedfs_s3", None),
        ("seaweedfs_s3", "botocore"),
    ],
    ids=[
        "mock_s3",
        "moto_server_s3",
        "moto_server_s3-botocore-http",
        "seaweedfs_s3",
        "seaweedfs_s3-botocore-http",
    ],
)
def target(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> S3Target:
    """A bucket, reached over our own HTTP connections or (``-botocore-http``) botocore's session."""
    server, transport = request.param
    if transport is not None:
        monkeypatch.setenv(HTTP_VARIABLE, transport)
    found: S3Target = request.getfixturevalue(server)
    return found


@pytest.mark.parametrize("key", KEYS)
def test_put_then_get_round_trips_any_key_as_boto3_sees_it(target: S3Target, key: str) -> None:
    direct = DirectObjects(target.client, target.bucket)
    data = b"bundle bytes " * 1000
    assert direct.put(key, data, content_type="application/gzip", metadata={"Bundle-Id": "abc"})
    assert target.keys() == [key]
    assert target.client.get_object(Bucket=target.bucket, Key=key)["Body"].read() == data
    fetched = direct.get(key, max_bytes=1 << 20)
    head = target.client.head_object(Bucket=target.bucket, Key=key)
    assert fetched.body == data
    assert fetched.length == len(data)
    assert fetched.etag == head["ETag"]
    assert fetched.metadata == {"bundle-id": "abc"}


def test_conditions_hold_an_object_against_overwrites(target: S3Target) -> None:
    direct = DirectObjects(target.client, target.bucket)
    assert direct.put("k", b"first", content_type="text/plain", metadata={})
    assert not direct.put("k", b"second", content_type="text/plain", metadata={})
    etag = direct.get("k", 100).etag
    assert not direct.put("k", b"third", content_type="text/plain", metadata={}, if_match='"0000"')
    assert direct.put("k", b"fourth", content_type="text/plain", metadata={}, if_match=etag)
    assert direct.get("k", 100).body == b"fourth"


def test_the_upload_carries_its_crc32(target: S3Target) -> None:
    DirectObjects(target.client, target.bucket).put("k", b"payload", content_type="text/plain", metadata={})
    head = target.client.head_object(Bucket=target.bucket, Key="k", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32_header(b"payload")


def test_a_body_over_the_limit_is_not_read(target: S3Target) -> None:
    direct = DirectObjects(target.client, target.bucket)
    direct.put("big", b"x" * 5000, content_type="text/plain", metadata={})
    fetched = direct.get("big", max_bytes=4999)
    assert fetched.body is None
    assert fetched.length == 5000
    assert direct.get("big", max_bytes=5000).body == b"x" * 5000  # the connection is still usable


LISTED = [
    *KEYS,
    "team/v1/sut=api/date=2026-11-24/a.jsonl.gz",
    "team/v1/sut=api/date=2026-11-25/b.jsonl.gz",
    "team/v1/sut=web/date=2026-11-25/c.jsonl.gz",
    "team/v1/sut=web/",  # a console's "folder"
]


def boto3_listing(target: S3Target, **parameters: Any) -> list[dict[str, Any]]:
    """Every page boto3 lists, reduced to what ``list_page`` returns."""
    pages = []
    for page in target.client.get_paginator("list_objects_v2").paginate(Bucket=target.bucket, **parameters):
        reduced: dict[str, Any] = {"IsTruncated": page["IsTruncated"]}
        if "Contents" in page:
            reduced["Contents"] = [{k: item[k] for k in ("Key", "ETag", "Size")} for item in page["Contents"]]
        if "CommonPrefixes" in page:
            reduced["CommonPrefixes"] = page["CommonPrefixes"]
        pages.append(reduced)
    return pages


@pytest.mark.parametrize(
    "parameters",
    [
        {"Prefix": ""},
        {"Prefix": "team/v1/"},
        {"Prefix": "team/v1/", "Delimiter": "/"},
        {"Prefix": "team/v1/", "StartAfter": "team/v1/sut=api/date=2026-11-24/~"},
        {"Prefix": "odd keys/with space+plus~tilde=equals/"},
        {"Prefix": "", "PaginationConfig": {"PageSize": 2}},
    ],
    ids=["all", "prefix", "delimiter", "start-after", "odd-prefix", "pages-of-two"],
)
def test_listing_pages_are_what_boto3_lists(target: S3Target, parameters: dict[str, Any]) -> None:
    direct = DirectObjects(target.client, target.bucket)
    for key in LISTED:
        direct.put(key, key.encode(), content_type="text/plain", metadata={})
    expected = boto3_listing(target, **parameters)
    page_size = parameters.pop("PaginationConfig", {}).get("PageSize", 0)
    ours, token = [], ""
    while True:
        page = direct.list_page(
            parameters["Prefix"],
            token=token,
            max_keys=page_size,
            start_after=parameters.get("StartAfter", ""),
            delimiter=parameters.get("Delimiter", ""),
        )
        token = page.pop("NextContinuationToken", "")
        ours.append(page)
        if not page["IsTruncated"]:
            break
    assert ours == expected
    assert any(page.get("Contents") or page.get("CommonPrefixes") for page in ours)  # not empty by mistake


def test_listing_a_missing_bucket_is_the_client_error_boto3_raises(target: S3Target) -> None:
    ours = _error(lambda: DirectObjects(target.client, "no-such-bucket-here").list_page(""))
    assert ours[0] in ("NoSuchBucket", "AccessDenied")
    assert ours == _error(lambda: target.client.list_objects_v2(Bucket="no-such-bucket-here"))


def _error(call: Callable[[], object]) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_a_missing_key_is_the_client_error_boto3_raises(target: S3Target) -> None:
    direct = DirectObjects(target.client, target.bucket)
    ours = _error(lambda: direct.get("nothing/here", 100))
    assert ours == ("NoSuchKey", 404)
    assert ours == _error(lambda: target.client.get_object(Bucket=target.bucket, Key="nothing/here"))


def test_a_missing_bucket_is_the_client_error_boto3_raises(target: S3Target) -> None:
    direct = DirectObjects(target.client, "no-such-bucket-here")
    ours = _error(lambda: direct.put("k", b"x", content_type="text/plain", metadata={}))
    assert ours[0] in ("NoSuchBucket", "AccessDenied")  # SeaweedFS denies what it does not have
    theirs = _error(lambda: target.client.put_object(Bucket="no-such-bucket-here", Key="k", Body=b"x"))
    assert ours == theirs


def test_a_missing_object_reads_as_not_found_naming_it(target: S3Target) -> None:
    backend = S3Backend(target.bucket, "team", client=target.client)
    key = "team/v1/sut=a/date=2026-01-01/gone.jsonl.gz"
    stored = anyio.run(backend.read_bundle, key)
    assert isinstance(stored.failure, NotFoundError)
    assert f"s3://{target.bucket}/{key}" in str(stored.failure)


def test_no_credentials_is_a_configuration_error(
    moto_server_s3: S3Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    client = boto3.session.Session().client("s3", endpoint_url=moto_server_s3.endpoint_url)  # not cached
    with pytest.raises(NoCredentialsError):
        DirectObjects(client, moto_server_s3.bucket).get("k", 100)
    with pytest.raises(ConfigurationError, match="no AWS credentials"):
        anyio.run(S3Backend(moto_server_s3.bucket, client=client).read_bundle, "k")


def test_the_attempts_come_from_the_client(moto_server_s3: S3Target) -> None:
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=moto_server_s3.endpoint_url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 7}),
    )
    assert DirectObjects(client, "b")._attempts == 7
    assert DirectObjects(boto3.client("s3", endpoint_url=moto_server_s3.endpoint_url), "b")._attempts == 3
    assert S3Backend("b", endpoint_url=moto_server_s3.endpoint_url).direct._attempts == 10


def test_an_unsigned_client_sends_no_signature(moto_server_s3: S3Target) -> None:
    from botocore import UNSIGNED
    from botocore.config import Config

    client = boto3.client(
        "s3", endpoint_url=moto_server_s3.endpoint_url, config=Config(signature_version=UNSIGNED)
    )
    sent: list[Any] = []
    client.meta.events.register("before-send.s3.GetObject", lambda request, **_: sent.append(request.headers))
    moto_server_s3.client.put_object(
        Bucket=moto_server_s3.bucket, Key="public", Body=b"open", ACL="public-read"
    )
    assert DirectObjects(client, moto_server_s3.bucket).get("public", 100).body == b"open"
    assert "authorization" not in {name.lower() for name in sent[0]}


def _count_session_sends(client: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The methods of the requests that go out through the client's botocore HTTP session."""
    session = client._endpoint.http_session
    through: list[str] = []
    real = session.send

    def send(request: Any) -> Any:
        through.append(request.method)
        return real(request)

    monkeypatch.setattr(session, "send", send)
    return through


@pytest.mark.parametrize("variable", [None, "botocore"])
def test_a_plain_http_endpoint_gets_our_connections_unless_told_otherwise(
    moto_server_s3: S3Target, monkeypatch: pytest.MonkeyPatch, variable: str | None
) -> None:
    if variable is not None:
        monkeypatch.setenv(HTTP_VARIABLE, variable)
    client = boto3.client("s3", endpoint_url=moto_server_s3.endpoint_url)
    through = _count_session_sends(client, monkeypatch)
    direct = DirectObjects(client, moto_server_s3.bucket)
    assert direct.put("k", b"data", content_type="text/plain", metadata={})
    assert direct.get("k", 100).body == b"data"
    assert through == ([] if variable is None else ["PUT", "GET"])


@pytest.fixture
def seaweedfs_over_tls(seaweedfs_s3: S3Target, tmp_path: Path) -> Iterator[tuple[str, TLSFiles]]:
    """SeaweedFS behind a TLS terminator on 127.0.0.1: its ``https://localhost:<port>`` URL, certificates."""
    files = make_tls_files(tmp_path)
    url = urlsplit(str(seaweedfs_s3.endpoint_url))
    port, stop = terminate_tls(files, (url.hostname or "127.0.0.1", url.port or 80))
    yield f"https://localhost:{port}", files
    stop.set()


@pytest.mark.seaweedfs
@pytest.mark.xdist_group("seaweedfs")
@pytest.mark.parametrize("verify", ["ca-file", "off"])
def test_an_https_endpoint_gets_our_connections_with_the_clients_tls_settings(
    seaweedfs_s3: S3Target,
    seaweedfs_over_tls: tuple[str, TLSFiles],
    monkeypatch: pytest.MonkeyPatch,
    verify: str,
) -> None:
    endpoint, files = seaweedfs_over_tls
    client: Any = boto3.client(
        "s3", endpoint_url=endpoint, verify=str(files.ca) if verify == "ca-file" else False
    )
    through = _count_session_sends(client, monkeypatch)
    direct = DirectObjects(client, seaweedfs_s3.bucket)
    assert direct.put("tls/k", b"over tls", content_type="text/plain", metadata={"a": "1"})
    fetched = direct.get("tls/k", 100)
    assert (fetched.body, fetched.metadata) == (b"over tls", {"a": "1"})
    assert seaweedfs_s3.keys("tls/") == ["tls/k"]
    assert through == []


@pytest.mark.seaweedfs
@pytest.mark.xdist_group("seaweedfs")
def test_an_https_endpoint_with_a_certificate_not_trusted_is_refused(
    seaweedfs_s3: S3Target, seaweedfs_over_tls: tuple[str, TLSFiles]
) -> None:
    from botocore.config import Config

    endpoint, _ = seaweedfs_over_tls
    client = boto3.client("s3", endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(SSLError, match="certificate verify failed"):
        DirectObjects(client, seaweedfs_s3.bucket).put("k", b"x", content_type="text/plain", metadata={})
    assert seaweedfs_s3.keys() == []


def test_a_proxied_endpoint_keeps_botocores_session(
    moto_server_s3: S3Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.config import Config

    proxy = Config(proxies={"http": "http://proxy.invalid:3128"})
    client: Any = boto3.client("s3", endpoint_url=moto_server_s3.endpoint_url, config=proxy)
    session = client._endpoint.http_session
    sent: list[str] = []

    def send(request: Any) -> AWSResponse:  # stands in for the proxy, which does not exist
        sent.append(request.url)
        return AWSResponse(request.url, 200, HTTPHeaders(), _Raw(b"via proxy"))

    monkeypatch.setattr(session, "send", send)
    assert DirectObjects(client, moto_server_s3.bucket).get("k", 100).body == b"via proxy"
    assert sent == [f"{moto_server_s3.endpoint_url}/{moto_server_s3.bucket}/k"]


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def test_a_bucket_in_another_region_is_followed_there(mock_s3: S3Target) -> None:
    direct = DirectObjects(mock_s3.client, mock_s3.bucket)
    assert direct.put("k", b"data", content_type="text/plain", metadata={})
    seen: list[tuple[str, str]] = []

    def aws_redirects(request: Any, **_: Any) -> AWSResponse | None:  # as S3 answers a wrong region
        seen.append((urlsplit(request.url).netloc, request.headers["authorization"]))
        if ".eu-west-1." in request.url:
            return None
        body = _Raw(b"<Error><Code>PermanentRedirect</Code><Message>elsewhere</Message></Error>")
        headers = HTTPHeaders()
        headers["x-amz-bucket-region"] = "eu-west-1"
        return AWSResponse(request.url, 301, headers, body)

    mock_s3.client.meta.events.register_first("before-send.s3.GetObject", aws_redirects)
    assert direct.get("k", 100).body == b"data"
    assert direct.get("k", 100).body == b"data"
    hosts = [host for host, _ in seen]
    assert (
        hosts == [f"{mock_s3.bucket}.s3.amazonaws.com"] + [f"{mock_s3.bucket}.s3.eu-west-1.amazonaws.com"] * 2
    )
    assert all("/eu-west-1/s3/aws4_request" in authorization for _, authorization in seen[1:])


@pytest.mark.parametrize("mode", ["legacy", "standard", "adaptive"])
def test_retries_follow_botocores_handlers_for_the_clients_mode(
    mode: Literal["legacy", "standard", "adaptive"], aws_env: dict[str, str]
) -> None:
    from botocore.config import Config

    from pytest_insight.storage.s3_retries import DirectRetries

    config = Config(retries={"mode": mode, "total_max_attempts": 3})
    client = boto3.client("s3", endpoint_url="http://127.0.0.1:1", config=config)
    retries = DirectRetries(client)
    model = client.meta.service_model.operation_model("GetObject")

    def answer(status: int, code: str) -> tuple[AWSResponse, dict[str, Any]]:
        parsed = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return AWSResponse("http://127.0.0.1:1/b/k", status, HTTPHeaders(), None), parsed

    context: dict[str, Any] = {}
    wait = retries.delay(model, 1, context, response=answer(500, "InternalError"))
    assert wait is not None  # a transient error: tried again
    assert 0 <= wait <= 1  # after a short backoff
    assert retries.delay(model, 3, context, response=answer(500, "InternalError")) is None  # attempts spent
    assert retries.delay(model, 1, {}, response=answer(404, "NoSuchKey")) is None  # not worth another try
    broken = ConnectionClosedError(endpoint_url="http://127.0.0.1:1")
    assert retries.delay(model, 1, {}, caught=broken) is not None  # a connection lost: tried again
