"""Keeping a bucket's id index up to date by listing.

Session ids are unique in a whole prefix, so an S3 transaction must know
where every id is stored, and an import into a bucket opens one transaction
per batch. Reading every bundle in each transaction made such an import
quadratic in requests and held the whole prefix in memory. The index
(:class:`~pytest_insight.storage.s3.ids.IdIndex`) keeps, for each bundle key,
the ETag it was listed with and the ids it holds. :func:`refresh_index` lists
a scope (one request per 1000 keys) and downloads only the bundles that are
new or whose ETag changed since; keys gone from the listing are dropped.
What the backend uploads itself is learnt from the upload. A transaction then
downloads whole only the bundles it must return or rewrite.
"""

from __future__ import annotations

from contextlib import aclosing

from pytest_insight.errors import InvalidDataError
from pytest_insight.format.layout import parse_bundle_key
from pytest_insight.storage.s3.bucket import Bucket
from pytest_insight.storage.s3.listing import covers, list_objects
from pytest_insight.storage.s3.pipeline import each_key, read_bundles
from pytest_insight.storage.scope import Scope

__all__ = ["refresh_index"]


def _inside(bucket: Bucket, key: str, scope: Scope) -> bool:
    if scope.is_everything:
        return True
    try:
        return covers(scope, parse_bundle_key(key, bucket.root))
    except InvalidDataError:
        return False  # outside the layout: listed only with everything


async def refresh_index(bucket: Bucket, scope: Scope) -> None:
    """Bring the bundles inside ``scope`` up to date in ``bucket.index``: list them, download what changed.

    Raises:
        StorageError: the listing or a download failed.
        NotFoundError: the bucket does not exist.
    """
    index = bucket.index
    async with index.lock:
        listed: dict[str, str] = {}
        async with aclosing(list_objects(bucket, scope)) as objects:
            async for item in objects:
                listed[item.key] = item.etag
        for key in [key for key in list(index.keys()) if key not in listed and _inside(bucket, key, scope)]:
            index.drop(key)
        changed = [key for key, etag in listed.items() if index.etag(key) != etag]
        async with aclosing(read_bundles(bucket, each_key(changed))) as bundles:
            async for stored in bundles:
                if stored.failure is not None:
                    raise stored.failure
                ids = [session.session_id for session in stored.sessions]
                index.put(stored.key, listed[stored.key], ids, broken=bool(stored.errors))
