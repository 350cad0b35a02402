"""Concurrent work whose failure surfaces as itself, not wrapped in an ExceptionGroup.

anyio's task groups raise an ExceptionGroup even when one task failed.
Callers (and users reading a one-line error) want that one failure, so
every place that runs tasks goes through :func:`run_concurrently` or
:func:`unwrapped`, and the CLI reads a group's leaves with :func:`leaves`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager

import anyio

__all__ = ["leaves", "run_concurrently", "unwrapped"]


async def run_concurrently(jobs: Sequence[Callable[[], Awaitable[None]]]) -> None:
    """Run ``jobs`` in one task group; the first failure cancels the rest and is raised as itself.

    Raises:
        Exception: what the first failing job raised (not wrapped in an ExceptionGroup).
    """
    failures: list[Exception] = []

    async def guarded(job: Callable[[], Awaitable[None]], scope: anyio.CancelScope) -> None:
        try:
            await job()
        except Exception as exc:  # collected and re-raised below, unwrapped
            failures.append(exc)
            scope.cancel()

    async with anyio.create_task_group() as group:
        for job in jobs:
            group.start_soon(guarded, job, group.cancel_scope)
    if failures:
        raise failures[0]


@contextmanager
def unwrapped() -> Iterator[None]:
    """Around a task group: an ExceptionGroup of one failure is raised as that failure.

    Raises:
        BaseException: the one failure inside the group; a group of several is raised as it is.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        inner = list(leaves(group))
        if len(inner) == 1:
            raise inner[0] from None
        raise


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside ``exc``, nested groups flattened; ``exc`` itself when it is no group."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc
