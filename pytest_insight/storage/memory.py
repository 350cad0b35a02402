"""A backend that keeps sessions in a dict: for tests, demos and scratch work."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager

import anyio

from pytest_insight.errors import SessionExistsError
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.scope import EVERYTHING, Scope

__all__ = ["MemoryBackend"]


class MemoryBackend:
    """Sessions in process memory; gone when the process ends.

    Sessions are copied on the way in and out, so callers never share
    mutable state with the store.
    """

    def __init__(self, sessions: Iterable[TestSession] = (), *, name: str = "") -> None:
        self._sessions: dict[str, TestSession] = {}
        self._lock = anyio.Lock()
        self._name = name
        for session in sessions:
            if session.session_id in self._sessions:
                raise SessionExistsError(session.session_id)
            self._sessions[session.session_id] = copy.deepcopy(session)

    @property
    def uri(self) -> str:
        return f"memory://{self._name}"

    async def scan(self, scope: Scope = EVERYTHING) -> AsyncIterator[TestSession]:
        for session in list(self._sessions.values()):
            if scope.admits(session):
                yield copy.deepcopy(session)

    async def get(self, session_id: str) -> TestSession | None:
        session = self._sessions.get(session_id)
        return copy.deepcopy(session) if session is not None else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_MemoryTransaction]:
        async with self._lock:
            transaction = _MemoryTransaction(self._sessions)
            yield transaction
            transaction.commit()


class _MemoryTransaction:
    def __init__(self, sessions: dict[str, TestSession]) -> None:
        self._sessions = sessions
        self._puts: dict[str, TestSession] = {}
        self._deletes: set[str] = set()
        self._delete_all = False

    async def lookup(self, session_ids: Collection[str]) -> dict[str, TestSession]:
        return {sid: copy.deepcopy(self._sessions[sid]) for sid in session_ids if sid in self._sessions}

    async def stored_ids(self, session_ids: Collection[str]) -> set[str]:
        return {sid for sid in session_ids if sid in self._sessions}

    async def put(
        self,
        sessions: Sequence[TestSession],
        *,
        replace: bool = False,
        lines: Mapping[str, bytes] | None = None,  # unused: sessions are kept as objects
        minted: bool = False,  # unused: looking costs nothing here
    ) -> None:
        if not replace:
            for session in sessions:
                sid = session.session_id
                if sid in self._puts or (sid in self._sessions and sid not in self._deletes):
                    raise SessionExistsError(sid)
        staged: dict[str, TestSession] = {}
        for session in sessions:
            if not replace and session.session_id in staged:
                raise SessionExistsError(session.session_id)
            staged[session.session_id] = copy.deepcopy(session)
        self._puts.update(staged)

    async def delete(self, session_ids: Collection[str] | None = None) -> int:
        if session_ids is None:
            self._delete_all = True
            self._deletes = set(self._sessions)
            return len(self._sessions)
        present = {sid for sid in session_ids if sid in self._sessions}
        self._deletes |= present
        return len(present)

    def commit(self) -> None:
        if self._delete_all:
            self._sessions.clear()
        for sid in self._deletes:
            self._sessions.pop(sid, None)
        self._sessions.update(self._puts)
