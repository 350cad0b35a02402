"""ListObjectsV2 answers read as boto3 returns them, and answers that are not one refused in one line."""

from __future__ import annotations

import pytest

from pytest_insight.storage.s3_answers import BadListing, parse_listing

NAMESPACE = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def listing(body: str, namespace: str = NAMESPACE) -> bytes:
    head = '<?xml version="1.0" encoding="UTF-8"?>'
    return f"{head}<ListBucketResult{namespace}>{body}</ListBucketResult>".encode()


@pytest.mark.parametrize("namespace", [NAMESPACE, ""])
def test_a_url_encoded_page_is_decoded(namespace: str) -> None:
    body = listing(
        "<Name>b</Name><Prefix>a%2F</Prefix><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>t/+1=</NextContinuationToken>"
        '<Contents><Key>a/sut%3Dmy%2520api/k+1.gz</Key><ETag>"e1"</ETag><Size>12</Size>'
        "<LastModified>2026-11-25T00:00:00.000Z</LastModified></Contents>"
        '<Contents><Key>a/%E6%97%A5</Key><ETag>"e2"</ETag><Size>0</Size></Contents>'
        "<CommonPrefixes><Prefix>a/sut%3Dx/</Prefix></CommonPrefixes>",
        namespace,
    )
    assert parse_listing(body) == {
        "IsTruncated": True,
        "NextContinuationToken": "t/+1=",
        "Contents": [
            {"Key": "a/sut=my%20api/k 1.gz", "ETag": '"e1"', "Size": 12},
            {"Key": "a/日", "ETag": '"e2"', "Size": 0},
        ],
        "CommonPrefixes": [{"Prefix": "a/sut=x/"}],
    }


def test_keys_are_left_as_they_are_when_the_server_did_not_encode_them() -> None:
    body = listing("<IsTruncated>false</IsTruncated><Contents><Key>a/100%+x</Key><Size>1</Size></Contents>")
    assert parse_listing(body) == {
        "IsTruncated": False,
        "Contents": [{"Key": "a/100%+x", "ETag": "", "Size": 1}],
    }


def test_an_empty_page() -> None:
    assert parse_listing(listing("<KeyCount>0</KeyCount><IsTruncated>false</IsTruncated>")) == {
        "IsTruncated": False
    }


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>a captive portal</html>", "<html> where <ListBucketResult> was expected"),
        (b"", "cannot be read"),
        (listing("<Contents><Key>k"), "cannot be read"),
        (listing("<Contents><Key>k</Key><Size>big</Size></Contents>"), "the size of 'k' is 'big'"),
    ],
)
def test_an_answer_that_is_no_listing_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(BadListing, match=reason) as caught:
        parse_listing(body)
    assert "\n" not in str(caught.value)
