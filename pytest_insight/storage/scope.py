"""Which sessions an operation is about: :class:`Scope`, a SUT and a start-time window.

Apart from the backend protocols (:mod:`pytest_insight.storage.base`), so
that what only needs a scope, such as saving a run's session, does not load them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from pytest_insight.model.sessions import TestSession, to_utc

__all__ = ["EVERYTHING", "Scope"]


@dataclass(frozen=True, slots=True)
class Scope:
    """Which sessions an operation is about: a SUT and a start-time window.

    Backends may use it to read less (an S3 backend narrows its listing to
    the SUT's and dates' key prefixes) but may also return sessions outside
    it; callers that need an exact answer check :meth:`admits`.

    Attributes:
        sut_name: only sessions of this SUT, or all SUTs when None.
        since: only sessions that started at or after this time.
        until: only sessions that started strictly before this time.
    """

    sut_name: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.since is not None:
            object.__setattr__(self, "since", to_utc(self.since))
        if self.until is not None:
            object.__setattr__(self, "until", to_utc(self.until))

    @classmethod
    def of_day(cls, day: date, sut_name: str | None = None) -> Scope:
        """The sessions that started on one UTC day (of one SUT, when given)."""
        since = datetime.combine(day, time.min, UTC)
        return cls(sut_name=sut_name, since=since, until=since + timedelta(days=1))

    @property
    def is_everything(self) -> bool:
        """True when the scope selects every session."""
        return self.sut_name is None and self.since is None and self.until is None

    def admits(self, session: TestSession) -> bool:
        """Return whether ``session`` lies inside this scope."""
        return self.admits_key(session.sut_name, session.session_start_time)

    def admits_key(self, sut_name: str, start: datetime) -> bool:
        """Return whether a session of ``sut_name`` that started at ``start`` lies inside this scope."""
        if self.sut_name is not None and sut_name != self.sut_name:
            return False
        if self.since is not None and start < self.since:
            return False
        return self.until is None or start < self.until


EVERYTHING = Scope()
"""The scope of every session."""
