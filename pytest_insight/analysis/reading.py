"""Stream a storage's sessions into a :class:`~pytest_insight.analysis.history.History`.

Any backend works through its ``scan``. A backend that keeps each session as
its canonical bundle line (the local store; see
:mod:`pytest_insight.storage.base`) offers ``scan_lines``, or better
``scan_undecoded``, and those lines are read here through
:class:`SessionView`, a projection that decodes only the fields the analyses
use (no captured output, no timestamps per result): a year of CI history is
read about four times faster than by decoding whole sessions. The local
store's session files, as the plugin writes them, come undecoded too.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgspec

from pytest_insight.analysis.history import History
from pytest_insight.errors import CorruptStoreError
from pytest_insight.model.sessions import TestSession, to_utc
from pytest_insight.storage.scope import EVERYTHING, Scope

if TYPE_CHECKING:
    from pytest_insight.core.facade import Storage

__all__ = [
    "LineScanner",
    "ResultView",
    "SessionView",
    "UndecodedScanner",
    "collect_history",
    "collect_history_async",
]


class ResultView(msgspec.Struct, gc=False):
    """The fields of one test result the analyses read."""

    nodeid: str
    outcome: str
    duration: float = 0.0
    longreprtext: str = ""
    subtest: str = ""
    worker: str = ""

    @property
    def test_id(self) -> str:
        """The node id, with the subtest's label for a subtest (as ``TestResult.test_id``)."""
        return f"{self.nodeid} {self.subtest}" if self.subtest else self.nodeid


class SessionView(msgspec.Struct, gc=False):
    """The fields of one session the analyses read, decoded from its canonical line."""

    sut_name: str
    session_id: str
    session_start_time: datetime
    session_duration: float = 0.0
    session_tags: dict[str, str] = {}
    testing_system: dict[str, Any] = {}
    test_results: list[ResultView] = []


@runtime_checkable
class LineScanner(Protocol):
    """A backend that yields each stored session with its canonical line (the local store)."""

    def scan_lines(self, scope: Scope = EVERYTHING) -> AsyncIterator[Any]:
        """Yield items with a ``line`` (bytes) and, when already decoded, a ``session``."""
        ...


@runtime_checkable
class UndecodedScanner(Protocol):
    """A backend that yields stored canonical lines undecoded, for the reader to decode (the local store)."""

    def scan_undecoded(self, scope: Scope = EVERYTHING) -> AsyncIterator[Any]:
        """Yield items as :meth:`LineScanner.scan_lines` does, or with a ``line`` and a ``source`` only."""
        ...


_DECODER = msgspec.json.Decoder(SessionView)


async def _collect(storage: Storage, scope: Scope, only: frozenset[str] | None) -> History:
    history = History(only)
    backend = storage.backend
    if isinstance(backend, UndecodedScanner | LineScanner):
        scan = backend.scan_undecoded if isinstance(backend, UndecodedScanner) else backend.scan_lines
        async for item in scan(scope):
            session = getattr(item, "session", None)
            if isinstance(session, TestSession):
                if scope.admits(session):
                    history.add(session)
                continue
            view = _view(item.line, getattr(item, "source", storage.uri))
            if scope.admits_key(view.sut_name, to_utc(view.session_start_time)):
                history.add(view)
    else:
        async for session in backend.scan(scope):
            if scope.admits(session):
                history.add(session)
    return history.finish()


def _view(line: bytes, uri: str) -> SessionView:
    try:
        return _DECODER.decode(line)
    except msgspec.ValidationError as exc:
        raise CorruptStoreError(uri, None, f"not a session: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise CorruptStoreError(uri, None, f"not JSON: {exc}") from exc


def collect_history(
    storage: Storage, scope: Scope | None = None, *, only: Iterable[str] | None = None
) -> History:
    """Stream the sessions of ``storage`` inside ``scope`` into an ordered :class:`History`.

    Args:
        storage: any storage (local store, bucket prefix, memory).
        scope: the SUT and time window; every session when None.
        only: the test ids to keep the runs of; every test's when None.

    Raises:
        CorruptStoreError: a stored file or object cannot be parsed.
        StorageError: the storage cannot be read.
    """
    from pytest_insight.core.facade import run_sync

    return run_sync(functools.partial(collect_history_async, only=only), storage, scope)


async def collect_history_async(
    storage: Storage, scope: Scope | None = None, *, only: Iterable[str] | None = None
) -> History:
    """Async twin of :func:`collect_history` (the plugin reads it under its publish deadline)."""
    return await _collect(storage, scope or Scope(), None if only is None else frozenset(only))
