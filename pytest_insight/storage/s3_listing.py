"""Listing an S3 store narrowly: only the key prefixes a scope can touch.

A scope with a SUT lists that SUT's prefix alone, starting just past the
days before the first wanted one (``StartAfter``) and stopping after the
last; a date range over every SUT lists the SUT prefixes (``Delimiter``)
and then each one the same way. A store opened on a prefix inside the layout
(``team/v1/sut=api`` or one day) lists only that part. Pages are yielded as
they arrive, so a download pipeline starts on the first page, which is
short for that reason.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from pytest_insight.core.layout import LAYOUT_VERSION, BundleKey, encode_sut, parse_bundle_key
from pytest_insight.errors import InvalidDataError
from pytest_insight.storage.base import EVERYTHING, Scope

if TYPE_CHECKING:
    from pytest_insight.storage.s3_reads import S3Reader

__all__ = [
    "FIRST_PAGE_KEYS",
    "PAGE_KEYS",
    "ListedObject",
    "covers",
    "list_keys",
    "list_objects",
    "list_pages",
    "partition_prefix",
    "split_layout",
    "start_after",
]

_INSTANT = timedelta(microseconds=1)

PAGE_KEYS = 1000
"""Keys in a full ``ListObjectsV2`` page (the most S3 sends)."""

FIRST_PAGE_KEYS = 100
"""Keys asked for in a listing's first page: a server takes time in proportion to the keys it lists
(SeaweedFS about 0.5 ms a key), and downloads start on the first page."""


@dataclass(frozen=True, slots=True)
class ListedObject:
    """One object of a listing: its key, ETag, size and, when inside the layout, its parsed key."""

    key: str
    etag: str
    size: int
    parsed: BundleKey | None


def partition_prefix(root: str, where: BundleKey) -> str:
    """The key prefix of one (SUT, day) partition, ending in ``/``."""
    return BundleKey(where.sut_part, where.day, "").key(root).rsplit("/", 1)[0] + "/"


def split_layout(prefix: str) -> tuple[str, str]:
    """Split ``team/v1/sut=api`` into the store root ``team`` and the part inside the layout."""
    parts = prefix.split("/") if prefix else []
    for index, part in enumerate(parts):
        if part == LAYOUT_VERSION and all(
            p.startswith(("sut=", "date=")) for p in parts[index + 1 : index + 3]
        ):
            return "/".join(parts[:index]), "/".join(parts[index:])
    return prefix, ""


def start_after(sut_prefix: str, first: date | None) -> str:
    """A ``StartAfter`` marker just past every key of the days before ``first``.

    Not ``date=<first>`` itself: SeaweedFS skips a whole directory whose
    name equals the marker, and ``~`` sorts after every character of a key.
    """
    if first is None or first == date.min:
        return ""
    return f"{sut_prefix}date={(first - timedelta(days=1)).isoformat()}/~"


async def list_pages(
    backend: S3Reader, prefix: str, *, delimiter: str = "", after: str = ""
) -> AsyncGenerator[dict[str, Any], None]:
    """Yield the ``ListObjectsV2`` pages under ``prefix``.

    Raises:
        StorageError: a request failed.
    """
    token = ""
    while True:
        page = await backend.call(
            "s3:ListBucket",
            prefix,
            partial(
                backend.direct.list_page,
                prefix,
                token=token,
                max_keys=0 if token else FIRST_PAGE_KEYS,
                start_after="" if token else after,
                delimiter=delimiter,
            ),
        )
        yield page
        token = page.get("NextContinuationToken", "")
        if not page.get("IsTruncated") or not token:
            return


async def _listing_prefixes(backend: S3Reader, scope: Scope) -> list[str]:
    base = f"{backend.root}/{LAYOUT_VERSION}/" if backend.root else f"{LAYOUT_VERSION}/"
    if scope.sut_name is not None:
        candidates = [f"{base}sut={encode_sut(scope.sut_name)}/"]
    elif scope.since is None and scope.until is None:
        candidates = [base]
    else:  # a date range over every SUT: list the SUTs, then each one from its first wanted day
        candidates = []
        async for page in list_pages(backend, base, delimiter="/"):
            candidates += [str(item["Prefix"]) for item in page.get("CommonPrefixes", [])]
    if not backend.within:
        return candidates
    within = f"{backend.root}/{backend.within}" if backend.root else backend.within
    within = within if within.endswith(".jsonl.gz") else within.rstrip("/") + "/"
    narrowed = set()
    for candidate in candidates:
        if within.startswith(candidate):
            narrowed.add(within)
        elif candidate.startswith(within):
            narrowed.add(candidate)
    return sorted(narrowed)


def _bounds(scope: Scope) -> tuple[date | None, date | None, str | None]:
    """The first and last day and the encoded SUT a scope's bundles can have."""
    first = scope.since.date() if scope.since is not None else None
    last = (scope.until - _INSTANT).date() if scope.until is not None else None  # until is exclusive
    return first, last, encode_sut(scope.sut_name) if scope.sut_name is not None else None


def covers(scope: Scope, where: BundleKey) -> bool:
    """Whether the bundle at ``where`` is one that listing ``scope`` yields."""
    first, last, wanted_sut = _bounds(scope)
    return (
        (wanted_sut is None or where.sut_part == wanted_sut)
        and (first is None or where.day >= first)
        and (last is None or where.day <= last)
    )


async def list_objects(backend: S3Reader, scope: Scope = EVERYTHING) -> AsyncGenerator[ListedObject, None]:
    """Yield the objects that may hold sessions inside ``scope``, page by page.

    Objects outside the layout under a listed prefix are yielded with
    ``parsed`` None (the reader reports them); console "folder" markers are
    skipped.

    Raises:
        NotFoundError: the bucket does not exist.
        AccessDeniedError: listing is not allowed.
        StorageError: the listing failed.
    """
    first, last, wanted_sut = _bounds(scope)
    for prefix in await _listing_prefixes(backend, scope):
        is_sut_prefix = prefix.rstrip("/").rsplit("/", 1)[-1].startswith("sut=")
        after = start_after(prefix, first) if is_sut_prefix else ""
        async with aclosing(list_pages(backend, prefix, after=after)) as pages:
            async for page in pages:
                past = False
                for item in page.get("Contents", []):
                    key = str(item["Key"])
                    if key.endswith("/"):
                        continue  # a "folder" marker made by a console
                    etag, size = str(item.get("ETag", "")), int(item.get("Size", 0))
                    try:
                        parsed = parse_bundle_key(key, backend.root)
                    except InvalidDataError:
                        yield ListedObject(key, etag, size, None)
                        continue
                    if wanted_sut is not None and parsed.sut_part != wanted_sut:
                        continue
                    if first is not None and parsed.day < first:
                        continue
                    if last is not None and parsed.day > last:
                        past = is_sut_prefix  # keys under one SUT are in date order
                        if past:
                            break
                        continue
                    yield ListedObject(key, etag, size, parsed)
                if past:
                    break


async def list_keys(backend: S3Reader, scope: Scope = EVERYTHING) -> AsyncGenerator[str, None]:
    """Yield the keys of :func:`list_objects`.

    Raises:
        StorageError: the listing failed.
    """
    async for listed in list_objects(backend, scope):
        yield listed.key
