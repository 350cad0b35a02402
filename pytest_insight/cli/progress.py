"""A one-line progress bar on stderr, driven by the library's progress callback.

The library reports ``(phase, done, total)`` (see
:class:`pytest_insight.progress.ProgressCallback`); the bar redraws one
terminal line at most ten times a second, and draws nothing at all when its
stream is not a terminal, so piped or logged output stays clean.
"""

from __future__ import annotations

import shutil
import threading
import time
from typing import TextIO

__all__ = ["ProgressBar"]

_REDRAW_SECONDS = 0.1
_CLEAR_LINE = "\r\x1b[K"


class ProgressBar:
    """Draws ``phase [#####.....] done/total`` on a terminal stream.

    An instance is a :class:`~pytest_insight.progress.ProgressCallback`;
    it may be called from worker threads. Call :meth:`close` when the
    operation ends (also as a context manager) to erase the line.

    Attributes:
        enabled: whether the stream is a terminal; when False every call is a no-op.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.enabled = _is_terminal(stream)
        self._lock = threading.Lock()
        self._last_draw = float("-inf")
        self._last_phase: str | None = None
        self._drawn = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        """Record progress; redraws when enough time passed, the phase changed or work is complete."""
        if not self.enabled:
            return
        with self._lock:
            now = time.monotonic()
            finished = total is not None and done >= total
            if phase == self._last_phase and not finished and now - self._last_draw < _REDRAW_SECONDS:
                return
            self._last_phase = phase
            self._last_draw = now
            self._stream.write(_CLEAR_LINE + self.render(phase, done, total))
            self._stream.flush()
            self._drawn = True

    def render(self, phase: str, done: int, total: int | None) -> str:
        """The text of the bar for this state, fitted to the terminal width."""
        columns = shutil.get_terminal_size((80, 24)).columns
        label = f"{phase:<9}"
        if total is None or total <= 0:
            return f"{label} {done}"[: columns - 1]
        count = f" {done}/{total}"
        room = max(columns - len(label) - len(count) - 4, 10)
        filled = min(room, room * max(done, 0) // total)
        return f"{label} [{'#' * filled}{'.' * (room - filled)}]{count}"

    def close(self) -> None:
        """Erase the bar's line so the result that follows starts clean."""
        with self._lock:
            if self._drawn:
                self._stream.write(_CLEAR_LINE)
                self._stream.flush()
                self._drawn = False


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except ValueError:  # a closed stream is not a terminal
        return False
