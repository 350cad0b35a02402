"""Listing an S3 store narrowly: only the key prefixes a scope can touch.

A scope with a SUT lists that SUT's prefix alone, starting just past the
days before the first wanted one (``start-after``) and stopping after the
last; a date range over every SUT lists the SUT prefixes (a delimiter
listing) and then each one the same way. An S3 Express One Zone directory
bucket lists in no particular order and has no ``start-after``: its SUT
prefixes are listed whole and filtered. A store opened on a prefix inside
the layout (``team/v1/sut=api`` or one day) lists only that part. Pages are
yielded as they arrive, so a download pipeline starts on the first page.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import obstore

from pytest_insight.errors import InvalidDataError
from pytest_insight.format.layout import LAYOUT_VERSION, BundleKey, encode_sut, parse_bundle_key
from pytest_insight.storage.s3.bucket import Bucket
from pytest_insight.storage.scope import EVERYTHING, Scope

if TYPE_CHECKING:
    from obstore.store import ObjectStore

__all__ = [
    "PAGE_KEYS",
    "ListedObject",
    "covers",
    "list_keys",
    "list_objects",
    "list_pages",
    "partition_prefix",
    "start_after",
]

_INSTANT = timedelta(microseconds=1)

PAGE_KEYS = 1000
"""Keys in a full ``ListObjectsV2`` page (the most S3 sends)."""


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


def start_after(sut_prefix: str, first: date | None) -> str:
    """A ``start-after`` marker just past every key of the days before ``first``.

    Not ``date=<first>`` itself: SeaweedFS skips a whole directory whose
    name equals the marker, and ``~`` sorts after every character of a key.
    """
    if first is None or first == date.min:
        return ""
    return f"{sut_prefix}date={(first - timedelta(days=1)).isoformat()}/~"


async def list_pages(
    bucket: Bucket, prefix: str, *, after: str = ""
) -> AsyncGenerator[list[tuple[str, str, int]], None]:
    """Yield the keys under ``prefix`` page by page, as (key, ETag, size).

    A prefix not ending in ``/`` (one bundle's key) is listed from its
    directory and matched by its start, as S3 matches prefixes.

    Raises:
        StorageError: a request failed.
    """
    directory, partial_name = (prefix, "") if prefix.endswith("/") else prefix.rpartition("/")[::2]
    directory = directory.rstrip("/")
    stem = f"{directory}/{partial_name}" if directory else partial_name
    stream: Any = None
    opened_on: Any = None

    def next_page(store: ObjectStore) -> list[Any]:
        nonlocal stream, opened_on
        if stream is None or opened_on is not store:  # a store rebuilt for another region starts over
            stream = obstore.list(store, directory or None, offset=after or None, chunk_size=PAGE_KEYS)
            opened_on = store
        page: list[Any] = next(stream, [])
        return page

    while True:
        page = await bucket.call("s3:ListBucket", prefix, next_page)
        if not page:
            return
        rows = [(str(item["path"]), str(item.get("e_tag") or ""), int(item["size"])) for item in page or ()]
        yield [row for row in rows if row[0].startswith(stem)] if partial_name else rows


async def list_prefixes(bucket: Bucket, prefix: str) -> list[str]:
    """The "directories" right under ``prefix``, each ending in ``/``.

    Raises:
        StorageError: the request failed.
    """
    found = await bucket.call(
        "s3:ListBucket", prefix, lambda store: obstore.list_with_delimiter(store, prefix.rstrip("/"))
    )
    names: list[str] = list(found["common_prefixes"]) if found is not None else []
    return [f"{name.rstrip('/')}/" for name in names]


async def _listing_prefixes(bucket: Bucket, scope: Scope) -> list[str]:
    base = f"{bucket.root}/{LAYOUT_VERSION}/" if bucket.root else f"{LAYOUT_VERSION}/"
    if scope.sut_name is not None:
        candidates = [f"{base}sut={encode_sut(scope.sut_name)}/"]
    elif scope.since is None and scope.until is None:
        candidates = [base]
    else:  # a date range over every SUT: list the SUTs, then each one from its first wanted day
        candidates = await list_prefixes(bucket, base)
    if not bucket.within:
        return candidates
    within = f"{bucket.root}/{bucket.within}" if bucket.root else bucket.within
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


async def list_objects(bucket: Bucket, scope: Scope = EVERYTHING) -> AsyncGenerator[ListedObject, None]:
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
    for prefix in await _listing_prefixes(bucket, scope):
        # a SUT's keys come in date order, except in a directory bucket (which has no start-after either)
        in_order = prefix.rstrip("/").rsplit("/", 1)[-1].startswith("sut=") and bucket.sorted_listing
        after = start_after(prefix, first) if in_order else ""
        async with aclosing(list_pages(bucket, prefix, after=after)) as pages:
            async for page in pages:
                past = False
                for key, etag, size in page:
                    if key.endswith("/"):
                        continue  # a "folder" marker made by a console
                    try:
                        parsed = parse_bundle_key(key, bucket.root)
                    except InvalidDataError:
                        yield ListedObject(key, etag, size, None)
                        continue
                    if wanted_sut is not None and parsed.sut_part != wanted_sut:
                        continue
                    if first is not None and parsed.day < first:
                        continue
                    if last is not None and parsed.day > last:
                        past = in_order
                        if past:
                            break
                        continue
                    yield ListedObject(key, etag, size, parsed)
                if past:
                    break


async def list_keys(bucket: Bucket, scope: Scope = EVERYTHING) -> AsyncGenerator[str, None]:
    """Yield the keys of :func:`list_objects`.

    Raises:
        StorageError: the listing failed.
    """
    async for listed in list_objects(bucket, scope):
        yield listed.key
