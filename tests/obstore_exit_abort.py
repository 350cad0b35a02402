"""Reproducer: obstore's ``*_async`` calls can abort the process (SIGABRT) as it exits.

Run ``python -m tests.obstore_exit_abort --runs 100`` (no server needed: it
uses obstore's in-process ``MemoryStore``). Each run is a fresh interpreter
that makes 256 GETs, 16 at a time, *awaits every one of them*, and exits
normally. ``--mode async`` uses ``get_async`` / ``bytes_async``; ``--mode
thread`` (what the S3 backend does) runs the blocking ``get`` in anyio
worker threads. The output counts the runs per exit status.

What happens (obstore 0.12.1, pyo3-async-runtimes 0.30, CPython 3.11; a
core dump's backtrace shows it): an awaitable from ``future_into_py`` is
completed from a thread of tokio's blocking pool, which takes the GIL and
calls ``loop.call_soon_threadsafe``. That call queues the callback and then
writes a byte to the loop's self-pipe with the GIL released. The loop may run
the callback before the write returns, so the awaiting coroutine, the
``anyio.run`` and the program can end while that thread still has to take
the GIL back. Once the interpreter is finalizing, taking the GIL calls
``PyThread_exit_thread`` (``pthread_exit``); the forced unwind meets Rust
frames that cannot unwind, and the process aborts. Awaiting every future does
not help: the race is after the result is delivered. A cancelled future has
the same window (its Rust task still takes the GIL to check ``cancelled()``).
CPython 3.14 parks such a thread instead of exiting it (gh-87135), so the
abort is specific to 3.13 and older. Blocking calls made from Python
threads do not have this: anyio's worker threads are joined before the
interpreter finalizes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter

__all__ = ["main"]

KEYS = 64
GETS = 256
AT_ONCE = 16


def _child(mode: str) -> None:
    import anyio
    import anyio.to_thread
    import obstore
    from obstore.store import MemoryStore

    store = MemoryStore()
    for number in range(KEYS):
        obstore.put(store, f"k{number}", b"x" * 8192)

    def blocking_get(key: str) -> bytes:
        return bytes(obstore.get(store, key).bytes())

    async def get(key: str, limiter: anyio.CapacityLimiter) -> None:
        async with limiter:
            if mode == "async":
                result = await obstore.get_async(store, key)
                bytes(await result.bytes_async())
            else:
                await anyio.to_thread.run_sync(blocking_get, key)

    async def run() -> None:
        limiter = anyio.CapacityLimiter(AT_ONCE)
        async with anyio.create_task_group() as group:
            for number in range(GETS):
                group.start_soon(get, f"k{number % KEYS}", limiter)

    anyio.run(run)


def main(argv: list[str] | None = None) -> None:
    """Run the child ``--runs`` times and print how many runs ended with each exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["async", "thread"], default="async")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        _child(options.mode)
        return
    command = [sys.executable, "-m", "tests.obstore_exit_abort", "--child", "--mode", options.mode]
    statuses: Counter[int] = Counter()
    for _ in range(options.runs):
        statuses[subprocess.run(command, capture_output=True, check=False).returncode] += 1
    aborted = statuses[-6]
    print(f"{options.mode}: {options.runs} runs, exit statuses {dict(statuses)}, {aborted} aborted (SIGABRT)")


if __name__ == "__main__":
    main()
