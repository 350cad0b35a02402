"""The local store's transactions: stage session files or packs, then commit them through the journal."""

from __future__ import annotations

import functools
import shutil
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_insight.errors import SessionExistsError
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.local import journal, packs
from pytest_insight.storage.local.session_files import encode_file, session_file_name

if TYPE_CHECKING:
    from pytest_insight.storage.local.store import LocalBackend

__all__ = ["LocalTransaction"]


class LocalTransaction:
    """Stages puts in a private staging directory, deletes as a plan; commits through its marker.

    Runs under the store's lock (see :class:`~pytest_insight.storage.local.store.LocalBackend`),
    so where each stored session is cannot change while it is open.
    """

    def __init__(self, backend: LocalBackend) -> None:
        self._backend = backend
        self._staging = backend.staging_dir / uuid.uuid4().hex
        self._pending: dict[str, tuple[bytes, packs.Key]] = {}  # lines put, until enough for a pack
        self._writers: list[packs.PackWriter] = []  # the staged packs, the last one open
        self._staged: dict[str, packs.PackWriter | None] = {}  # every name put: its staged pack
        self._loose: set[str] = set()  # names located: stored as a session file
        self._packed: dict[str, str] = {}  # names located: stored in this pack
        self._located: set[str] = set()
        self._deletes: set[str] = set()  # session files to unlink
        self._drops: dict[str, set[str]] = {}  # pack -> the names it loses
        self._everything = False  # delete() of every session: every pack goes
        self._committing = False

    # -- where stored sessions are ----------------------------------------------

    def _locate(self, names: Iterable[str], in_packs: bool = True) -> None:
        backend = self._backend
        unknown = [name for name in dict.fromkeys(names) if name not in self._located]
        self._loose.update(name for name in unknown if backend.session_path(name).exists())
        if in_packs:
            for pack in backend.shelf.names():
                self._packed.update((name, pack) for name in backend.shelf.holding(pack, unknown) or ())
            self._located.update(unknown)

    def _removed(self, name: str) -> bool:
        pack = self._packed.get(name)
        gone_from_pack = pack is None or self._everything or name in self._drops.get(pack, ())
        return gone_from_pack and (name not in self._loose or name in self._deletes)

    def _stored(self, name: str) -> bool:
        return (name in self._loose or name in self._packed) and not self._removed(name)

    async def lookup(self, session_ids: Collection[str]) -> dict[str, TestSession]:
        backend = self._backend
        names = {session_file_name(sid): sid for sid in session_ids}
        await backend.in_thread(self._locate, names)
        found: dict[str, TestSession] = {}
        loose = [backend.session_path(name) for name in names if name in self._loose]
        for session in await backend.in_thread(backend.read_files, loose):
            found[session.session_id] = session
        by_pack: dict[str, list[str]] = {}
        for name in names:
            if name not in self._loose and name in self._packed:
                by_pack.setdefault(self._packed[name], []).append(name)
        for pack, wanted in by_pack.items():
            for _, session, _ in await backend.in_thread(backend.shelf.read, pack, wanted) or ():
                found[session.session_id] = session
        return found

    async def stored_ids(self, session_ids: Collection[str]) -> set[str]:
        names = {session_file_name(sid): sid for sid in session_ids}
        await self._backend.in_thread(self._locate, names)
        return {sid for name, sid in names.items() if name in self._loose or name in self._packed}

    # -- changes -------------------------------------------------------------------

    async def put(
        self,
        sessions: Sequence[TestSession],
        *,
        replace: bool = False,
        lines: Mapping[str, bytes] | None = None,
        minted: bool = False,
    ) -> None:
        put = functools.partial(self.put_now, sessions, replace=replace, lines=lines, minted=minted)
        await self._backend.in_thread(put)

    def put_now(
        self,
        sessions: Sequence[TestSession],
        *,
        replace: bool = False,
        lines: Mapping[str, bytes] | None = None,
        minted: bool = False,
    ) -> None:
        """:meth:`put` in the calling thread (it blocks on the filesystem)."""
        batch: dict[str, tuple[bytes, packs.Key]] = {}
        for session in sessions:
            name = session_file_name(session.session_id)
            if not replace and (name in batch or name in self._staged):
                raise SessionExistsError(session.session_id)
            line = lines.get(session.session_id) if lines else None
            key = packs.Key(session.session_id, session.sut_name, session.session_start_time)
            batch[name] = (encode_file(session).removesuffix(b"\n") if line is None else line, key)
        # A minted id cannot be stored yet; its file is still looked for, as that costs one stat.
        self._locate(batch, replace or not minted)
        for name in batch:
            if not replace and self._stored(name):
                raise SessionExistsError(batch[name][1].session_id)
            if name in self._packed:
                self._drops.setdefault(self._packed[name], set()).add(name)
        self._stage(batch)

    def _stage(self, batch: Mapping[str, tuple[bytes, packs.Key]]) -> None:
        for name in batch:
            earlier = self._staged.get(name)
            if earlier is not None:  # put again: its new line goes into the open pack
                earlier.forget(name)
            self._staged[name] = None
        self._pending.update(batch)
        if not self._pending or (not self._writers and len(self._staged) < self._backend.pack_from):
            return
        self._staging.mkdir(parents=True, exist_ok=True)
        if not self._writers or self._writers[-1].size >= packs.PACK_BYTES:
            self._writers.append(packs.PackWriter(self._staging / packs.new_pack_name()))
        writer = self._writers[-1]
        writer.append((name, line, key) for name, (line, key) in self._pending.items())
        self._staged.update(dict.fromkeys(self._pending, writer))
        self._pending.clear()

    async def delete(self, session_ids: Collection[str] | None = None) -> int:
        backend = self._backend
        if session_ids is None:
            return await backend.in_thread(self._delete_everything)
        names = [session_file_name(sid) for sid in dict.fromkeys(session_ids)]
        await backend.in_thread(self._locate, names)
        present = [name for name in names if self._stored(name)]
        for name in present:
            if name in self._loose:
                self._deletes.add(name)
            if name in self._packed:
                self._drops.setdefault(self._packed[name], set()).add(name)
        return len(present)

    def _delete_everything(self) -> int:
        backend = self._backend
        names = {path.name for path in backend.list_files()} - self._deletes
        self._deletes |= names
        for pack in () if self._everything else backend.shelf.names():
            names |= (backend.shelf.members(pack) or frozenset()) - self._drops.get(pack, set())
        self._everything = True
        return len(names)

    # -- commit --------------------------------------------------------------------

    def commit(self) -> None:
        """Write the marker (the commit point), then roll forward. Runs in a worker thread."""
        durable = self._backend.durable
        if self._writers:
            self._stage({})
            for writer in self._writers:
                writer.finish(durable)
            puts: list[str] = []
            deletes = self._deletes | (self._staged.keys() & self._loose)
            new_packs = [writer.path.name for writer in self._writers if len(writer)]
        else:
            puts = sorted(self._pending)
            for name in puts:
                journal.write_file(self._staging_dir() / name, self._pending[name][0] + b"\n", durable)
            deletes = self._deletes - self._staged.keys()  # a put replaces the file anyway
            new_packs = []
        drops = self._rewrite_packs(new_packs)
        plan = journal.Plan(put=puts, delete=sorted(deletes), packs=new_packs, drop=drops)
        if not plan:
            self.discard()
            return
        if plan.delete or plan.packs or plan.drop or len(plan.put) > 1:  # one rename is atomic by itself
            journal.write_marker(self._staging, plan, durable)
            self._committing = True
        journal.roll_forward(self._staging, plan, self._backend.places, durable)

    def _staging_dir(self) -> Path:
        self._staging.mkdir(parents=True, exist_ok=True)
        return self._staging

    def _rewrite_packs(self, new_packs: list[str]) -> list[str]:
        """Write the survivors of each pack that loses sessions into a new pack; return the packs to drop."""
        backend = self._backend
        losing = backend.shelf.names() if self._everything else sorted(self._drops)
        if self._everything:
            return losing
        for pack in losing:
            index = backend.shelf.index(pack) or {}
            survivors = [name for name in index if name not in self._drops[pack] and name not in self._staged]
            if not survivors:
                continue
            writer = packs.PackWriter(self._staging_dir() / packs.new_pack_name())
            try:
                lines = packs.read_lines(backend.packs_dir / pack, index, survivors)
                writer.append((name, line, index[name].key) for name, line in lines)
                writer.finish(backend.durable)
            finally:
                writer.close()
            new_packs.append(writer.path.name)
        return losing

    def discard(self) -> None:
        """Drop the staged files, unless the commit point was passed (then recovery finishes it)."""
        for writer in self._writers:
            writer.close()
        if not self._committing and self._staging.exists():
            shutil.rmtree(self._staging)
