"""Sessions shaped like real ones, for the benchmarks: what CI runs of a sizeable suite record.

:func:`real_session` builds a session of many results: most pass quickly,
a few fail with a long traceback (4-12 KB of ``longreprtext``), some print
log lines that pytest captured (``capstdout``, ``caplog``), some skip with a
reason. The text is made of words, paths and numbers, as captured output is,
so it compresses as real output does (random bytes would not). Deterministic
in its arguments.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from pytest_insight.model.sessions import TestOutcome, TestResult, TestSession

__all__ = ["real_session"]

_WORDS = [
    "request",
    "response",
    "timeout",
    "retry",
    "connection",
    "pool",
    "session",
    "user",
    "order",
    "payment",
    "cart",
    "item",
    "database",
    "query",
    "commit",
    "rollback",
    "cache",
    "miss",
    "hit",
    "token",
    "expired",
    "refresh",
    "header",
    "status",
    "created",
    "updated",
    "deleted",
    "queue",
    "message",
    "consumer",
    "producer",
    "worker",
    "thread",
    "lock",
    "acquired",
]
_OUTCOMES = [TestOutcome.PASSED] * 90 + [TestOutcome.FAILED] * 4 + [TestOutcome.SKIPPED] * 4
_OUTCOMES += [TestOutcome.XFAILED, TestOutcome.ERROR]


def _log_line(rng: random.Random, when: datetime, module: str) -> str:
    words = " ".join(rng.choices(_WORDS, k=rng.randint(4, 12)))
    level = rng.choice(("INFO", "INFO", "DEBUG", "WARNING"))
    stamp = f"{when:%Y-%m-%d %H:%M:%S},{rng.randint(0, 999):03d}"
    return f"{stamp} {level} {module}: {words} id={rng.getrandbits(32):08x}"


def _traceback(rng: random.Random, module: str, test: str) -> str:
    frames = []
    for depth in range(rng.randint(6, 16)):
        path = f"src/app/{rng.choice(_WORDS)}/{rng.choice(_WORDS)}.py"
        code = " ".join(rng.choices(_WORDS, k=rng.randint(3, 8)))
        frames.append(
            f"{path}:{rng.randint(10, 900)}: in {rng.choice(_WORDS)}_{depth}\n"
            f"    result = self.{rng.choice(_WORDS)}({code.replace(' ', ', ')})\n"
            + "".join(
                f"    {rng.choice(_WORDS)} = {rng.randint(0, 10**6)}\n" for _ in range(rng.randint(2, 6))
            )
        )
    head = f"{module}:{rng.randint(10, 400)}: in {test}\n    assert response.status == 200\n"
    values = ", ".join(f"'{rng.choice(_WORDS)}': {rng.randint(0, 999)}" for _ in range(rng.randint(5, 30)))
    tail = f"E   AssertionError: assert 500 == 200\nE    +  where 500 = <Response {{{values}}}>.status\n"
    return head + "".join(frames) + tail


def real_session(
    session_id: str, sut_name: str, start: datetime, results: int = 1000, seed: int = 0
) -> TestSession:
    """A session of ``results`` real-shaped results (see the module docstring)."""
    rng = random.Random(f"{seed}-{session_id}")
    clock = start
    made: list[TestResult] = []
    for index in range(results):
        module = (
            f"tests/{rng.choice(('unit', 'integration', 'api'))}/test_{_WORDS[index // 40 % len(_WORDS)]}.py"
        )
        test = f"test_{rng.choice(_WORDS)}_{index}"
        nodeid = f"{module}::Test{_WORDS[index // 8 % len(_WORDS)].title()}::{test}[case-{index % 7}]"
        outcome = rng.choice(_OUTCOMES)
        duration = rng.lognormvariate(-4.0, 1.6)
        stdout = caplog = stderr = longrepr = ""
        if rng.random() < 0.3 or outcome is TestOutcome.FAILED:
            stdout = "\n".join(_log_line(rng, clock, module) for _ in range(rng.randint(1, 25))) + "\n"
        if rng.random() < 0.2:
            caplog = "\n".join(_log_line(rng, clock, module) for _ in range(rng.randint(1, 10)))
        if rng.random() < 0.05:
            stderr = f"warning: {' '.join(rng.choices(_WORDS, k=8))}\n"
        if outcome in (TestOutcome.FAILED, TestOutcome.ERROR):
            longrepr = _traceback(rng, module, test)
        elif outcome is TestOutcome.SKIPPED:
            longrepr = f"('{module}', {rng.randint(1, 300)}, 'Skipped: needs {rng.choice(_WORDS)}')"
        made.append(
            TestResult(
                nodeid,
                outcome,
                clock,
                clock + timedelta(seconds=duration),
                duration,
                caplog=caplog,
                capstdout=stdout,
                capstderr=stderr,
                longreprtext=longrepr,
                has_warning=bool(stderr),
            )
        )
        clock += timedelta(seconds=duration)
    return TestSession(
        sut_name=sut_name,
        session_id=session_id,
        session_start_time=start,
        session_stop_time=clock,
        session_duration=(clock - start).total_seconds(),
        session_tags={"branch": "main", "ci": "true", "commit": f"{rng.getrandbits(160):040x}"},
        testing_system={"hostname": "ci-runner-7", "python": "3.12.7", "platform": "linux", "cpus": 8},
        test_results=made,
    )
