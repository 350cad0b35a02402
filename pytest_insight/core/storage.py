"""The storages and how to get one: the documented import path.

``get_storage_instance()`` returns the configured storage;
``open_storage(uri)`` opens one by URI (``~/path`` or ``file://...`` for a
local store, ``s3://bucket/prefix``, ``memory://``). :class:`JSONStorage`,
:class:`InMemoryStorage` and :class:`S3Storage` share the API of
:class:`~pytest_insight.core.facade.Storage`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_insight.core.facade import PathLike, Storage, run_sync
from pytest_insight.core.profiles import resolve_storage_uri
from pytest_insight.errors import ConfigurationError
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.memory import MemoryBackend
from pytest_insight.storage.uris import local_store_path, split_uri, storage_schemes

if TYPE_CHECKING:
    from pytest_insight.storage.s3.compact import CompactStats

__all__ = [
    "InMemoryStorage",
    "JSONStorage",
    "S3Storage",
    "Storage",
    "get_storage_instance",
    "open_storage",
    "run_sync",
]


class JSONStorage(Storage):
    """A local store of JSON files in a directory (the default storage)."""

    def __init__(self, path: PathLike | None = None) -> None:
        """Open (and on first write create) the store at ``path``.

        Args:
            path: the store's directory; the default store under
                ``$PYTEST_INSIGHT_HOME`` (``~/.pytest_insight``) when None.
        """
        from pytest_insight.core.profiles import default_store_path
        from pytest_insight.storage.local.store import LocalBackend

        root = Path(path).expanduser() if path is not None else default_store_path()
        super().__init__(LocalBackend(root))


class InMemoryStorage(Storage):
    """A store in process memory, for tests and experiments."""

    def __init__(self, sessions: Iterable[TestSession] = (), *, name: str = "") -> None:
        super().__init__(MemoryBackend(sessions, name=name))


class S3Storage(Storage):
    """Sessions in an S3 bucket prefix (AWS S3 or any S3-compatible server)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        concurrency: int | None = None,
        unsigned: bool = False,
        store: Any = None,
    ) -> None:
        """Open the bucket prefix; obstore (and boto3, when installed) is imported only now.

        Args:
            bucket: the bucket name.
            prefix: the key prefix the store's layout lives under.
            endpoint_url: an S3-compatible server; boto3's chain
                (``AWS_ENDPOINT_URL``) when None.
            region: the bucket's region; boto3's chain when None.
            concurrency: parallel transfers (see README for default and maximum).
            unsigned: read a public bucket without credentials (unsigned requests).
            store: a ready obstore store to use instead of making one
                (``obstore.store.MemoryStore`` for tests).

        Raises:
            DependencyError: the ``[s3]`` extra is not installed.
            ConfigurationError: no credentials, or a bad option.
        """
        from pytest_insight.storage.s3 import S3Backend

        super().__init__(
            S3Backend(
                bucket,
                prefix,
                endpoint_url=endpoint_url,
                region=region,
                concurrency=concurrency,
                unsigned=unsigned,
                store=store,
            )
        )

    async def compact_async(self, sut_name: str | None = None, days: int | None = None) -> CompactStats:
        """Async twin of :meth:`compact`."""
        from pytest_insight.storage.s3 import S3Backend

        backend = self.backend
        if not isinstance(backend, S3Backend):  # pragma: no cover - set in __init__
            raise ConfigurationError(f"{self.uri}: compaction needs an s3:// storage")
        from pytest_insight.exchange.operations import scope_for

        return await backend.compact(scope_for(sut_name=sut_name, days=days))

    def compact(self, sut_name: str | None = None, days: int | None = None) -> CompactStats:
        """Merge the many small bundles of each SUT and day into one deduplicated bundle.

        Imports then make one request per SUT and day instead of one per CI
        run. Safe while CI agents keep publishing: only the bundles merged
        are deleted.

        Args:
            sut_name: only this SUT's partitions.
            days: only the partitions of the last ``days`` days.

        Returns:
            ``partitions``, ``bundles_before``, ``bundles_after``,
            ``sessions``, ``duplicates``, ``errors`` and ``error_messages``.

        Raises:
            StorageError: the bucket cannot be listed or written.
        """
        return run_sync(self.compact_async, sut_name, days)

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> S3Storage:
        """Open ``s3://bucket/prefix`` with backend ``options``.

        Raises:
            ConfigurationError: the URI has no bucket.
        """
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        return cls(bucket, prefix.strip("/"), **options)  # the backend checks the bucket name


def open_storage(uri: PathLike, **options: Any) -> Storage:
    """Open the storage a URI names.

    Args:
        uri: ``~/path``, ``/path`` or ``file:///path`` (local JSON store),
            ``s3://bucket/prefix`` or ``memory://``.
        options: backend options (for S3: ``endpoint_url``, ``region``,
            ``concurrency``).

    Raises:
        ConfigurationError: the URI's scheme is not supported, or options
            were given to a backend that takes none.
    """
    text = os.fspath(uri)
    scheme, rest = split_uri(text, storage_schemes())
    if scheme == "s3":
        return S3Storage.from_uri(f"s3://{rest}", **options)
    if options:
        raise ConfigurationError(f"{text}: options {sorted(options)} apply only to s3:// storages")
    if scheme == "memory":
        return InMemoryStorage(name=rest)
    return JSONStorage(local_store_path(text))


def get_storage_instance(profile: str | None = None) -> Storage:
    """Return the configured storage.

    Resolution order: the ``profile`` argument, ``PYTEST_INSIGHT_PROFILE``,
    ``PYTEST_INSIGHT_STORAGE`` (a storage URI), the active profile, then the
    default local store under ``$PYTEST_INSIGHT_HOME`` (``~/.pytest_insight``).

    Raises:
        UnknownProfileError: the profile named is not defined.
    """
    uri, options = resolve_storage_uri(profile)
    return open_storage(uri, **options)
