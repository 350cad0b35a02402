"""Deleting objects: the one place ``DeleteObjects`` batches are made.

Keys go in batches of at most 1000 (S3's limit; moto accepts more, real
servers refuse it), ``concurrency`` batches at a time. A batch the server
refuses is retried key by key, so every key that could not be deleted is
named with its own reason; a key already gone counts as deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import anyio
import obstore

from pytest_insight.errors import NotFoundError, StorageError
from pytest_insight.storage.s3.bucket import Bucket
from pytest_insight.storage.s3.pipeline import run_concurrently

__all__ = ["DELETE_BATCH", "delete_keys"]

DELETE_BATCH = 1000
"""Most keys in one ``DeleteObjects`` request."""


async def delete_keys(bucket: Bucket, keys: Sequence[str]) -> dict[str, StorageError]:
    """Delete ``keys`` in ``DeleteObjects`` batches of at most :data:`DELETE_BATCH`.

    Returns:
        The keys that could not be deleted, each with its error (empty when all went).

    Raises:
        ConfigurationError: no credentials, or the bucket is in another region.
    """
    ordered = sorted(set(keys))
    failed: dict[str, StorageError] = {}
    limiter = anyio.CapacityLimiter(bucket.concurrency)

    async def delete_one(key: str) -> None:
        try:
            await bucket.call("s3:DeleteObject", key, lambda store: obstore.delete(store, key), resend=True)
        except NotFoundError:
            pass  # already gone: what a delete wants
        except StorageError as exc:
            failed[key] = exc

    async def delete_batch(batch: list[str]) -> None:
        async with limiter:
            try:
                await bucket.call(
                    "s3:DeleteObject", batch[0], lambda store: obstore.delete(store, batch), resend=True
                )
                return
            except StorageError:
                pass  # some key was refused: find which, one by one
            for key in batch:
                await delete_one(key)

    batches = [ordered[start : start + DELETE_BATCH] for start in range(0, len(ordered), DELETE_BATCH)]
    await run_concurrently([partial(delete_batch, batch) for batch in batches])
    return failed
