"""The user's S3 configuration, resolved once into the settings of one obstore ``S3Store``.

With boto3 installed (the ``[s3]`` extra), botocore resolves what a user has
configured, as the AWS CLI would: the profile (``AWS_PROFILE``), region,
``endpoint_url`` (``~/.aws/config``, ``AWS_ENDPOINT_URL``,
``AWS_ENDPOINT_URL_S3``), the addressing style, proxies, the CA bundle
(``AWS_CA_BUNDLE``), the checksum opt-out
(``request_checksum_calculation = when_required``) and the credentials, through
``obstore.auth.boto3.Boto3CredentialProvider`` (SSO, assume-role, web identity,
with refresh). Only public botocore APIs are used: a client is created to
read ``client.meta``; it never sends a request except :func:`bucket_region`.

Without boto3, obstore's own chain reads the environment (``AWS_*``).

Retries: ``max_attempts`` and ``retry_mode`` (profile or ``AWS_*``) as
:mod:`~pytest_insight.storage.s3.retries` maps them. A directory bucket of
S3 Express One Zone (a name ending in ``--x-s3``) is opened with obstore's
``s3_express`` (sessions from ``CreateSession``); ``AWS_S3_EXPRESS`` or the
backend's ``s3_express`` option decides it for any other name.

Either way obstore reads its own environment variables too, so
``AWS_SERVER_SIDE_ENCRYPTION``, ``AWS_SSE_KMS_KEY_ID`` and
``AWS_SSE_BUCKET_KEY_ENABLED`` put encryption headers on every upload, and
``AWS_SKIP_SIGNATURE=true`` reads a public bucket unsigned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import urlsplit
from urllib.request import getproxies

from pytest_insight.errors import ConfigurationError, DependencyError
from pytest_insight.storage.s3 import retries
from pytest_insight.storage.s3.retries import DEFAULT_MAX_ATTEMPTS, RetrySettings

if TYPE_CHECKING:
    from obstore.store import ClientConfig, S3Store

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_MAX_ATTEMPTS",
    "EXPRESS_SUFFIX",
    "INSTALL_HINT",
    "READ_TIMEOUT",
    "StoreSettings",
    "TransportLimits",
    "bucket_region",
    "is_express",
    "make_store",
    "resolve_settings",
]

INSTALL_HINT = 'S3 storage needs the s3 extra: pip install "pytest-insight[s3]"'

EXPRESS_SUFFIX = "--x-s3"
"""How the name of an S3 Express One Zone directory bucket ends (``name--usw2-az1--x-s3``)."""

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a connection (``PYTEST_INSIGHT_S3_CONNECT_TIMEOUT`` overrides): an endpoint
that drops the packets fails within a minute over every attempt, not ten minutes."""

READ_TIMEOUT = 30.0
"""Seconds to wait for the next bytes of a response (``PYTEST_INSIGHT_S3_READ_TIMEOUT`` overrides)."""

_TRUTHY = ("1", "true", "yes", "on")
_FALSY = ("0", "false", "no", "off")


class TransportLimits(TypedDict, total=False):
    """Tighter limits for one store than the configured ones (the plugin's, at the end of a test run).

    Attributes:
        connect_timeout: seconds to wait for a connection.
        request_timeout: seconds one attempt of a request may take, from connecting to the last byte.
        max_attempts: attempts per request, the first included.
    """

    connect_timeout: float
    request_timeout: float
    max_attempts: int


@dataclass(frozen=True)
class StoreSettings:
    """What one ``S3Store`` is built from (see :func:`resolve_settings`).

    Attributes:
        bucket: the bucket name.
        region: the region requests are signed for.
        endpoint: an S3-compatible server's URL, or None for AWS.
        config: the rest of obstore's ``S3Config`` (addressing, checksum, signing).
        client: obstore's ``ClientConfig`` (timeouts, proxy, CA bundle, pool).
        credentials: a credential provider (boto3's chain), or None for obstore's own.
        retries: attempts per request and the retry mode.
        session: the botocore session that resolved this, when boto3 is installed.
    """

    bucket: str
    region: str
    endpoint: str | None
    config: dict[str, Any] = field(default_factory=dict)
    client: dict[str, Any] = field(default_factory=dict)
    credentials: Any = None
    retries: RetrySettings = field(default_factory=RetrySettings)
    session: Any = None

    @property
    def max_attempts(self) -> int:
        """Attempts per request, the first included."""
        return self.retries.max_attempts

    @property
    def express(self) -> bool:
        """Whether the bucket is an S3 Express One Zone directory bucket (listings are not sorted)."""
        return bool(self.config.get("s3_express"))

    def in_region(self, region: str) -> StoreSettings:
        """These settings with requests signed for ``region``."""
        return replace(self, region=region)


