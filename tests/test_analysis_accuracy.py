"""Score flaky and regression detection against labelled histories (tests/labelled_history.py)."""

from __future__ import annotations

import pytest

from pytest_insight.analysis import History, find_changes, find_flaky, find_slower
from pytest_insight.model.sessions import TestSession
from pytest_insight.query.summary import summarize
from tests.labelled_history import LabelledHistory, make_history

SEEDS = range(4)


@pytest.fixture(scope="module", params=SEEDS)
def labelled(request: pytest.FixtureRequest) -> tuple[LabelledHistory, History]:
    made = make_history(request.param)
    return made, History.from_sessions(made.sessions)


def test_flaky_precision_and_recall(labelled: tuple[LabelledHistory, History]) -> None:
    made, history = labelled
    flagged = {test.nodeid for test in find_flaky(history)}
    right = {nodeid for nodeid in flagged if made.labels[nodeid].kind == "flaky"}
    precision = len(right) / len(flagged)
    detectable = made.flaky_detectable()
    recall = len(detectable & flagged) / len(detectable)
    assert precision >= 0.95, sorted(flagged - right)
    assert recall >= 0.90, sorted(detectable - flagged)


def test_regressions_have_the_right_first_bad_commit(labelled: tuple[LabelledHistory, History]) -> None:
    made, history = labelled
    regressions, fixes = find_changes(history)
    regressed = {n for n, label in made.labels.items() if label.kind == "regressed"}
    found = {change.nodeid: change for change in regressions}
    right = [
        n for n in regressed if n in found and found[n].after.commit == made.commits[made.labels[n].change]
    ]
    assert len(right) / len(regressed) >= 0.95
    assert {made.labels[n].kind for n in found} == {"regressed"}
    assert all(change.still for change in regressions)
    fixed = {change.nodeid: change for change in fixes}
    assert {made.labels[n].kind for n in fixed} == {"fixed"}
    assert all(fixed[n].after.commit == made.commits[made.labels[n].change] for n in fixed)


def test_no_steady_test_is_flagged_anywhere(labelled: tuple[LabelledHistory, History]) -> None:
    made, history = labelled
    regressions, fixes = find_changes(history)
    flagged = (
        {t.nodeid for t in find_flaky(history)}
        | {c.nodeid for c in regressions + fixes}
        | {t.nodeid for t in find_slower(history)}
    )
    steady = {n for n, label in made.labels.items() if label.kind in ("steady", "slow", "broken")}
    assert flagged & steady == set()


def test_duration_jumps_are_found_and_steady_slowness_is_not(
    labelled: tuple[LabelledHistory, History],
) -> None:
    made, history = labelled
    slower = {test.nodeid: test for test in find_slower(history)}
    assert {made.labels[n].kind for n in slower} == {"slowed"}
    # a jump needs three runs after it to be told from noise
    slowed = [n for n, label in made.labels.items() if label.kind == "slowed"]
    enough = [
        n
        for n in slowed
        if sum(1 for c, _ in made.outcomes[n] if made.commits.index(c) >= made.labels[n].change) >= 3
    ]
    assert len([n for n in enough if n in slower]) / len(enough) >= 0.9
    for nodeid, test in slower.items():
        assert test.first_slow.commit == made.commits[made.labels[nodeid].change]


def test_summary_lists_the_flaky_tests_insight_flaky_lists(labelled: tuple[LabelledHistory, History]) -> None:
    """Summary's flaky list takes the verdict's rule: no regression or fix is called flaky any more."""
    made, history = labelled
    sessions: list[TestSession] = made.sessions
    flaky = {entry.nodeid for entry in summarize(sessions, 10_000).flaky}
    assert flaky == {test.nodeid for test in find_flaky(history)}
    assert {made.labels[n].kind for n in flaky} <= {"flaky"}
