"""A labelled history: CI runs of a suite whose tests each follow a known behaviour.

Used to score ``insight flaky`` and ``insight regressions`` (tests/test_analysis_accuracy.py
and the benchmark). Each test is one of:

- ``steady``: always passes, duration noisy around a small mean;
- ``broken``: always fails;
- ``flaky``: fails with a fixed probability (0.05-0.5) on every run;
- ``regressed``: passes until ``change`` (a commit index), fails from it on;
- ``fixed``: fails until ``change``, passes from it on;
- ``slowed``: passes; its duration triples from ``change`` on;
- ``slow``: passes, steadily slow (2-5 s) with noise.

Sessions carry the tags the plugin records on GitHub Actions (``ci``,
``commit``, ``branch``, ``ci_run_id``) and a testing system with a host.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pytest_insight.model.sessions import TestOutcome, TestResult, TestSession

__all__ = ["KINDS", "Label", "LabelledHistory", "make_history"]

KINDS = ("steady", "broken", "flaky", "regressed", "fixed", "slowed", "slow")
START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Label:
    """What a test was made to do."""

    kind: str
    change: int = -1  # commit index where a regressed/fixed/slowed test changes
    probability: float = 0.0  # a flaky test's failure probability
    base: float = 0.05  # its usual duration


@dataclass
class LabelledHistory:
    """The sessions and each test's label; ``commits`` in order."""

    sessions: list[TestSession]
    labels: dict[str, Label]
    commits: list[str]
    outcomes: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)  # nodeid -> (commit, failed)

    def flaky_detectable(self) -> set[str]:
        """Flaky tests that showed both outcomes on one commit or flipped at least twice."""
        found = set()
        for nodeid, label in self.labels.items():
            if label.kind != "flaky":
                continue
            runs = self.outcomes[nodeid]
            mixed = any(
                {failed for commit, failed in runs if commit == c} == {True, False} for c in self.commits
            )
            flips = sum(1 for a, b in itertools.pairwise(runs) if a[1] != b[1])
            if mixed or flips >= 2:
                found.add(nodeid)
        return found


def _commits(rng: random.Random, count: int) -> list[str]:
    return [f"{rng.getrandbits(160):040x}" for _ in range(count)]


def _labels(rng: random.Random, counts: dict[str, int], commits: int) -> dict[str, Label]:
    labels: dict[str, Label] = {}
    for kind in KINDS:
        for number in range(counts.get(kind, 0)):
            nodeid = f"tests/test_{kind}.py::test_{kind}_{number}"
            base = rng.uniform(2.0, 5.0) if kind == "slow" else rng.uniform(0.02, 0.3)
            change = rng.randrange(3, commits - 2) if kind in ("regressed", "fixed", "slowed") else -1
            probability = rng.uniform(0.05, 0.5) if kind == "flaky" else 0.0
            labels[nodeid] = Label(kind, change, probability, base)
    return labels


def _failed(label: Label, commit: int, rng: random.Random) -> bool:
    if label.kind == "broken":
        return True
    if label.kind == "flaky":
        return rng.random() < label.probability
    if label.kind == "regressed":
        return commit >= label.change
    if label.kind == "fixed":
        return commit < label.change
    return False


def _duration(label: Label, commit: int, rng: random.Random) -> float:
    mean = label.base * (3.0 if label.kind == "slowed" and commit >= label.change else 1.0)
    return max(0.001, rng.gauss(mean, mean * 0.08))


def _runs_per_commit(rng: random.Random, runs: int, commits: int) -> list[int]:
    counts = [1] * commits
    for _ in range(runs - commits):
        counts[rng.randrange(commits)] += 1
    return counts


def make_history(
    seed: int = 22,
    *,
    counts: dict[str, int] | None = None,
    commits: int = 15,
    runs: int = 30,
    sut_name: str = "shop",
    hosts: tuple[str, ...] = ("runner-1", "runner-2", "runner-3"),
) -> LabelledHistory:
    """Build a labelled history of ``runs`` CI runs over ``commits`` commits."""
    rng = random.Random(seed)
    counts = counts or {
        "steady": 200,
        "broken": 15,
        "flaky": 60,
        "regressed": 30,
        "fixed": 30,
        "slowed": 30,
        "slow": 30,
    }
    labels = _labels(rng, counts, commits)
    shas = _commits(rng, commits)
    history = LabelledHistory([], labels, shas, {nodeid: [] for nodeid in labels})
    clock = START
    run_number = 0
    for commit, repeat in enumerate(_runs_per_commit(rng, runs, commits)):
        for _ in range(repeat):
            run_number += 1
            history.sessions.append(
                _session(history, rng, commit, run_number, clock, sut_name, rng.choice(hosts))
            )
            clock += timedelta(hours=rng.uniform(2, 10))
    return history


def _session(
    history: LabelledHistory,
    rng: random.Random,
    commit: int,
    run_number: int,
    start: datetime,
    sut_name: str,
    host: str,
) -> TestSession:
    sha = history.commits[commit]
    results = list(_results(history, rng, commit, start))
    stop = max((result.stop_time for result in results), default=start)
    return TestSession(
        sut_name=sut_name,
        session_id=f"{sut_name}-run-{run_number:04d}",
        session_start_time=start,
        session_stop_time=stop,
        session_duration=(stop - start).total_seconds(),
        session_tags={"ci": "github-actions", "commit": sha, "branch": "main", "ci_run_id": str(run_number)},
        testing_system={"hostname": host, "python_version": "3.12.8"},
        test_results=results,
    )


def _results(
    history: LabelledHistory, rng: random.Random, commit: int, start: datetime
) -> Iterator[TestResult]:
    clock = start
    for nodeid, label in history.labels.items():
        failed = _failed(label, commit, rng)
        history.outcomes[nodeid].append((history.commits[commit], failed))
        duration = _duration(label, commit, rng)
        outcome = TestOutcome.FAILED if failed else TestOutcome.PASSED
        text = f"AssertionError: {nodeid} went wrong" if failed else ""
        stop = clock + timedelta(seconds=duration)
        yield TestResult(nodeid, outcome, clock, stop, duration, longreprtext=text)
        clock = stop
