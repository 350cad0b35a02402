"""The bundle: the one wire format sessions travel in.

A bundle is gzipped JSON Lines: one ``TestSession.to_dict()`` a line (each
carries its ``schema_version``), UTF-8, newline-terminated. It is written
deterministically (sessions sorted by start time then id, JSON with sorted
keys and compact separators, gzip with mtime 0, no file name and a fixed OS
byte), so the same sessions give the same bytes and the same bundle id: the
first 32 hex digits of the SHA-256 of the uncompressed bytes.

Where bundles live (``v1/sut=<sut>/date=<YYYY-MM-DD>/<bundle-id>.jsonl.gz``)
is :mod:`pytest_insight.format.layout`.

Decoding, streaming and bounded, is :mod:`pytest_insight.format.decoding`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from pytest_insight.format.compression import GzipWriter
from pytest_insight.format.lines import CANONICAL_START, EncodedSession
from pytest_insight.model.schema import encode_line
from pytest_insight.model.sessions import TestSession

__all__ = [
    "BUNDLE_ID_LENGTH",
    "Bundle",
    "EncodedSession",
    "CANONICAL_START",
    "content_digest",
    "encode_or_reuse",
    "encode_session",
    "encode_bundle",
    "ordered",
    "partition",
]

BUNDLE_ID_LENGTH = 32


def encode_session(session: TestSession) -> EncodedSession:
    """Encode ``session`` as its canonical line.

    Raises:
        InvalidDataError: the session holds a value JSON cannot carry (NaN, infinity).
    """
    return EncodedSession(
        session.sut_name, session.session_start_time, session.session_id, encode_line(session)
    )


def encode_or_reuse(session: TestSession, line: bytes | None) -> EncodedSession:
    """``session`` as a bundle line: ``line`` itself when :func:`encode_session` wrote it, else encoded again.

    ``line`` is what ``session`` was decoded from (None: unknown). Encoding a session costs
    as much as decoding it, so a line that starts as canonical lines do
    (:data:`CANONICAL_START`) is taken for one and reused as it is: the local
    store writes its files so, and every export its bundles. Any other line
    (a store file of an earlier release) is encoded again, so that a bundle's
    bytes, and so its id, do not depend on which release stored a session.
    A line from another tool that starts so but is not canonical still
    decodes to ``session``; only its bundle's id differs from a re-encoding's.
    """
    # a file edited by hand may span lines: a bundle line must be one
    if line is not None and line.startswith(CANONICAL_START) and b"\n" not in line:
        return EncodedSession(session.sut_name, session.session_start_time, session.session_id, line)
    return encode_session(session)


def content_digest(session: TestSession) -> str:
    """Hex digest of the session's canonical content without its id: equal for identical sessions.

    Raises:
        InvalidDataError: the session cannot be encoded.
    """
    return hashlib.sha256(encode_line(session, session_id="")).hexdigest()


@dataclass(frozen=True, slots=True)
class Bundle:
    """An encoded bundle: its content-derived id, gzipped bytes and the ids of its sessions, in order."""

    bundle_id: str
    data: bytes
    session_ids: tuple[str, ...]

    @property
    def count(self) -> int:
        """How many sessions it holds."""
        return len(self.session_ids)


def encode_bundle(sessions: Iterable[EncodedSession | TestSession]) -> Bundle:
    """Encode sessions as one deterministic bundle, a line at a time.

    Only the compressed bundle and one line are in memory at once: a spool's
    sessions are read line by line, and in-memory sessions encoded one by one.

    Raises:
        InvalidDataError: a session cannot be encoded.
    """
    from pytest_insight.format.spool import Selection  # the spool is built on this module

    items: Sequence[EncodedSession | TestSession] = (
        sessions.ordered() if isinstance(sessions, Selection) else sorted(sessions, key=_bundle_order)
    )
    digest = hashlib.sha256()
    writer = GzipWriter()
    data = bytearray()
    ids: list[str] = []
    for item in items:
        encoded = item if isinstance(item, EncodedSession) else encode_session(item)
        line = encoded.line + b"\n"
        digest.update(line)
        data += writer.compress(line)
        ids.append(encoded.session_id)
    data += writer.flush()
    return Bundle(digest.hexdigest()[:BUNDLE_ID_LENGTH], bytes(data), tuple(ids))


def _bundle_order(item: EncodedSession | TestSession) -> tuple[datetime, str]:
    if isinstance(item, EncodedSession):
        return item.start_time, item.session_id
    return item.session_start_time, item.session_id


def partition(sessions: Iterable[EncodedSession]) -> Mapping[tuple[str, date], Sequence[EncodedSession]]:
    """Group sessions by (SUT, UTC start day): one bundle each.

    A :class:`~pytest_insight.format.spool.SessionSpool` is grouped without
    reading its lines.
    """
    from pytest_insight.format.spool import SessionSpool  # the spool is built on this module

    if isinstance(sessions, SessionSpool):
        return sessions.partition()
    groups: dict[tuple[str, date], list[EncodedSession]] = {}
    for item in sessions:
        groups.setdefault((item.sut_name, item.day), []).append(item)
    return groups


def ordered(sessions: Sequence[EncodedSession]) -> Sequence[EncodedSession]:
    """The sessions in bundle order: start time, then id.

    A spool's :class:`~pytest_insight.format.spool.Selection` (the spool, or
    one partition of it) is ordered without reading its lines.
    """
    from pytest_insight.format.spool import Selection  # the spool is built on this module

    if isinstance(sessions, Selection):
        return sessions.ordered()
    return sorted(sessions, key=lambda item: (item.start_time, item.session_id))
