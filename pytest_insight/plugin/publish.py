"""Saving the recorded session at the end of a run, within a deadline, and keeping it when that fails.

The end of a run reads the SUT's history for the known-flaky note (only when
tests failed) and saves the session, both on one event loop and both under
``--insight-publish-timeout`` (:data:`~pytest_insight.plugin.options.PUBLISH_TIMEOUT`
by default): the note may use at most half of it, the save the rest. A bucket
is opened with a short connect timeout and few attempts per request, so a
refused endpoint fails at once instead of after the library's ten attempts;
an endpoint that accepts connections and never answers is cut off by the
deadline, and each attempt of a request by a third of it (see
:func:`transport_limits`).

When a save to a remote storage fails or runs out of time, the session is
written as a bundle ``$PYTEST_INSIGHT_HOME/unsent/<session id>.jsonl.gz``,
which ``insight import`` takes later (the line printed says the command).
Nothing here raises for a storage's failure: it becomes the one line the
terminal summary prints, and the run's exit status is the caller's to decide.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from pytest_insight.errors import InsightError
from pytest_insight.model.sessions import TestOutcome, TestSession
from pytest_insight.plugin.settings import InsightSettings
from pytest_insight.storage.uris import local_store_path, split_uri, storage_schemes

if TYPE_CHECKING:
    from pytest_insight.core.storage import Storage
    from pytest_insight.storage.s3.config import TransportLimits

__all__ = ["CONNECT_TIMEOUT", "MAX_ATTEMPTS", "Published", "publish", "transport_limits", "unsent_directory"]

CONNECT_TIMEOUT = 2.0
"""Seconds to wait for a connection to a bucket at the end of a run (less when the deadline is short)."""

MAX_ATTEMPTS = 3
"""Attempts per request to a bucket at the end of a run: a refused connection is tried again twice."""

_REMOTE_SCHEMES = ("s3://",)
_FAILING = (TestOutcome.FAILED, TestOutcome.ERROR)


class Published(msgspec.Struct, frozen=True):
    """What became of a recorded session.

    Attributes:
        saved: whether the storage has it.
        line: the terminal summary's line saying where it went, or why not.
        flaky_note: the known-flaky line, when there is one.
    """

    saved: bool
    line: str
    flaky_note: str | None = None


def unsent_directory() -> Path:
    """Where sessions a remote storage did not take are kept: ``$PYTEST_INSIGHT_HOME/unsent``."""
    from pytest_insight.core.profiles import insight_home

    return insight_home() / "unsent"


def publish(recorded: TestSession, settings: InsightSettings, redactions: str = "") -> Published:
    """Save ``recorded`` to the storage ``settings`` name, within ``settings.publish_timeout``.

    Args:
        recorded: the session, already redacted.
        settings: the plugin's settings (destination, timeout, known-flaky note).
        redactions: what redaction replaced, for the saved line (``""`` for nothing).
    """
    try:
        uri, options = (settings.storage, {}) if settings.storage is not None else _configured(settings)
        root = None if options else local_store_path(str(uri))
    except (InsightError, OSError) as exc:
        return Published(False, _could_not_save(recorded, "", _reason(exc)))
    if root is not None:
        return _publish_locally(root, recorded, settings, redactions)
    from pytest_insight.core.storage import run_sync

    return run_sync(_publish, str(uri), options, recorded, settings, redactions)


def _configured(settings: InsightSettings) -> tuple[str, dict[str, Any]]:
    """The storage the profile, the environment or the default names (profiles load only for this)."""
    from pytest_insight.core.profiles import resolve_storage_uri

    return resolve_storage_uri(settings.profile)


def _publish_locally(
    root: Path, recorded: TestSession, settings: InsightSettings, redactions: str
) -> Published:
    """Save to a local store in this thread: no event loop, and only the store's writing part is loaded.

    The store's lock is waited for up to the deadline; the known-flaky note,
    when tests failed, reads the history through the storage API as a bucket's does.
    """
    from pytest_insight.storage.local.store import LocalBackend

    uri = f"file://{root.absolute()}"  # what the store's uri says, also when it cannot be opened
    note: str | None = None
    try:
        backend = LocalBackend(root, lock_timeout=settings.publish_timeout)
        if settings.flaky_note and _has_failures(recorded):
            from pytest_insight.core.storage import Storage, run_sync

            note = run_sync(_note_within, Storage(backend), recorded, settings.publish_timeout / 2)
        backend.save_recorded(recorded)
    except (InsightError, OSError) as exc:
        return Published(False, _could_not_save(recorded, uri, _reason(exc)))
    return _saved(uri, recorded, redactions, note)


def _open(uri: str, options: dict[str, Any], settings: InsightSettings) -> Storage:
    """The storage to save to; a bucket with the short connect timeout and few attempts of a run's end."""
    from pytest_insight.core.storage import Storage, open_storage

    scheme, rest = split_uri(uri, storage_schemes())
    if scheme != "s3":
        return open_storage(uri, **options)
    from pytest_insight.storage.s3 import S3Backend

    return Storage(S3Backend.from_uri(f"s3://{rest}", **options, transport=transport_limits(settings)))


