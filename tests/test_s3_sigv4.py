"""SigV4 signing: AWS's published S3 examples, and agreement with botocore's signer."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from unittest import mock
from urllib.parse import parse_qs

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from pytest_insight.storage import s3_sigv4
from pytest_insight.storage.s3_sigv4 import EMPTY_SHA256, Credentials, Signer, canonical_query

# AWS's example credentials and time, from "Signature Calculations for the Authorization Header"
EXAMPLE = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None)
WHEN = datetime(2013, 5, 24, tzinfo=UTC)
HOST = "examplebucket.s3.amazonaws.com"
WELCOME_SHA256 = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"


def test_the_get_object_example() -> None:
    headers = Signer("us-east-1").sign(
        EXAMPLE,
        "GET",
        "examplebucket.s3.amazonaws.com",
        "/test.txt",
        {"Range": "bytes=0-9"},
        EMPTY_SHA256,
        WHEN,
    )
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )
    assert headers["x-amz-date"] == "20130524T000000Z"


def test_the_put_object_example() -> None:
    body = b"Welcome to Amazon S3."
    headers = Signer("us-east-1").sign(
        EXAMPLE,
        "PUT",
        HOST,
        "/test%24file.text",
        {"Date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY"},
        WELCOME_SHA256,
        WHEN,
    )
    assert headers["authorization"].endswith(
        "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    )
    assert (
        hashlib.sha256(body).hexdigest() == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
    )


GET = (
    "GET",
    "/bucket/team/v1/sut%3Dapi/date%3D2026-11-25/ab.jsonl.gz",
    {"x-amz-checksum-mode": "ENABLED"},
    b"",
)
PUT = ("PUT", "/b/%E6%97%A5%20k", {"If-None-Match": "*", "x-amz-meta-bundle-id": "ab"}, b"x" * 999)


@pytest.mark.parametrize("token", [None, "a-session-token"])
@pytest.mark.parametrize(("method", "path", "headers", "body"), [GET, PUT])
def test_agrees_with_botocore(
    method: str, path: str, headers: dict[str, str], body: bytes, token: str | None
) -> None:
    now = datetime(2026, 11, 25, 21, 30, 5, tzinfo=UTC)
    credentials = Credentials("AKID", "secret/key+", token)
    payload = hashlib.sha256(body).hexdigest()
    ours = Signer("eu-west-3").sign(credentials, method, "127.0.0.1:8333", path, headers, payload, now)
    request = AWSRequest(method=method, url=f"http://127.0.0.1:8333{path}", headers=dict(headers), data=body)
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        S3SigV4Auth(ReadOnlyCredentials(*credentials), "s3", "eu-west-3").add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]


@pytest.mark.parametrize(
    "parameters",
    [
        {"list-type": "2", "prefix": "team/v1/sut=my%20api/", "encoding-type": "url"},
        {"list-type": "2", "prefix": "", "delimiter": "/", "max-keys": "100"},
        {"list-type": "2", "prefix": "odd keys/é+~=&", "start-after": "a/~", "continuation-token": "x/Y+z=="},
    ],
)
def test_a_query_string_agrees_with_botocore(parameters: dict[str, str]) -> None:
    now = datetime(2026, 11, 25, 21, 30, 5, tzinfo=UTC)
    credentials = Credentials("AKID", "secret/key+", None)
    query = canonical_query(parameters)
    ours = Signer("eu-west-3").sign(
        credentials, "GET", "127.0.0.1:8333", "/bucket", {}, EMPTY_SHA256, now, query
    )
    request = AWSRequest(method="GET", url=f"http://127.0.0.1:8333/bucket?{query}", headers={}, data=b"")
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        S3SigV4Auth(ReadOnlyCredentials(*credentials), "s3", "eu-west-3").add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]
    assert parse_qs(query, keep_blank_values=True) == {name: [value] for name, value in parameters.items()}


def test_the_signing_key_is_derived_once_a_day() -> None:
    signer = Signer("us-east-1")
    with mock.patch.object(s3_sigv4, "_hmac", wraps=s3_sigv4._hmac) as derive:
        for _ in range(3):
            signer.sign(EXAMPLE, "GET", "h", "/k", {}, EMPTY_SHA256, WHEN)
        assert derive.call_count == 4
        signer.sign(EXAMPLE, "GET", "h", "/k", {}, EMPTY_SHA256, datetime(2013, 5, 25, tzinfo=UTC))
        assert derive.call_count == 8
