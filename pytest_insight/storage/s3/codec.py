"""Decode a downloaded bundle and check its content against its bundle id.

The bundle format is :mod:`pytest_insight.format.bundle`; this adds the one
thing a download needs on top: the SHA-256 of the decompressed content must
start with the bundle id the object was stored under, so an object that was
replaced, truncated or mislabelled is reported instead of imported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from pytest_insight.errors import InvalidDataError
from pytest_insight.format import compression
from pytest_insight.format.decoding import BundleDecoder, DecodedItem, Limits
from pytest_insight.model.sessions import TestSession

__all__ = ["decode_verified"]


def decode_verified(
    data: bytes | memoryview, source: str, bundle_id: str, limits: Limits
) -> tuple[list[TestSession], list[bytes], list[InvalidDataError]]:
    """Decode gzipped bundle bytes, verifying the content hash against ``bundle_id``.

    Returns:
        The valid sessions, the line each was decoded from, and one error per
        bad line; or, after a source-wide error (corrupt gzip, a size limit, a
        hash mismatch), no sessions and that one error, since nothing in the
        object can be trusted.
    """
    digest = hashlib.sha256()
    decoder = BundleDecoder(source, limits, compressed=False)
    sessions: list[TestSession] = []
    lines: list[bytes] = []
    errors: list[InvalidDataError] = []

    def collect(items: Iterable[DecodedItem]) -> None:
        for item in items:
            if isinstance(item, InvalidDataError):
                errors.append(item)
            else:
                sessions.append(item)
                lines.append(decoder.last_line)

    try:
        if not data:
            raise InvalidDataError("empty object", source=source)
        if (reason := compression.not_gzip(bytes(data[:8]))) is not None:
            raise InvalidDataError(reason, source=source)
        gunzip = compression.Gunzip()
        try:
            for piece in gunzip.feed(data):  # type: ignore[arg-type]  # it reads any buffer, through a memoryview
                digest.update(piece)
                collect(decoder.feed(piece))
        except compression.ERRORS as exc:
            raise InvalidDataError(f"corrupt gzip data: {exc}", source=source) from None
        if gunzip.in_member:
            raise InvalidDataError("truncated gzip stream", source=source)
        collect(decoder.finish())
        if not digest.hexdigest().startswith(bundle_id.lower()):
            raise InvalidDataError(
                f"content does not match bundle id {bundle_id} (sha256 {digest.hexdigest()[:32]})",
                source=source,
            )
    except InvalidDataError as exc:
        return [], [], [exc]
    return sessions, lines, errors
