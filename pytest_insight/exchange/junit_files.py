"""JUnit files as an import source and an export sink (see :mod:`pytest_insight.exchange.locations`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import anyio.to_thread

from pytest_insight.errors import InvalidDataError, file_error
from pytest_insight.files import write_atomic
from pytest_insight.format.bundle import EncodedSession
from pytest_insight.format.decoding import Limits, SourceItem
from pytest_insight.junit.reader import Grouping, read_junit
from pytest_insight.junit.writer import junit_pieces
from pytest_insight.model.sessions import TestSession
from pytest_insight.progress import ProgressCallback
from pytest_insight.storage.scope import Scope

__all__ = ["JUnitSink", "JUnitSource"]


class JUnitSource:
    """One JUnit XML report, read as one session (or one a ``<testsuite>``).

    The SUT of its sessions is the one the import is narrowed to (``--sut``),
    else the suite's name.
    """

    def __init__(self, path: Path, *, grouping: Grouping | None = None, whole: bool = False) -> None:
        """Read ``path``; ``whole``: it is the whole import, so a file that is no report raises."""
        self.path = path
        self.grouping = grouping
        self.whole = whole

    @property
    def uri(self) -> str:
        return str(self.path)

    async def records(
        self, scope: Scope, limits: Limits, progress: ProgressCallback | None = None
    ) -> AsyncIterator[SourceItem]:
        def read() -> list[TestSession]:
            return list(read_junit(self.path, sut_name=scope.sut_name, grouping=self.grouping))

        try:
            sessions = await anyio.to_thread.run_sync(read)
        except InvalidDataError as exc:
            if self.whole:
                raise
            yield exc
            return
        except OSError as exc:
            raise file_error(exc, str(self.path)) from exc
        for session in sessions:
            yield session


class JUnitSink:
    """A JUnit XML report of the exported sessions, written whole or not at all."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def uri(self) -> str:
        return str(self.path)

    async def write(
        self, sessions: Sequence[EncodedSession], progress: ProgressCallback | None = None
    ) -> int:
        def decoded() -> list[TestSession]:
            return [TestSession.from_dict(json.loads(item.line)) for item in sessions]

        def write() -> None:
            ordered = sorted(decoded(), key=lambda s: (s.session_start_time, s.session_id))
            write_atomic(self.path, junit_pieces(ordered))

        await anyio.to_thread.run_sync(write)
        return len(sessions)