def _seconds(variable: str, default: float) -> float:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ConfigurationError(f"{variable}={raw!r}: expected a positive number of seconds")
    return value


def is_express(bucket: str, option: bool | None = None) -> bool:
    """Whether to open ``bucket`` as an S3 Express One Zone directory bucket.

    ``option`` when given, else ``AWS_S3_EXPRESS`` when set, else whether the
    name ends in :data:`EXPRESS_SUFFIX`.

    Raises:
        ConfigurationError: ``AWS_S3_EXPRESS`` is neither true nor false.
    """
    if option is not None:
        return option
    raw = os.environ.get("AWS_S3_EXPRESS", "").strip().lower()
    if not raw:
        return bucket.endswith(EXPRESS_SUFFIX)
    if raw not in (*_TRUTHY, *_FALSY):
        raise ConfigurationError(f"AWS_S3_EXPRESS must be true or false, got {raw!r}")
    return raw in _TRUTHY


def _is_aws(endpoint: str) -> bool:
    host = urlsplit(endpoint).hostname or ""
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


def _proxy(endpoint: str | None, proxies: dict[str, str] | None) -> dict[str, str]:
    scheme = urlsplit(endpoint).scheme if endpoint else "https"
    found = proxies or getproxies()
    options: dict[str, str] = {}
    if found.get(scheme):
        options["proxy_url"] = found[scheme]
        if found.get("no"):
            options["proxy_excludes"] = found["no"]
    return options


def _client_options(concurrency: int, endpoint: str | None, ca_bundle: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "connect_timeout": timedelta(seconds=_seconds("PYTEST_INSIGHT_S3_CONNECT_TIMEOUT", CONNECT_TIMEOUT)),
        "read_timeout": timedelta(seconds=_seconds("PYTEST_INSIGHT_S3_READ_TIMEOUT", READ_TIMEOUT)),
        "pool_max_idle_per_host": str(max(concurrency, 10)),
        "user_agent": "pytest-insight",
    }
    if endpoint and endpoint.startswith("http://"):
        options["allow_http"] = True
    if ca_bundle:
        try:
            options["root_certificate"] = Path(ca_bundle).read_bytes()  # obstore takes the PEM text
        except OSError as exc:
            raise ConfigurationError(f"CA bundle {ca_bundle}: {exc.strerror or exc}") from exc
    return options


def _checksum(setting: str | None) -> dict[str, Any]:
    """SHA-256 checksums on upload, unless the user opted out (Backblaze B2 and others refuse them)."""
    value = (setting or os.environ.get("AWS_REQUEST_CHECKSUM_CALCULATION") or "when_supported").lower()
    return {} if value == "when_required" else {"checksum_algorithm": "SHA256"}


def _unsigned(unsigned: bool) -> bool:
    return unsigned or os.environ.get("AWS_SKIP_SIGNATURE", "").strip().lower() in _TRUTHY


def resolve_settings(
    bucket: str,
    *,
    endpoint_url: str | None,
    region: str | None,
    concurrency: int,
    unsigned: bool = False,
    s3_express: bool | None = None,
    transport: TransportLimits | None = None,
) -> StoreSettings:
    """Resolve the user's configuration for ``bucket`` (boto3's chain when installed, else the environment).

    Args:
        bucket: the bucket name.
        endpoint_url: an S3-compatible server; the user's configuration when None.
        region: the region; the user's configuration when None.
        concurrency: parallel requests (sizes the connection pool).
        unsigned: send requests unsigned.
        s3_express: open an S3 Express One Zone directory bucket; decided by
            :func:`is_express` when None.
        transport: timeouts and attempts that replace the configured ones.

    Raises:
        ConfigurationError: no credentials, an unknown profile, or a bad
            timeout, attempt count, retry mode or ``AWS_S3_EXPRESS``.
        DependencyError: boto3 is missing where botocore's refreshed credentials need it
            (a missing obstore is reported when the package is imported).
    """
    skip_signature = _unsigned(unsigned)
    express = {"s3_express": True} if is_express(bucket, s3_express) else {}
    try:
        import botocore.session
    except ImportError:
        settings = _from_environment(bucket, endpoint_url, region, concurrency, skip_signature)
    else:
        settings = _from_botocore(
            botocore.session.Session(), bucket, endpoint_url, region, concurrency, skip_signature
        )
    return _limited(replace(settings, config=settings.config | express), transport or {})


def _limited(settings: StoreSettings, limits: TransportLimits) -> StoreSettings:
    """``settings`` with ``limits`` in place of the configured timeouts and attempts."""
    client = dict(settings.client)
    if "connect_timeout" in limits:
        client["connect_timeout"] = timedelta(seconds=limits["connect_timeout"])
    if "request_timeout" in limits:
        client["timeout"] = timedelta(seconds=limits["request_timeout"])
    retries = settings.retries
    if "max_attempts" in limits:
        retries = replace(retries, max_attempts=limits["max_attempts"])
    return replace(settings, client=client, retries=retries)


