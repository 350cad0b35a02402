"""Split a storage URI or location into its scheme and the rest, refusing what looks mistyped.

One parser for every place that takes a URI (``--storage``, profiles,
``PYTEST_INSIGHT_STORAGE``, export targets and import sources), so that they
agree on what a URI is. A bare path has no scheme. ``s3:/bucket`` or
``s3:bucket`` is a URI with a slash missing, not a directory named ``s3:``:
taken as a path it would quietly create ``./s3:/bucket`` in the project, so it
is refused with the URI it probably meant.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from pytest_insight.errors import ConfigurationError, did_you_mean

__all__ = ["STORAGE_SCHEMES", "split_uri"]

STORAGE_SCHEMES = frozenset({"file", "s3", "memory"})

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
    if scheme in schemes or scheme in STORAGE_SCHEMES or rest.startswith("/"):
        fixed = f"{scheme}://{rest.lstrip('/')}" if scheme != "file" else f"file:///{rest.lstrip('/')}"
        raise ConfigurationError(
            f"{text!r} looks like a mistyped URI: did you mean {fixed!r}? (write ./{text} for a local path)"
        )
    return "", text
