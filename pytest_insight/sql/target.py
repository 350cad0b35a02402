"""What ``insight sql`` reads: a local store, a directory in the bucket layout, or a bucket prefix.

Resolved from the same storage URI and profile options as every other
command, without opening the storage itself: SQL reads the stored files and
objects as data, where they lie.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_insight.errors import ConfigurationError
from pytest_insight.format.layout import LAYOUT_VERSION
from pytest_insight.storage.uris import split_uri, storage_schemes

__all__ = ["BucketTarget", "LayoutTarget", "LocalTarget", "Target", "finish_commits", "resolve_target"]


@dataclass(frozen=True)
class LocalTarget:
    """A local JSON store: ``sessions/<2 hex>/<64 hex>.json`` files and ``packs/<32 hex>.pack`` files."""

    root: Path

    @property
    def uri(self) -> str:
        """The store as a ``file://`` URI."""
        return self.root.resolve().as_uri()


@dataclass(frozen=True)
class LayoutTarget:
    """A local directory holding ``v1/sut=<sut>/date=<day>/<id>.jsonl.gz`` (an export)."""

    root: Path

    @property
    def uri(self) -> str:
        """The directory as a ``file://`` URI."""
        return self.root.resolve().as_uri()

    @property
    def glob(self) -> str:
        """Every bundle of the layout, for DuckDB."""
        return f"{self.root.resolve().as_posix()}/{LAYOUT_VERSION}/*/*/*.jsonl.gz"


@dataclass(frozen=True)
class BucketTarget:
    """A bucket prefix in the layout, with the profile's S3 options (``endpoint_url``, ``region``)."""

    bucket: str
    prefix: str
    endpoint_url: str | None = None
    region: str | None = None

    @property
    def uri(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    @property
    def glob(self) -> str:
        """Every bundle of the layout, for DuckDB."""
        return f"{self.uri}/{LAYOUT_VERSION}/*/*/*.jsonl.gz"


Target = LocalTarget | LayoutTarget | BucketTarget


def resolve_target(uri: str, options: dict[str, Any]) -> Target:
    """Turn a storage URI and its profile options into what SQL reads.

    A local directory that holds ``v1/`` and no store files is read as the
    bucket layout (an ``insight export`` to a directory).

    Raises:
        ConfigurationError: the URI is ``memory://`` (nothing to read from
            another process), names an unknown scheme, or an s3:// URI has
            no bucket or points inside the layout.
    """
    scheme, rest = split_uri(uri, storage_schemes())
    if scheme == "memory":
        raise ConfigurationError(f"{uri}: insight sql reads a local store or an s3:// bucket, not memory://")
    if scheme == "s3":
        bucket, _, prefix = rest.partition("/")
        prefix = prefix.strip("/")
        if not bucket:
            raise ConfigurationError(f"{uri}: an s3:// URI needs a bucket name")
        if LAYOUT_VERSION in prefix.split("/"):
            raise ConfigurationError(
                f"{uri}: give the store's prefix (the part before /{LAYOUT_VERSION}/) and narrow with WHERE"
            )
        return BucketTarget(
            bucket, prefix, endpoint_url=options.get("endpoint_url"), region=options.get("region")
        )
    root = Path(rest if scheme == "file" else uri).expanduser()
    store_files = (root / "sessions").is_dir() or (root / "packs").is_dir()
    if (root / LAYOUT_VERSION).is_dir() and not store_files:
        return LayoutTarget(root)
    return LocalTarget(root)


def finish_commits(target: LocalTarget) -> None:
    """Open the store as its readers do before DuckDB reads its files.

    A lookup through the store's own API rolls forward a commit that a
    killed writer left half done (the store's readers all do that), so SQL
    never sees part of a batch, and refuses what is not a store (a
    pytest-insight 0.9 file) with the store's own error.

    Raises:
        ConfigurationError: the path is not a store.
        StorageError: the store cannot be read.
    """
    if target.root.exists():
        from pytest_insight.core.storage import JSONStorage

        JSONStorage(target.root).get_session_by_id("insight-sql-opens-the-store")
