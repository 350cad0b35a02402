"""What redaction costs: seconds per MB of captured output, clean and with secrets in it.

Run with ``python -m tests.bench.redaction``. The clean case is the common
one (one combined pattern finds nothing and the text is returned as it is);
the dirty case has a secret every 4 KB, so every kind's pattern runs.
"""

from __future__ import annotations

import time

from pytest_insight.exchange.redaction import Redactor

__all__ = ["main"]

_LINE = "2026-12-05 10:15:02 INFO app.checkout: order 4411 paid in 0.231 s, 3 items, total 41.90 EUR\n"
_SECRET = "Authorization: Bearer abcdef0123456789.ghijkl\n"


def _megabytes(text: str) -> float:
    return len(text.encode()) / 1e6


def main() -> int:
    """Print the throughput of :meth:`Redactor.text` on 8 MB of each kind of output."""
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
