"""Decoding and summarising sessions shaped like real ones, beside the ways they would otherwise go.

Run with ``python -m tests.bench.decode [--sessions 200] [--results 1000] [--rounds 5]
[--big-mb 100]``. Prints the best time over the rounds, in ms per session, for:

- ``decode``: a bundle line to a ``TestSession`` through :class:`BundleDecoder`
  (the msgspec schema of :mod:`pytest_insight.model.schema`), beside the same
  lines through ``json.loads`` and the lenient reader (``TestSession.from_dict``),
  which is what a line that is not canonical costs;
- ``encode``: a session to its canonical bundle line (``encode_session``);
- ``summarize``: the counts and the three rankings of ``insight summary`` in
  one call, beside ``outcome_counts``, ``failing_tests``, ``slowest_tests``
  and ``flaky_tests`` called one after the other.

Then the time and size of gzip levels (zlib 6 and 1, ISA-L 1 to 3; bundles
use ISA-L 2) on real-shaped sessions, and one bundle of ``--big-mb`` megabytes of real-shaped sessions
(``tests/bench/shapes.py``), as ``compact`` and day exports make them, given
whole as a download gives it: seconds to inflate it alone
(:class:`~pytest_insight.format.compression.Gunzip`), and to decode and verify
it as an S3 import does (``decode_verified``): both linear in its size.

Everything runs under ``insight``'s garbage-collection policy
(:func:`~pytest_insight.cli.main.rare_full_collections`), and each step keeps
what it decodes, as an import batch or a query does.
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import partial

from pytest_insight.cli.main import rare_full_collections
from pytest_insight.format.bundle import EncodedSession, encode_bundle, encode_session
from pytest_insight.format.compression import Gunzip
from pytest_insight.format.decoding import BundleDecoder, Limits
from pytest_insight.model.sessions import TestSession
from pytest_insight.query.summary import failing_tests, flaky_tests, outcome_counts, slowest_tests, summarize
from pytest_insight.storage.s3.codec import decode_verified
from tests.bench.shapes import real_session
from tests.conftest import BASE_TIME, build_session

__all__ = ["main"]


def _best(rounds: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: Sequence[str] | None = None) -> None:
    """Time each step and print one line per step and peer."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--results", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--big-mb", type=int, default=100, help="size of the one large bundle, uncompressed")
    options = parser.parse_args(argv)
    sessions = [
        build_session(f"bench-{n:05d}", start=BASE_TIME + timedelta(minutes=n), tests=options.results)
        for n in range(options.sessions)
    ]
    lines = [encode_session(session).line for session in sessions]
    data = b"\n".join(lines) + b"\n"

    def ours() -> None:
        decoded = list(BundleDecoder("bench", compressed=False).feed(data))
        assert len(decoded) == len(sessions)

    def standard() -> None:  # keeps what it decodes, as ``ours`` does: the collector sees as many objects
        decoded = [TestSession.from_dict(json.loads(line.decode())) for line in lines]
        assert len(decoded) == len(sessions)

    def separately() -> None:
        outcome_counts(sessions)
        failing_tests(sessions)
        slowest_tests(sessions)
        flaky_tests(sessions)

    rows = [
        ("decode (msgspec schema)", ours, "json.loads + from_dict", standard),
        ("encode", lambda: [encode_session(s) for s in sessions], None, None),
        ("summarize", lambda: summarize(sessions), "the four summaries", separately),
    ]
    per = 1e3 / len(sessions)
    print(f"{len(sessions)} sessions of {options.results} results, best of {options.rounds} rounds")
    print(f"{'step':<28}{'ms/session':>11}   {'peer':<26}{'ms/session':>11}{'speed-up':>10}")
    with rare_full_collections():  # as ``insight`` runs
        for name, work, peer_name, peer in rows:
            ours_ms = _best(options.rounds, work) * per
            if peer is None or peer_name is None:
                print(f"{name:<28}{ours_ms:>11.2f}")
                continue
            peer_ms = _best(options.rounds, peer) * per
            print(f"{name:<28}{ours_ms:>11.2f}   {peer_name:<26}{peer_ms:>11.2f}{peer_ms / ours_ms:>9.2f}x")
        _compression(options.rounds)
        _big_bundle(options.big_mb)


def _compression(rounds: int) -> None:
    """Time and size of gzip levels on one real-shaped session and on four sessions of 40 results."""
    from isal import igzip

    shapes = {
        "real-shaped, 1,000 results": encode_session(real_session("c-0", "api", BASE_TIME, 1000)).line,
        "4 sessions of 40 results": b"\n".join(
            encode_session(real_session(f"c-{n}", "api", BASE_TIME, 40)).line for n in range(4)
        ),
    }
    levels: list[tuple[str, Callable[[bytes], bytes]]] = [
        ("zlib 6", lambda raw: zlib.compress(raw, 6, wbits=31)),
        ("zlib 1", lambda raw: zlib.compress(raw, 1, wbits=31)),
        *((f"isal {n}", lambda raw, n=n: igzip.compress(raw, n, mtime=0)) for n in (1, 2, 3)),
    ]
    for name, raw in shapes.items():
        cells = []
        for label, compress in levels:
            seconds = _best(rounds, partial(compress, raw))
            cells.append(f"{label} {seconds * 1e3:.2f} ms {len(compress(raw)) / len(raw):.1%}")
        print(f"gzip of {name} ({len(raw) / 1e3:.0f} KB): {', '.join(cells)}")


def _big_bundle(megabytes: int) -> None:
    """Time inflating, and decoding with verification, one bundle of ``megabytes`` MB (uncompressed)."""
    lines: list[bytes] = []
    size = number = 0
    while size < megabytes * 1_000_000:
        start = BASE_TIME + timedelta(minutes=number)
        line = encode_session(real_session(f"big-{number:04d}", "checkout-api", start, 1000)).line + b"\n"
        lines.append(line)
        size += len(line)
        number += 1
    bundle = encode_bundle(
        [EncodedSession("checkout-api", BASE_TIME, f"big-{n:04d}", line[:-1]) for n, line in enumerate(lines)]
    )
    del lines
    started = time.perf_counter()
    inflated = sum(len(piece) for piece in Gunzip().feed(bundle.data))
    inflate = time.perf_counter() - started
    started = time.perf_counter()
    sessions, _, errors = decode_verified(bundle.data, "bench", bundle.bundle_id, Limits())
    decode = time.perf_counter() - started
    if inflated != size or len(sessions) != number or errors:
        raise SystemExit(f"the large bundle did not decode whole: {errors[:1]}")
    print(
        f"one bundle of {size / 1e6:.0f} MB ({len(bundle.data) / 1e6:.0f} MB gzipped, {number} sessions): "
        f"inflate {inflate:.2f} s, decode and verify {decode:.2f} s",
        f"({decode / number * 1e3:.1f} ms a session)",
    )


if __name__ == "__main__":
    main()
