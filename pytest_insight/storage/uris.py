"""Split a storage URI or location into its scheme and the rest, refusing what looks mistyped.

One parser and one scheme registry for every place that takes a URI
(``--storage``, profiles, ``PYTEST_INSIGHT_STORAGE``, export targets and
import sources), so that they agree on what a URI is and which schemes
exist: :data:`SCHEMES` says of each scheme whether it names a storage and
how an export target or import source of it is made. A bare path has no scheme. ``s3:/bucket`` or
``s3:bucket`` is a URI with a slash missing, not a directory named ``s3:``:
taken as a path it would quietly create ``./s3:/bucket`` in the project, so it
is refused with the URI it probably meant.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import msgspec

from pytest_insight.errors import ConfigurationError, did_you_mean

__all__ = [
    "local_store_path",
    "SCHEMES",
    "LocationFactory",
    "Scheme",
    "location_factory",
    "location_schemes",
    "register_location",
    "split_uri",
    "storage_schemes",
]

LocationFactory = Callable[[str], Any]
"""``uri -> location``: an object implementing the exchange's ``Source``, ``Sink`` or both."""


class Scheme(msgspec.Struct, frozen=True):
    """What ``<scheme>://...`` can name.

    Attributes:
        storage: a storage (``--storage``, profiles, ``PYTEST_INSIGHT_STORAGE``).
        location: an export target and import source.
        factory: how such a location is made: a :data:`LocationFactory`, or
            ``"module:attribute"`` naming one, imported on first use; None
            for ``file``, whose locations are local paths.
    """

    storage: bool
    location: bool
    factory: LocationFactory | str | None = None


SCHEMES: dict[str, Scheme] = {
    "file": Scheme(storage=True, location=True),
    "s3": Scheme(storage=True, location=True, factory="pytest_insight.storage.s3:exchange_location"),
    "memory": Scheme(storage=True, location=False),  # one process's memory: nothing to exchange with
}
"""Every scheme pytest-insight knows, by lower-case name."""


def storage_schemes() -> frozenset[str]:
    """The schemes a storage URI may have."""
    return frozenset(name for name, scheme in SCHEMES.items() if scheme.storage)


def location_schemes() -> frozenset[str]:
    """The schemes an export target or import source may have."""
    return frozenset(name for name, scheme in SCHEMES.items() if scheme.location)


def register_location(name: str, factory: LocationFactory | str) -> None:
    """Make ``name://...`` usable as an export target and import source.

    Args:
        name: the URI scheme, e.g. ``"s3"``.
        factory: ``uri -> location``, or ``"module:attribute"`` naming one,
            imported on first use.
    """
    key = name.lower()
    known = SCHEMES.get(key, Scheme(storage=False, location=True))
    SCHEMES[key] = msgspec.structs.replace(known, location=True, factory=factory)


def location_factory(name: str) -> LocationFactory:
    """The factory of the locations of scheme ``name`` (one of :func:`location_schemes`, not ``file``).

    Raises:
        ConfigurationError: its module cannot be imported (an extra is missing).
    """
    factory = SCHEMES[name].factory
    if factory is None:
        raise ConfigurationError(f"{name}:// locations are local paths; open them as paths")
    if isinstance(factory, str):
        module_name, _, attribute = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(f"{name}:// locations are not available: {exc}") from exc
    return factory


# RFC 3986 scheme, at least two characters so that a Windows drive ("C:\\x") is a path
_SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):(?P<rest>.*)", re.DOTALL)


def split_uri(text: str, schemes: Collection[str]) -> tuple[str, str]:
    """Return ``(scheme, rest)`` of ``scheme://rest``, or ``("", text)`` for a plain path.

    The scheme is lower-cased (``S3://`` is ``s3://``).

    Args:
        text: the URI or path as the user wrote it.
        schemes: the schemes the caller supports, for the error's hint.

    Raises:
        ConfigurationError: ``text`` names a scheme the caller does not
            support, or starts like a URI with its ``//`` missing or mangled.
    """
    match = _SCHEME.fullmatch(text)
    if match is None:
        return "", text
    scheme, rest = match["scheme"].lower(), match["rest"]
    known = [f"{name}://" for name in sorted(schemes)]
    if rest.startswith("//"):
        if scheme not in schemes:
            raise ConfigurationError(
                f"unsupported URI scheme in {text!r}{did_you_mean(scheme + '://', known)} "
                f"(use a path or one of {', '.join(known)})"
            )
        return scheme, rest[2:]
    if scheme in schemes or scheme in SCHEMES or rest.startswith("/"):
        fixed = f"{scheme}://{rest.lstrip('/')}" if scheme != "file" else f"file:///{rest.lstrip('/')}"
        raise ConfigurationError(
            f"{text!r} looks like a mistyped URI: did you mean {fixed!r}? (write ./{text} for a local path)"
        )
    return "", text


def local_store_path(text: str) -> Path | None:
    """The directory of the local store ``text`` names (a path or ``file://``), or None for another storage.

    Raises:
        ConfigurationError: as :func:`split_uri`.
    """
    scheme, rest = split_uri(text, storage_schemes())
    if scheme not in ("", "file"):
        return None
    return Path(rest if scheme == "file" else text).expanduser()