def _from_environment(
    bucket: str, endpoint_url: str | None, region: str | None, concurrency: int, unsigned: bool
) -> StoreSettings:
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    chosen = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    config = _checksum(None) | ({"skip_signature": True} if unsigned else {})
    client = _client_options(concurrency, endpoint, os.environ.get("AWS_CA_BUNDLE")) | _proxy(endpoint, None)
    return StoreSettings(bucket, chosen, endpoint, config, client, None, retries.from_environment())


def _from_botocore(
    session: Any,
    bucket: str,
    endpoint_url: str | None,
    region: str | None,
    concurrency: int,
    unsigned: bool,
) -> StoreSettings:
    from botocore.credentials import RefreshableCredentials
    from botocore.exceptions import BotoCoreError

    retry = retries.from_botocore(session)  # before the client, which names the setting less clearly
    try:
        meta = session.create_client("s3", endpoint_url=endpoint_url, region_name=region).meta
        credentials = None if unsigned else session.get_credentials()
    except BotoCoreError as exc:
        raise ConfigurationError(f"s3://{bucket}: {exc}") from exc
    client_config: Any = meta.config  # botocore's stubs leave out the attributes read here
    resolved = str(meta.endpoint_url)
    chosen = meta.region_name if meta.region_name not in (None, "aws-global") else "us-east-1"
    addressing = (client_config.s3 or {}).get("addressing_style", "auto")
    config: dict[str, Any] = _checksum(client_config.request_checksum_calculation)
    endpoint: str | None = None
    if not _is_aws(resolved):
        endpoint = resolved
        if addressing == "virtual":  # obstore then wants the bucket in the endpoint's host
            parts = urlsplit(resolved)
            endpoint = f"{parts.scheme}://{bucket}.{parts.netloc}"
        config["virtual_hosted_style_request"] = addressing == "virtual"
    elif (urlsplit(resolved).hostname or "").endswith(".cn") and "." not in bucket:
        endpoint = f"https://{bucket}.{urlsplit(resolved).hostname}"  # obstore builds .com hosts only
        config["virtual_hosted_style_request"] = True
    if unsigned:
        config["skip_signature"] = True
    elif credentials is None:
        raise ConfigurationError(
            f"s3://{bucket}: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "or AWS_PROFILE, or configure a profile"
        )
    ca_bundle = session.get_config_variable("ca_bundle")
    client = _client_options(concurrency, endpoint, ca_bundle) | _proxy(endpoint, client_config.proxies)
    provider = None
    if isinstance(credentials, RefreshableCredentials):  # SSO, assume-role, web identity: refreshed
        try:
            from obstore.auth.boto3 import Boto3CredentialProvider
        except ImportError as exc:  # botocore came with something else, boto3 did not
            raise DependencyError(INSTALL_HINT) from exc
        provider = Boto3CredentialProvider(session, ttl=timedelta(minutes=5))
    elif credentials is not None:  # keys that never change: handed over once, no callback per refresh
        frozen = credentials.get_frozen_credentials()
        config |= {"access_key_id": frozen.access_key, "secret_access_key": frozen.secret_key}
        if frozen.token:
            config["session_token"] = frozen.token
    return StoreSettings(bucket, chosen, endpoint, config, client, provider, retry, session)


def make_store(settings: StoreSettings) -> S3Store:
    """Build the one ``S3Store`` of a backend from its settings.

    Raises:
        ConfigurationError: obstore refused a setting.
    """
    from obstore.exceptions import BaseError
    from obstore.store import S3Store

    client: ClientConfig = settings.client  # type: ignore[assignment]  # built from ClientConfig's keys
    options: dict[str, Any] = dict(settings.config, region=settings.region)
    if settings.endpoint:
        options["endpoint"] = settings.endpoint
    try:
        return S3Store(
            settings.bucket,
            client_options=client,
            retry_config=settings.retries.retry_config(),
            credential_provider=settings.credentials,
            **options,
        )
    except (BaseError, ValueError) as exc:
        raise ConfigurationError(f"s3://{settings.bucket}: {exc}") from exc


def bucket_region(settings: StoreSettings) -> str | None:
    """Ask the server which region the bucket is in (``HeadBucket``, through botocore), or None.

    Called once, after a request was refused for the wrong region; needs boto3.
    """
    if settings.session is None:
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    client = settings.session.create_client("s3", endpoint_url=settings.endpoint, region_name=settings.region)
    try:
        response = client.head_bucket(Bucket=settings.bucket)
    except ClientError as exc:
        response = exc.response
    except BotoCoreError:
        return None
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    region = headers.get("x-amz-bucket-region")
    return str(region) if region and region != settings.region else None
