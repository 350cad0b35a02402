"""Where exports go and imports come from: files, directories and registered URI schemes.

A *source* yields decoded sessions and error records; a *sink* writes
encoded sessions. Local paths and ``file://`` URIs are built in:

- a ``.json`` file: one export document (import also reads the 0.9 formats);
- a ``.jsonl.gz`` / ``.json.gz`` file: one bundle;
- a directory: the bundle layout ``v1/sut=<sut>/date=<day>/<id>.jsonl.gz``.

Other schemes come from the one scheme registry,
:data:`pytest_insight.storage.uris.SCHEMES`: ``s3`` is registered as
``pytest_insight.storage.s3:exchange_location``, so the S3 backend plugs in
by defining that callable (``uri -> object with records() and/or write()``);
:func:`register_location` (re-exported here) adds one.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pytest_insight.errors import ConfigurationError, NotFoundError
from pytest_insight.exchange.file_sinks import BundleFileSink, DirectorySink, DocumentSink
from pytest_insight.exchange.file_sources import BUNDLE_SUFFIXES, JUNIT_SUFFIX, DirectorySource, FileSource
from pytest_insight.format.bundle import EncodedSession
from pytest_insight.format.decoding import Limits, SourceItem
from pytest_insight.progress import ProgressCallback
from pytest_insight.storage.scope import Scope
from pytest_insight.storage.uris import location_factory, location_schemes, register_location, split_uri

__all__ = [
    "Sink",
    "file_target",
    "Source",
    "open_sink",
    "open_source",
    "register_location",
]

_GLOB = re.compile(r"[*?\[]")


@runtime_checkable
class Source(Protocol):
    """Where an import reads from."""

    @property
    def uri(self) -> str:
        """The location, as named in messages."""
        ...

    def records(
        self, scope: Scope, limits: Limits, progress: ProgressCallback | None = None
    ) -> AsyncIterator[SourceItem]:
        """Yield the sessions (at least those in ``scope``) and an error record per bad line or object.

        A source made of many objects reports ``("list", n, None)`` as it finds
        them and ``("transfer", n, found)`` as it reads them.

        Raises:
            StorageError: the location cannot be read (an I/O failure, not bad data).
        """
        ...


@runtime_checkable
class Sink(Protocol):
    """Where an export writes to."""

    @property
    def uri(self) -> str:
        """The location, as named in messages."""
        ...

    async def write(
        self, sessions: Sequence[EncodedSession], progress: ProgressCallback | None = None
    ) -> int:
        """Write ``sessions``; return how many were exported.

        Raises:
            StorageError: the location cannot be written.
        """
        ...


def _resolve(location: str | os.PathLike[str]) -> Path | Any:
    text = os.fspath(location)
    scheme, rest = split_uri(text, location_schemes())
    if not scheme:
        return Path(text).expanduser()
    if scheme == "file":
        return Path(rest).expanduser()
    try:
        factory = location_factory(scheme)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{text}: {exc}") from exc
    return factory(f"{scheme}://{rest}")


def open_source(location: str | os.PathLike[str] | Source) -> Source:
    """Return the import source at ``location`` (a source given as it is).

    Raises:
        NotFoundError: a local path that does not exist.
        ConfigurationError: an unsupported scheme, or one that cannot be read from.
    """
    if isinstance(location, Source):
        return location
    resolved = _resolve(location)
    if not isinstance(resolved, Path):
        if not isinstance(resolved, Source):
            raise ConfigurationError(f"{os.fspath(location)}: cannot import from this location")
        return resolved
    if resolved.is_dir():
        return DirectorySource(resolved)
    if resolved.is_file():
        if resolved.name.lower().endswith(JUNIT_SUFFIX):
            from pytest_insight.exchange.junit_files import JUnitSource  # defusedxml only where XML is read

            return JUnitSource(resolved, whole=True)
        return FileSource(resolved, whole=True)
    if resolved.exists():
        raise ConfigurationError(f"{resolved}: not a file or directory")
    if _GLOB.search(str(resolved)):
        # "reports/*.xml" quoted so the shell left it alone: the files it matches, read as a directory's
        base = next((p for p in resolved.parents if not _GLOB.search(str(p))), Path())
        return DirectorySource(base, str(resolved.relative_to(base)))
    raise NotFoundError(f"{resolved}: no such file or directory", uri=str(resolved))


def file_target(path: Path) -> Path:
    """``path``, an export file whose directory exists: a typo in the path must not create directories.

    Raises:
        NotFoundError: the directory does not exist (only a directory target is created).
    """
    if not path.parent.is_dir():
        raise NotFoundError(
            f"{path}: no such directory {path.parent} (only a directory target is created)", uri=str(path)
        )
    return path


def open_sink(location: str | os.PathLike[str] | Sink) -> Sink:
    """Return the export sink at ``location``, chosen by suffix (see the module docstring); a sink as it is.

    Raises:
        ConfigurationError: an unsupported scheme or file type.
        NotFoundError: a file target whose directory does not exist.
    """
    if isinstance(location, Sink):
        return location
    resolved = _resolve(location)
    if not isinstance(resolved, Path):
        if not isinstance(resolved, Sink):
            raise ConfigurationError(f"{os.fspath(location)}: cannot export to this location")
        return resolved
    name = resolved.name.lower()
    if resolved.is_dir():
        return DirectorySink(resolved)
    if name.endswith((".json", JUNIT_SUFFIX, *BUNDLE_SUFFIXES, ".gz")):
        file_target(resolved)
        if name.endswith(JUNIT_SUFFIX):
            from pytest_insight.exchange.junit_files import JUnitSink

            return JUnitSink(resolved)
        return DocumentSink(resolved) if name.endswith(".json") else BundleFileSink(resolved)
    if resolved.exists() or resolved.suffix:
        raise ConfigurationError(
            f"{resolved}: unsupported export target (use a .json, .jsonl.gz or .xml file, or a directory)"
        )
    return DirectorySink(resolved)
