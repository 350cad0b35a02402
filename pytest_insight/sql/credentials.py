"""S3 settings for DuckDB, resolved once from the boto3 chain and handed over as a secret.

The same chain as every other command (``AWS_PROFILE``, the ``AWS_*``
variables, ``~/.aws/config`` and ``credentials``, SSO, instance roles),
resolved by botocore; the profile's ``endpoint_url`` and ``region`` win over
it. DuckDB gets the result as one ``CREATE SECRET`` scoped to the bucket, so
its own credential lookup never runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pytest_insight.errors import ConfigurationError, DependencyError

__all__ = ["S3Settings", "resolve_s3_settings", "secret_statement"]

_AWS_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn")


@dataclass(frozen=True)
class S3Settings:
    """What DuckDB needs to reach a bucket.

    Attributes:
        region: the bucket's region.
        endpoint: ``host[:port]`` of the endpoint botocore chose (AWS's regional one, or the configured one).
        use_ssl: whether the endpoint speaks https.
        url_style: ``path`` or ``vhost``.
        key_id, secret, session_token: the credentials, or None (unsigned requests).
    """

    region: str
    endpoint: str
    use_ssl: bool
    url_style: str
    key_id: str | None = None
    secret: str | None = None
    session_token: str | None = None


def resolve_s3_settings(endpoint_url: str | None = None, region: str | None = None) -> S3Settings:
    """Resolve region, endpoint, URL style and credentials through botocore.

    The URL style is the configured ``s3.addressing_style`` when it says
    ``path`` or ``virtual``; otherwise virtual-hosted on AWS and path-style
    on any other endpoint (SeaweedFS, MinIO and Ceph want path-style).

    Raises:
        DependencyError: botocore is not installed.
        ConfigurationError: the endpoint URL is not http(s)://host[:port], or
            botocore refuses the configuration (an unknown AWS_PROFILE, a bad config file).
    """
    try:
        import botocore.session
    except ImportError as exc:  # pragma: no cover - botocore comes with the package
        raise DependencyError(
            'insight sql over s3:// needs botocore: pip install "pytest-insight[s3]"'
        ) from exc
    from botocore.exceptions import BotoCoreError

    session = botocore.session.get_session()
    try:
        client: Any = session.create_client("s3", region_name=region, endpoint_url=endpoint_url)
        credentials = session.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
    except (BotoCoreError, ValueError) as exc:  # an unknown profile, a bad config file or endpoint
        raise ConfigurationError(f"S3 settings for insight sql: {exc}") from exc
    meta = client.meta
    url = urlsplit(meta.endpoint_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigurationError(f"{meta.endpoint_url}: an S3 endpoint is http(s)://host[:port]")
    on_aws = url.hostname.endswith(_AWS_SUFFIXES)
    configured = (meta.config.s3 or {}).get("addressing_style")
    if configured in ("path", "virtual"):
        style = "path" if configured == "path" else "vhost"
    else:
        style = "vhost" if on_aws else "path"
    return S3Settings(
        region=meta.region_name or "us-east-1",
        endpoint=url.netloc,
        use_ssl=url.scheme == "https",
        url_style=style,
        key_id=frozen.access_key if frozen else None,
        secret=frozen.secret_key if frozen else None,
        session_token=frozen.token if frozen else None,
    )


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def secret_statement(settings: S3Settings, scope: str) -> str:
    """The ``CREATE SECRET`` statement that gives DuckDB ``settings`` for URLs under ``scope``."""
    options = {
        "TYPE": "s3",
        "REGION": _literal(settings.region),
        "URL_STYLE": _literal(settings.url_style),
        "USE_SSL": "true" if settings.use_ssl else "false",
        "SCOPE": _literal(scope),
    }
    options["ENDPOINT"] = _literal(settings.endpoint)
    if settings.key_id is not None and settings.secret is not None:
        options["KEY_ID"] = _literal(settings.key_id)
        options["SECRET"] = _literal(settings.secret)
    if settings.session_token:
        options["SESSION_TOKEN"] = _literal(settings.session_token)
    body = ", ".join(f"{name} {value}" for name, value in options.items())
    return f"CREATE OR REPLACE SECRET insight_s3 ({body})"
