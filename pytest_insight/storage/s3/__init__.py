"""The S3 backend, on obstore: sessions in gzipped bundles under a bucket prefix.

Imported only when an ``s3://`` storage is opened; it needs the ``[s3]``
extra (obstore, and boto3 for profiles and SSO). The modules, from the
bottom up: ``errors`` and ``config`` (the user's configuration, one store),
``bucket`` (the one call wrapper), ``listing`` and ``objects``, ``pipeline``
and ``deletes``, ``index`` and ``rewrite``, ``transaction``, ``clear``,
``compact`` and ``reads``, and ``backend``, which composes them.
"""

from __future__ import annotations

from pytest_insight.errors import DependencyError
from pytest_insight.storage.s3.config import INSTALL_HINT

try:
    import obstore  # noqa: F401  (the one check: every module below imports it)
except ImportError as exc:
    raise DependencyError(INSTALL_HINT) from exc

from pytest_insight.storage.s3.backend import S3Backend, exchange_location
from pytest_insight.storage.s3.bucket import DEFAULT_CONCURRENCY, MAX_CONCURRENCY
from pytest_insight.storage.s3.config import CONNECT_TIMEOUT, DEFAULT_MAX_ATTEMPTS, READ_TIMEOUT
from pytest_insight.storage.s3.objects import StoredBundle

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_ATTEMPTS",
    "MAX_CONCURRENCY",
    "READ_TIMEOUT",
    "S3Backend",
    "StoredBundle",
    "exchange_location",
]
