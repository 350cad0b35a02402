"""What redaction costs: seconds per MB of captured output, clean and with secrets in it.

Run with ``python -m tests.bench.redaction``. The clean case is the common
one (one combined pattern finds nothing and the text is returned as it is);
the dirty case has a secret every 4 KB, so every kind's pattern runs.

Then what an export pays a stored session (:meth:`Redactor.redacted_line`),
on sessions shaped like real ones (:mod:`tests.bench.shapes`) of 40 and of
1,000 results: as generated, their tracebacks list ``token = <value>``
locals, which the ``password`` kind takes for secrets; "clean" is the same
output without them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from pytest_insight.exchange.redaction import Redactor
from pytest_insight.format.bundle import encode_session
from pytest_insight.model.sessions import TestSession
from tests.bench.shapes import real_session

__all__ = ["main"]

_LINE = "2026-12-05 10:15:02 INFO app.checkout: order 4411 paid in 0.231 s, 3 items, total 41.90 EUR\n"
_SECRET = "Authorization: Bearer abcdef0123456789.ghijkl\n"


def _megabytes(text: str) -> float:
    return len(text.encode()) / 1e6


def main() -> int:
    """Print the throughput of :meth:`Redactor.text` on 8 MB of each kind of output, then an export's cost."""
    clean = _LINE * (8_000_000 // len(_LINE))
    dirty = (_LINE * 40 + _SECRET) * (8_000_000 // (len(_LINE) * 40 + len(_SECRET)))
    for name, text in (("clean", clean), ("a secret every 4 KB", dirty)):
        # pytest captures output per test: redact it in pieces of the size a test prints
        pieces = [text[i : i + 16_384] for i in range(0, len(text), 16_384)]
        redactor = Redactor()
        began = time.perf_counter()
        for piece in pieces:
            redactor.text(piece)
        took = time.perf_counter() - began
        size = _megabytes(text)
        print(
            f"{name:<20} {size:5.1f} MB  {1000 * took / size:7.2f} ms/MB  {redactor.total} redacted",
            flush=True,
        )
    for results, count in ((40, 400), (1000, 20)):
        for without_locals in (False, True):
            sessions = [_shaped(n, results, clean=without_locals) for n in range(count)]
            lines = [encode_session(session).line for session in sessions]
            redactor = Redactor()
            began = time.perf_counter()
            for line in lines:
                redactor.redacted_line(line)
            took = time.perf_counter() - began
            name = f"export, {results} results{', clean' if without_locals else ''}"
            print(
                f"{name:<28} {1000 * took / count:6.2f} ms a session  "
                f"{1000 * took / (sum(map(len, lines)) / 1e6):7.2f} ms/MB  {redactor.total} redacted",
                flush=True,
            )
    return 0


def _shaped(number: int, results: int, *, clean: bool) -> TestSession:
    session = real_session(
        f"s{number}", "svc", datetime(2026, 1, 1, tzinfo=UTC), results=results, seed=number
    )
    if clean:
        for result in session.test_results:
            result.longreprtext = result.longreprtext.replace("token", "tok")
            result.capstdout = result.capstdout.replace("token", "tok")
            result.caplog = result.caplog.replace("token", "tok")
    return session


if __name__ == "__main__":
    raise SystemExit(main())
