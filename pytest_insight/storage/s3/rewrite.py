"""The one conditional rewrite: a bundle without some of its sessions, retried when it changed meanwhile.

The bundle is rewritten at its key only if it still has the ETag it was read
with (``If-Match``). When another writer changed it in the meantime it is
read again and the removal redone on what is there now, so nobody's change is
lost. A bundle left empty is not written: the caller deletes it in its
``DeleteObjects`` batch. A bundle that cannot be decoded is never rewritten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pytest_insight.errors import CorruptStoreError, NotFoundError, StorageError
from pytest_insight.format.bundle import encode_bundle
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.s3.bucket import Bucket
from pytest_insight.storage.s3.objects import StoredBundle, put_bundle, read_bundle

__all__ = ["REWRITE_ATTEMPTS", "Rewritten", "rewrite_without"]

REWRITE_ATTEMPTS = 5
"""Reads and conditional writes of one bundle before giving up on a key that keeps changing."""


@dataclass(frozen=True, slots=True)
class Rewritten:
    """What :func:`rewrite_without` did to one bundle.

    Attributes:
        key: the bundle's key.
        removed: the sessions taken out (0 when none matched, or the object is gone).
        emptied: nothing is left: the caller deletes the key (``removed`` counts what it held).
    """

    key: str
    removed: int
    emptied: bool


async def rewrite_without(
    bucket: Bucket, stored: StoredBundle, drop: Callable[[TestSession], bool]
) -> Rewritten:
    """Rewrite the bundle ``stored`` without the sessions ``drop`` picks, conditional on its ETag.

    Raises:
        CorruptStoreError: the bundle cannot be decoded, so it cannot be rewritten.
        StorageError: it could not be read or written, or kept changing over every attempt.
    """
    key = stored.key
    for _attempt in range(REWRITE_ATTEMPTS):
        if isinstance(stored.failure, NotFoundError):
            return Rewritten(key, 0, emptied=False)  # deleted meanwhile: nothing left to remove
        if stored.failure is not None:
            raise stored.failure
        if stored.errors:
            raise CorruptStoreError(
                bucket.object_uri(key), None, f"cannot rewrite a corrupt bundle: {stored.errors[0]}"
            )
        remaining = [session for session in stored.sessions if not drop(session)]
        removed = len(stored.sessions) - len(remaining)
        if not removed:
            return Rewritten(key, 0, emptied=False)  # another writer already removed them
        if not remaining:
            return Rewritten(key, removed, emptied=True)
        if await put_bundle(bucket, key, encode_bundle(remaining), if_match=stored.etag) is not None:
            return Rewritten(key, removed, emptied=False)
        stored = await read_bundle(bucket, key)  # changed since read: redo the removal on what is there now
    raise StorageError(
        f"{bucket.object_uri(key)}: kept changing while being rewritten ({REWRITE_ATTEMPTS} attempts)",
        uri=bucket.object_uri(key),
    )