def transport_limits(settings: InsightSettings) -> TransportLimits:
    """A bucket's limits at the end of a run: each attempt of a request gets a third of the deadline.

    obstore's calls run in worker threads, which the deadline can abandon
    but not stop, and the interpreter waits for them at exit: so a request
    in flight when the deadline passes must end soon after it by itself.
    """
    attempt = settings.publish_timeout / MAX_ATTEMPTS
    return {
        "connect_timeout": min(CONNECT_TIMEOUT, attempt),
        "request_timeout": attempt,
        "max_attempts": MAX_ATTEMPTS,
    }


async def _publish(
    uri: str, options: dict[str, Any], recorded: TestSession, settings: InsightSettings, redactions: str
) -> Published:
    note: str | None = None
    saved = False
    try:
        storage = _open(uri, options, settings)  # resolves the configuration; sends no request
        uri = storage.uri
        with anyio.move_on_after(settings.publish_timeout):
            if settings.flaky_note and _has_failures(recorded):
                note = await _note_within(storage, recorded, settings.publish_timeout / 2)
            await storage.save_recorded_session_async(recorded)
            saved = True
    except (InsightError, OSError) as exc:
        return await _not_saved(uri, recorded, settings, _reason(exc))
    if not saved:
        return await _not_saved(uri, recorded, settings, f"no answer within {settings.publish_timeout:g} s")
    return _saved(uri, recorded, redactions, note)


def _saved(uri: str, recorded: TestSession, redactions: str, note: str | None) -> Published:
    saved_what = f"session {recorded.session_id} ({len(recorded.test_results)} test results{redactions})"
    return Published(True, f"pytest-insight: saved {saved_what} to {uri}", note)


async def _note_within(storage: Storage, recorded: TestSession, seconds: float) -> str | None:
    """:func:`_flaky_note`, or None when it takes more than ``seconds``."""
    with anyio.move_on_after(seconds):
        return await _flaky_note(storage, recorded)
    return None


async def _flaky_note(storage: Storage, recorded: TestSession) -> str | None:
    """The known-flaky line for ``recorded``'s failures, or a line saying the history could not be read."""
    # the analyses are imported only when tests failed
    from pytest_insight.analysis.known_flaky import default_since, known_flaky_async, known_flaky_note

    failed = {r.test_id for r in recorded.test_results if r.outcome in _FAILING}  # a subtest by its own id
    since = default_since(recorded.session_start_time)
    try:
        flaky = await known_flaky_async(storage, recorded.sut_name, failed, since)
    except (InsightError, OSError) as exc:
        return f"pytest-insight: could not read the history for known flaky tests: {_reason(exc)}"
    return known_flaky_note(failed, flaky)


def _has_failures(recorded: TestSession) -> bool:
    return any(r.outcome in _FAILING for r in recorded.test_results)


async def _not_saved(uri: str, recorded: TestSession, settings: InsightSettings, reason: str) -> Published:
    """The one line of a failed save (no known-flaky note: its read failed or means little then)."""
    line = _could_not_save(recorded, uri, reason)
    if not uri.lower().startswith(_REMOTE_SCHEMES):  # a local store is not kept twice
        return Published(False, line)
    line = f"{line}; NOT saved there"
    try:
        kept = await _keep(recorded)
    except (InsightError, OSError) as exc:
        return Published(False, f"{line}, nor kept locally: {_reason(exc)}")
    target = f"--profile {settings.profile}" if settings.profile else f"--storage {uri}"
    return Published(False, f"{line}, kept in {kept} (insight import {kept.parent} {target})")


async def _keep(recorded: TestSession) -> Path:
    """Write ``recorded`` as a bundle in :func:`unsent_directory`; return the file's path."""
    from pytest_insight.core.storage import InMemoryStorage

    directory = unsent_directory()
    await anyio.Path(directory).mkdir(parents=True, exist_ok=True)
    path = directory / f"{recorded.session_id}.jsonl.gz"
    await InMemoryStorage().export_sessions_async(path, sessions=[recorded], redact=False)
    return path


def _could_not_save(recorded: TestSession, uri: str, reason: str) -> str:
    where = f" to {uri}" if uri else ""
    return f"pytest-insight: could not save session {recorded.session_id}{where}: {reason}"


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
