"""Where bundles live: ``v1/sut=<sut>/date=<YYYY-MM-DD>/<bundle-id>.jsonl.gz``.

Hive-style partitions by SUT and UTC day, under a bucket prefix or a local
directory. :func:`encode_sut` turns any SUT name into one path segment that
cannot escape its partition; :func:`parse_bundle_key` reads a key back and
rejects anything outside the layout.
"""

from __future__ import annotations

import hashlib
import re
import string
from datetime import date
from typing import NamedTuple

from pytest_insight.errors import InvalidDataError
from pytest_insight.format.bundle import BUNDLE_ID_LENGTH
from pytest_insight.model.sessions import TestSession

__all__ = [
    "BUNDLE_SUFFIX",
    "LAYOUT_VERSION",
    "BundleKey",
    "bundle_key",
    "decode_sut",
    "encode_sut",
    "parse_bundle_key",
]

BUNDLE_SUFFIX = ".jsonl.gz"
LAYOUT_VERSION = "v1"
_SUT_SAFE = frozenset(string.ascii_letters + string.digits + "-_.")
_SUT_PART_MAX = 180  # keeps a partition segment well below the 255-byte file-name limit
_KEY = re.compile(
    rf"^{LAYOUT_VERSION}/sut=(?P<sut>[^/]+)/date=(?P<day>\d{{4}}-\d{{2}}-\d{{2}})/"
    rf"(?P<id>[0-9a-f]{{{BUNDLE_ID_LENGTH}}}){re.escape(BUNDLE_SUFFIX)}$"
)
_CUT = re.compile(r"[A-Za-z0-9_%-][A-Za-z0-9._%-]*~[0-9a-f]{16}")


def encode_sut(name: str) -> str:
    """Encode a SUT name as one path segment that cannot escape its partition.

    Letters, digits, ``-``, ``_`` and ``.`` stay; every other UTF-8 byte
    (``/``, ``%``, NUL, controls, spaces, non-ASCII) and a leading dot become
    ``%XX``. A name whose encoding is longer than 180 characters is cut and
    suffixed with ``~`` and a hash of the whole name; such a segment cannot
    be decoded, the sessions inside still carry the full name.

    Raises:
        InvalidDataError: the name is empty or not encodable as UTF-8.
    """
    if not name:
        raise InvalidDataError("must not be empty", field="sut_name")
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidDataError(f"not encodable as UTF-8: {name!r}", field="sut_name") from exc
    parts = [
        chr(byte) if chr(byte) in _SUT_SAFE and not (index == 0 and byte == ord(".")) else f"%{byte:02X}"
        for index, byte in enumerate(raw)
    ]
    encoded = "".join(parts)
    if len(encoded) > _SUT_PART_MAX:
        digest = hashlib.sha256(raw).hexdigest()[:16]
        cut = encoded[: _SUT_PART_MAX - 17]
        if "%" in cut[-2:]:  # never split a %XX escape
            cut = cut[: cut.rindex("%")]
        encoded = f"{cut}~{digest}"
    return encoded


def decode_sut(part: str) -> str:
    """Decode a segment written by :func:`encode_sut`, accepting only its canonical form.

    Raises:
        InvalidDataError: the segment is not the canonical encoding of a name
            (including the cut form of a long name).
    """
    try:
        name = _unquote(part).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise InvalidDataError(f"not an encoded SUT name: {part!r}", field="sut") from None
    if not name or encode_sut(name) != part:
        raise InvalidDataError(f"not an encoded SUT name: {part!r}", field="sut")
    return name


def _unquote(part: str) -> bytes:
    out = bytearray()
    index = 0
    while index < len(part):
        char = part[index]
        if char == "%":
            out.append(int(part[index + 1 : index + 3], 16))  # ValueError for a short or bad escape
            index += 3
        elif char in _SUT_SAFE:
            out.append(ord(char))
            index += 1
        else:
            raise ValueError(char)
    return bytes(out)


class BundleKey(NamedTuple):
    """Where a bundle lives: the SUT segment, the UTC day and the bundle id."""

    sut_part: str
    day: date
    bundle_id: str

    @property
    def sut_name(self) -> str | None:
        """The SUT name, or None when the segment is the cut form of a long name."""
        try:
            return decode_sut(self.sut_part)
        except InvalidDataError:
            return None

    def misplaced(
        self, session: TestSession, source: str, line: int | None = None
    ) -> InvalidDataError | None:
        """The error for a session whose SUT or UTC start day is not this partition's, else None.

        The key is what narrows an import by SUT and date, so content that
        disagrees with it (a file moved, an object copied by hand) cannot be
        trusted either way.
        """
        if encode_sut(session.sut_name).casefold() != self.sut_part.casefold():
            field, value = "sut_name", repr(session.sut_name)
        elif session.session_start_time.date() != self.day:
            field, value = "session_start_time", session.session_start_time.date().isoformat()
        else:
            return None
        where = f"partition sut={self.sut_part}/date={self.day.isoformat()}"
        return InvalidDataError(
            f"{value} does not match the {where} (session {session.session_id!r} not imported)",
            source=source,
            line=line,
            field=field,
        )

    def key(self, prefix: str = "") -> str:
        """The object key (or relative path) of this bundle under ``prefix``."""
        name = f"{self.bundle_id}{BUNDLE_SUFFIX}"
        path = f"{LAYOUT_VERSION}/sut={self.sut_part}/date={self.day.isoformat()}/{name}"
        return f"{prefix.rstrip('/')}/{path}" if prefix else path


def bundle_key(sut_name: str, day: date, bundle_id: str, prefix: str = "") -> str:
    """Return the key of a bundle: ``[prefix/]v1/sut=<sut>/date=<day>/<id>.jsonl.gz``.

    Raises:
        InvalidDataError: the SUT name is empty.
    """
    return BundleKey(encode_sut(sut_name), day, bundle_id).key(prefix)


def parse_bundle_key(key: str, prefix: str = "") -> BundleKey:
    """Parse a key of the layout back into its parts.

    Args:
        key: the object key or relative path, ``/``-separated.
        prefix: a prefix the key must start with; removed before parsing.

    Raises:
        InvalidDataError: the key lies outside the layout.
    """
    rest = key
    if prefix:
        head = prefix.rstrip("/") + "/"
        if not key.startswith(head):
            raise InvalidDataError(f"not under prefix {prefix!r}", source=key)
        rest = key[len(head) :]
    match = _KEY.match(rest)
    if match is None:
        raise InvalidDataError(
            f"not a bundle key ({LAYOUT_VERSION}/sut=<sut>/date=<YYYY-MM-DD>/<id>{BUNDLE_SUFFIX})", source=key
        )
    part = match["sut"]
    if "~" not in part:
        decode_sut(part)
    elif not _CUT.fullmatch(part):
        raise InvalidDataError(f"not an encoded SUT name: {part!r}", source=key)
    try:
        day = date.fromisoformat(match["day"])
    except ValueError:
        raise InvalidDataError(f"not a date: {match['day']!r}", source=key) from None
    return BundleKey(part, day, match["id"])
