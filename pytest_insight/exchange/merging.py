"""Merging imported sessions into a target, batch by batch, under one strategy.

Merge semantics, per session id of the source, in source order:

- ``skip_existing``: an id already stored is skipped (its stored copy is never read).
- ``replace_existing``: an id stored with different content is replaced
  (``updated``); identical content is skipped.
- ``keep_both``: an id stored with different content is stored again as
  ``<id>-<n>`` (the first ``n`` free in the store and the batch); content
  identical to the stored session or to one of its suffixed copies is skipped.

"Identical" means equal canonical JSON without the session id. Each id of a
source is taken at most once (later duplicates meet what the first one left),
so re-running an import adds and updates nothing, under every strategy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from enum import StrEnum
from typing import TypedDict

from pytest_insight.errors import ConfigurationError, InvalidDataError, did_you_mean
from pytest_insight.format.bundle import content_digest
from pytest_insight.format.decoding import SessionLine
from pytest_insight.model.sessions import TestSession
from pytest_insight.progress import ProgressCallback
from pytest_insight.storage.base import Backend, Transaction

__all__ = ["MAX_ERROR_MESSAGES", "ImportStats", "MergeStrategy", "Merger", "parse_strategy"]

MAX_ERROR_MESSAGES = 1000
"""Error messages kept in the stats; ``errors`` still counts every one."""

_SUFFIX_PROBE = 8  # suffixed ids looked up at once by keep_both


class MergeStrategy(StrEnum):
    """How an import treats a session whose id is already stored."""

    SKIP_EXISTING = "skip_existing"
    REPLACE_EXISTING = "replace_existing"
    KEEP_BOTH = "keep_both"


class ImportStats(TypedDict):
    """What an import did. ``total == imported + skipped + errors``; ``imported == added + updated``."""

    total: int
    imported: int
    added: int
    updated: int
    skipped: int
    errors: int
    error_messages: list[str]


def parse_strategy(name: str) -> MergeStrategy:
    """Return the strategy named (any case, ``-`` or ``_``).

    Raises:
        ConfigurationError: an unknown name; the message lists the valid ones.
    """
    if isinstance(name, str):
        try:
            return MergeStrategy(name.strip().lower().replace("-", "_"))
        except ValueError:
            pass
    valid = [strategy.value for strategy in MergeStrategy]
    hint = did_you_mean(name, valid) if isinstance(name, str) else ""
    raise ConfigurationError(f"unknown merge strategy {name!r}{hint} (valid: {', '.join(valid)})")


class _Batch:
    """The target as one batch sees it: what was stored, overlaid by what the batch staged."""

    def __init__(
        self, transaction: Transaction, stored: dict[str, TestSession], stored_ids: Iterable[str] = ()
    ) -> None:
        self.transaction = transaction
        self.known: dict[str, TestSession | None] = dict(stored)
        self.stored_ids = set(stored_ids)  # stored, content not read (skip_existing needs no more)
        self.digests: dict[str, str] = {}
        self.new: dict[str, TestSession] = {}
        self.replacements: dict[str, TestSession] = {}

    def digest(self, session_id: str, session: TestSession) -> str:
        if session_id not in self.digests:
            self.digests[session_id] = content_digest(session)
        return self.digests[session_id]

    async def current(self, session_id: str, *, probe: bool = False) -> TestSession | None:
        if session_id not in self.known:
            if not probe:
                return None
            base, _, number = session_id.rpartition("-")
            wanted = [f"{base}-{int(number) + step}" for step in range(_SUFFIX_PROBE)]
            found = await self.transaction.lookup([sid for sid in wanted if sid not in self.known])
            for sid in wanted:
                self.known.setdefault(sid, found.get(sid))
        return self.known[session_id]

    def exists(self, session_id: str) -> bool:
        return session_id in self.stored_ids or self.known.get(session_id) is not None

    def stage(self, session: TestSession, *, replace: bool) -> None:
        (self.replacements if replace else self.new)[session.session_id] = session
        self.known[session.session_id] = session
        self.digests.pop(session.session_id, None)


class Merger:
    """Applies one strategy batch after batch and keeps the stats."""

    def __init__(self, target: Backend, strategy: MergeStrategy) -> None:
        self.target = target
        self.strategy = strategy
        self.seen: set[str] = set()
        self.merged = 0
        self.stats = ImportStats(
            total=0, imported=0, added=0, updated=0, skipped=0, errors=0, error_messages=[]
        )

    def error(self, message: str) -> None:
        self.stats["total"] += 1
        self._note_error(message)

    def _note_error(self, message: str) -> None:
        self.stats["errors"] += 1
        messages = self.stats["error_messages"]
        if len(messages) < MAX_ERROR_MESSAGES:
            messages.append(message)
        elif len(messages) == MAX_ERROR_MESSAGES:
            messages.append(f"... further errors not listed (limit {MAX_ERROR_MESSAGES})")

    async def merge(self, items: list[SessionLine | TestSession], progress: ProgressCallback | None) -> None:
        added = updated = skipped = 0
        failed: list[str] = []
        sessions = [item.session if isinstance(item, SessionLine) else item for item in items]
        # by object identity: an incoming session staged as it came keeps its line, a renamed copy does not
        lines = {id(item.session): item.line for item in items if isinstance(item, SessionLine)}

        def lines_of(staged: Iterable[TestSession]) -> dict[str, bytes]:
            return {s.session_id: lines[id(s)] for s in staged if id(s) in lines}

        async with self.target.transaction() as transaction:
            ids = {session.session_id for session in sessions}
            if self.strategy is MergeStrategy.SKIP_EXISTING:
                batch = _Batch(transaction, {}, await transaction.stored_ids(ids))
            else:
                batch = _Batch(transaction, await transaction.lookup(ids))
            for session in sessions:
                try:
                    outcome = await self._decide(session, batch)
                except InvalidDataError as exc:  # e.g. a keep_both copy's id would be too long
                    sid = session.session_id
                    shown = sid if len(sid) <= 64 else sid[:60] + "..."
                    failed.append(f"session {shown!r}: {exc}")
                    continue
                added += outcome == "added"
                updated += outcome == "updated"
                skipped += outcome == "skipped"
            if batch.new:
                await transaction.put(list(batch.new.values()), lines=lines_of(batch.new.values()))
            if batch.replacements:
                replacing = batch.replacements.values()
                await transaction.put(list(replacing), replace=True, lines=lines_of(replacing))
        # counted only once the batch is committed
        self.stats["total"] += len(sessions)
        for message in failed:
            self._note_error(message)
        self.stats["added"] += added
        self.stats["updated"] += updated
        self.stats["imported"] += added + updated
        self.stats["skipped"] += skipped
        self.merged += len(sessions)
        if progress is not None:
            progress("merge", self.merged, None)

    async def _decide(self, session: TestSession, batch: _Batch) -> str:
        sid = session.session_id
        first = sid not in self.seen
        self.seen.add(sid)
        if self.strategy is MergeStrategy.SKIP_EXISTING:
            if batch.exists(sid):
                return "skipped"
            batch.stage(session, replace=False)
            return "added"
        current = await batch.current(sid)
        if current is None:
            batch.stage(session, replace=False)
            return "added"
        digest = content_digest(session)
        if digest == batch.digest(sid, current):
            return "skipped"
        if self.strategy is MergeStrategy.REPLACE_EXISTING:
            if not first:
                return "skipped"
            batch.stage(session, replace=True)
            return "updated"
        number = 1
        while True:
            candidate = f"{sid}-{number}"
            copy = await batch.current(candidate, probe=True)
            if copy is None:
                batch.stage(dataclasses.replace(session, session_id=candidate), replace=False)
                return "added"
            if batch.digest(candidate, copy) == digest:
                return "skipped"
            number += 1
