"""What a boto3 client knows that the direct calls need: where a bucket's keys are, and its TLS settings."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.httpsession import get_cert_path

__all__ = ["bucket_url", "tls_context"]


class _NoBody:
    def read(self, *_: Any) -> bytes:
        return b""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield from ()


def bucket_url(client: Any, bucket: str) -> tuple[str, str, str]:
    """Scheme and host, ``Host`` header and path prefix of ``bucket``'s keys, as ``client`` addresses them.

    Read off a HeadObject of a probe key that the client prepares and signs
    as any call (endpoint rules, addressing style, region) and that is
    answered at ``before-send``, so nothing goes out. Presigned URLs would
    not do: botocore presigns on the global endpoint in every region.

    Raises:
        botocore.exceptions.NoCredentialsError: the client has no credentials.
    """
    probe = f"pytest-insight-probe-{uuid.uuid4().hex}"
    seen: list[str] = []

    def answer(request: Any, **_: Any) -> AWSResponse | None:
        if not urlsplit(request.url).path.endswith(probe):
            return None  # another thread's request: it goes out as usual
        seen.append(request.url)
        return AWSResponse(request.url, 200, HTTPHeaders(), _NoBody())

    event = "before-send.s3.HeadObject"
    client.meta.events.register_first(event, answer)
    try:
        client.head_object(Bucket=bucket, Key=probe)
    finally:
        client.meta.events.unregister(event, answer)
    url = urlsplit(seen[0])
    return f"{url.scheme}://{url.netloc}", url.netloc, url.path.removesuffix(probe)


def tls_context(verify: bool | str) -> ssl.SSLContext:
    """TLS settings as botocore's session applies them: its CA bundle (``AWS_CA_BUNDLE``, ``ca_bundle``,
    else its default), or no verification at all for ``verify=False``."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    path = verify if isinstance(verify, str) else str(get_cert_path(True))
    if Path(path).is_dir():
        return ssl.create_default_context(capath=path)
    return ssl.create_default_context(cafile=path)
