"""The pytest plugin: real pytest runs through it, compared with pytest's own counts."""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from pytest_insight.core.storage import JSONStorage, Storage
from pytest_insight.model.session_ids import names_itself
from pytest_insight.model.sessions import TestOutcome, TestSession
from pytest_insight.plugin.settings import InsightSettings, resolve_settings

OUTCOMES_FILE = """
import logging
import sys
import warnings

import pytest


@pytest.fixture
def broken_setup():
    raise RuntimeError("setup boom")


@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown boom")


@pytest.fixture
def skip_in_setup():
    pytest.skip("no database here")


def test_pass():
    print("hello stdout")
    print("hello stderr", file=sys.stderr)
    logging.getLogger("app").warning("hello log")


def test_fail():
    assert 1 == 2, "numbers differ"


@pytest.mark.skip(reason="not today")
def test_skip_mark():
    pass


def test_skip_fixture(skip_in_setup):
    pass


def test_skip_inside():
    pytest.skip("decided at run time")


@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False


@pytest.mark.xfail(reason="fixed already", strict=False)
def test_xpass():
    pass


def test_error_in_setup(broken_setup):
    pass


def test_error_in_teardown(broken_teardown):
    pass


@pytest.mark.filterwarnings("always::UserWarning")
def test_warns():
    warnings.warn(UserWarning("careful"))
"""

RERUN_FILE = """
from pathlib import Path

COUNTER = Path(__file__).with_name("attempts.txt")


def test_flaky():
    attempt = int(COUNTER.read_text()) + 1 if COUNTER.exists() else 1
    COUNTER.write_text(str(attempt))
    assert attempt >= 3, f"attempt {attempt} fails"


def test_steady():
    pass
"""

_ENV = (
    "PYTEST_INSIGHT",
    "PYTEST_INSIGHT_SUT",
    "PYTEST_INSIGHT_STORAGE",
    "PYTEST_INSIGHT_PROFILE",
    "PYTEST_INSIGHT_TAGS",
    "PYTEST_INSIGHT_STRICT",
    "GITHUB_ACTIONS",
    "GITHUB_RUN_ID",
    "GITLAB_CI",
    "CI_PIPELINE_ID",
    "JENKINS_URL",
    "JENKINS_HOME",
    "BUILD_URL",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No insight setting or CI variable of the machine running the suite leaks in."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def stored(store: Path) -> list[TestSession]:
    return JSONStorage(store).load_sessions()


def only_session(store: Path) -> TestSession:
    sessions = stored(store)
    assert len(sessions) == 1, [s.session_id for s in sessions]
    return sessions[0]


def recorded_counts(session: TestSession) -> dict[str, int]:
    """The session's outcome counts, named as pytest's summary line names them."""
    names = {"error": "errors"}
    counts = Counter(names.get(r.outcome.value, r.outcome.value) for r in session.test_results)
    return dict(counts)


def pytest_counts(result: pytest.RunResult) -> dict[str, int]:
    outcomes = result.parseoutcomes()
    outcomes.pop("warnings", None)
    return outcomes


def outcomes_by_nodeid(session: TestSession) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for r in session.test_results:
        found.setdefault(r.nodeid.split("::")[-1], []).append(r.outcome.value)
    return found


# -- what is recorded ------------------------------------------------------------


def test_every_outcome_is_recorded_as_pytest_counts_it(pytester: pytest.Pytester, store: Path) -> None:
    pytester.makepyfile(test_outcomes=OUTCOMES_FILE)
    result = pytester.runpytest("--insight", "--insight-storage", str(store))
    session = only_session(store)

    assert pytest_counts(result) == {
        "passed": 3,
        "failed": 1,
        "skipped": 3,
        "xfailed": 1,
        "xpassed": 1,
        "errors": 2,
    }
    assert recorded_counts(session) == pytest_counts(result)
    assert outcomes_by_nodeid(session) == {
        "test_pass": ["passed"],
        "test_fail": ["failed"],
        "test_skip_mark": ["skipped"],
        "test_skip_fixture": ["skipped"],
        "test_skip_inside": ["skipped"],
        "test_xfail": ["xfailed"],
        "test_xpass": ["xpassed"],
        "test_error_in_setup": ["error"],
        "test_error_in_teardown": ["passed", "error"],
        "test_warns": ["passed"],
    }
    assert session.rerun_test_groups == []


def test_outputs_errors_warnings_and_times_are_captured(pytester: pytest.Pytester, store: Path) -> None:
    pytester.makepyfile(test_outcomes=OUTCOMES_FILE)
    pytester.runpytest("--insight", "--insight-storage", str(store))
    session = only_session(store)
    by_name = {r.nodeid.split("::")[-1]: r for r in session.test_results}  # the last result wins

    assert "hello stdout" in by_name["test_pass"].capstdout
    assert "hello stderr" in by_name["test_pass"].capstderr
    assert "hello log" in by_name["test_pass"].caplog
    assert "numbers differ" in by_name["test_fail"].longreprtext
    assert "setup boom" in by_name["test_error_in_setup"].longreprtext
    assert "teardown boom" in by_name["test_error_in_teardown"].longreprtext
    assert [r.nodeid for r in session.test_results if r.has_warning] == ["test_outcomes.py::test_warns"]
    for r in session.test_results:
        assert session.session_start_time <= r.start_time <= r.stop_time <= session.session_stop_time
        assert r.duration >= 0
        assert r.start_time.utcoffset() == timedelta(0)


def test_session_metadata(pytester: pytest.Pytester, store: Path) -> None:
    pytester.makepyfile(test_one="def test_one(): pass")
    result = pytester.runpytest("--insight", "--insight-storage", str(store))
    session = only_session(store)

    assert session.sut_name == pytester.path.name  # default: the rootdir's name
    assert session.session_id.startswith(re.sub(r"[^A-Za-z0-9._-]+", "_", pytester.path.name))
    assert session.session_duration == pytest.approx(
        (session.session_stop_time - session.session_start_time).total_seconds()
    )
    assert {"hostname", "platform", "python_version", "pytest_version", "pytest_insight_version"} <= set(
        session.testing_system
    )
    assert session.testing_system["pytest_version"] == pytest.__version__
    assert session.testing_system["platform"] == platform.platform()  # the same, without its subprocess
    assert session.session_tags == {}
    result.stdout.fnmatch_lines(
        [f"pytest-insight: saved session {session.session_id} (1 test results) to file://{store}"]
    )


def test_the_run_is_saved_as_recorded_under_an_id_made_for_it(
    pytester: pytest.Pytester, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def checked_save(self: Storage, session: TestSession) -> None:
        raise AssertionError("the plugin searched the store for its own new id")

    monkeypatch.setattr(Storage, "save_session", checked_save)
    pytester.makepyfile(test_one="def test_one(): pass")
    pytester.runpytest("--insight", "--insight-storage", str(store)).stdout.fnmatch_lines(
        ["pytest-insight: saved session *"]
    )
    # the id names the run's SUT and start second: a bucket stores it with one upload, unsearched
    assert names_itself(only_session(store))


def test_reruns_become_one_group_with_every_attempt_stored_once(
    pytester: pytest.Pytester, store: Path
) -> None:
    pytester.makepyfile(test_reruns=RERUN_FILE)
    result = pytester.runpytest("--reruns", "2", "--insight", "--insight-storage", str(store))
    session = only_session(store)

    assert pytest_counts(result) == {"passed": 2, "rerun": 2}
    assert recorded_counts(session) == {"passed": 2, "rerun": 2}
    [group] = session.rerun_test_groups
    assert group.nodeid == "test_reruns.py::test_flaky"
    assert [a.outcome for a in group.tests] == [TestOutcome.RERUN, TestOutcome.RERUN, TestOutcome.PASSED]
    assert group.final_outcome is TestOutcome.PASSED
    assert "attempt 1 fails" in group.tests[0].longreprtext
    assert [r for r in session.test_results if r.nodeid == group.nodeid] == group.tests
    assert group.tests[0].stop_time <= group.tests[1].start_time


def test_collection_errors_are_recorded(pytester: pytest.Pytester, store: Path) -> None:
    pytester.makepyfile(test_good="def test_good(): pass", test_broken="import no_such_module_here")
    result = pytester.runpytest(
        "--insight", "--insight-storage", str(store), "--continue-on-collection-errors"
    )
    session = only_session(store)
    assert recorded_counts(session) == pytest_counts(result) == {"passed": 1, "errors": 1}
    [error] = [r for r in session.test_results if r.outcome is TestOutcome.ERROR]
    assert error.nodeid == "test_broken.py"
    assert "no_such_module_here" in error.longreprtext


def test_xdist_run_is_one_session_with_every_test(pytester: pytest.Pytester, store: Path) -> None:
    pytester.makepyfile(test_outcomes=OUTCOMES_FILE)
    result = pytester.runpytest_subprocess("-n", "2", "--insight", "--insight-storage", str(store))
    result.stdout.fnmatch_lines(["*2 workers*"])
    session = only_session(store)
    assert recorded_counts(session) == pytest_counts(result)
    assert sum(pytest_counts(result).values()) == 11
    assert [r.nodeid for r in session.test_results if r.has_warning] == ["test_outcomes.py::test_warns"]
    # each result names the worker that ran it, as pytest -v does ("[gw1] PASSED ...")
    assert {r.worker for r in session.test_results} == {"gw0", "gw1"}
    # a passing test has no failure text, not even the worker's "[gw0] linux -- Python ..." line
    assert all(not r.longreprtext for r in session.test_results if r.outcome is TestOutcome.PASSED)
    failed = [r for r in session.test_results if r.outcome is TestOutcome.FAILED]
    assert failed
    assert all("[gw" in r.longreprtext for r in failed)


def test_a_run_without_xdist_names_no_worker(pytester: pytest.Pytester, store: Path) -> None:
    pytester.makepyfile(test_one="def test_one(): pass")
    pytester.runpytest("--insight", "--insight-storage", str(store))
    (result,) = only_session(store).test_results
    assert result.worker == ""
    assert "worker" not in result.to_dict()  # nothing written: such lines stay as earlier releases wrote them


def test_nothing_is_recorded_without_insight_or_with_collect_only(
    pytester: pytest.Pytester, store: Path
) -> None:
    pytester.makepyfile(test_one="def test_one(): pass")
    result = pytester.runpytest("--insight-storage", str(store))
    assert "pytest-insight" not in result.stdout.str()
    pytester.runpytest("--insight", "--insight-storage", str(store), "--collect-only")
    assert not store.exists() or stored(store) == []


def test_tags_from_options_and_ci(
    pytester: pytest.Pytester, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_SHA", "0123abc")
    monkeypatch.setenv("GITHUB_REF_NAME", "main")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/shop")
    pytester.makepyfile(test_one="def test_one(): pass")
    args = ["--insight", "--insight-storage", str(store), "--insight-tag", "team=payments"]
    pytester.runpytest(*args, "--insight-tag", "branch=release", "--insight-sut", "shop")
    session = only_session(store)
    assert session.sut_name == "shop"
    assert session.session_tags == {
        "ci": "github-actions",
        "commit": "0123abc",
        "branch": "release",  # a tag given on the command line overrides the CI's
        "ci_run_id": "42",
        "ci_run_url": "https://github.com/acme/shop/actions/runs/42",
        "team": "payments",
    }


# -- saving failures -----------------------------------------------------------------


@pytest.mark.parametrize(("strict", "expected"), [((), 0), (("--insight-strict",), 3)])
def test_a_failure_to_save_is_reported_and_fails_the_run_only_when_strict(
    pytester: pytest.Pytester, tmp_path: Path, strict: tuple[str, ...], expected: int
) -> None:
    not_a_directory = tmp_path / "sessions.json"
    not_a_directory.write_text('{"sessions": []}', encoding="utf-8")
    pytester.makepyfile(test_one="def test_one(): pass")
    result = pytester.runpytest("--insight", f"--insight-storage={not_a_directory}", *strict)
    assert result.ret == expected
    lines = [line for line in result.outlines if line.startswith("pytest-insight:")]
    assert len(lines) == 1, lines
    assert lines[0].startswith("pytest-insight: could not save session "), lines
    assert pytest_counts(result) == {"passed": 1}


def test_strict_keeps_a_failed_runs_exit_status(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(test_one="def test_one(): assert False")
    bad = tmp_path / "file"
    bad.write_text("x", encoding="utf-8")
    result = pytester.runpytest("--insight", "--insight-strict", f"--insight-storage={bad}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_an_unknown_profile_is_a_save_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one="def test_one(): pass")
    result = pytester.runpytest("--insight", "--insight-profile", "nope")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["pytest-insight: could not save session *unknown profile 'nope'*"])


# -- settings: command line > environment > ini ---------------------------------------------


def settings(
    pytester: pytest.Pytester, *args: str, env: dict[str, str] | None = None, ini: str = ""
) -> InsightSettings:
    if ini:
        pytester.makeini("[pytest]\n" + ini)
    config = pytester.parseconfig(*args)
    return resolve_settings(config, env or {})


@pytest.mark.parametrize(
    ("args", "env", "ini", "expected"),
    [
        ((), {}, "", False),
        ((), {}, "insight = true", True),
        ((), {"PYTEST_INSIGHT": "0"}, "insight = true", False),
        ((), {"PYTEST_INSIGHT": "yes"}, "insight = false", True),
        (("--no-insight",), {"PYTEST_INSIGHT": "1"}, "insight = true", False),
        (("--insight",), {"PYTEST_INSIGHT": "off"}, "insight = false", True),
    ],
)
def test_enabling_precedence(
    pytester: pytest.Pytester, args: tuple[str, ...], env: dict[str, str], ini: str, expected: bool
) -> None:
    assert settings(pytester, *args, env=env, ini=ini).enabled is expected


@pytest.mark.parametrize(
    ("args", "env", "ini", "expected"),
    [
        (("--insight-sut", "cli"), {"PYTEST_INSIGHT_SUT": "env"}, "insight_sut = ini", "cli"),
        ((), {"PYTEST_INSIGHT_SUT": "env"}, "insight_sut = ini", "env"),
        ((), {}, "insight_sut = ini", "ini"),
    ],
)
def test_sut_precedence(
    pytester: pytest.Pytester, args: tuple[str, ...], env: dict[str, str], ini: str, expected: str
) -> None:
    assert settings(pytester, "--insight", *args, env=env, ini=ini).sut_name == expected


def test_sut_defaults_to_the_rootdir_name(pytester: pytest.Pytester) -> None:
    assert settings(pytester, "--insight").sut_name == pytester.path.name


@pytest.mark.parametrize(
    ("args", "env", "ini", "expected"),
    [
        (
            ("--insight-storage", "memory://cli"),
            {"PYTEST_INSIGHT_PROFILE": "env"},
            "",
            ("memory://cli", None),
        ),
        (("--insight-profile", "cli"), {"PYTEST_INSIGHT_STORAGE": "memory://env"}, "", (None, "cli")),
        ((), {"PYTEST_INSIGHT_STORAGE": "memory://env"}, "insight_profile = ini", ("memory://env", None)),
        ((), {"PYTEST_INSIGHT_PROFILE": "env"}, "insight_storage = memory://ini", (None, "env")),
        ((), {"PYTEST_INSIGHT_PROFILE": "p", "PYTEST_INSIGHT_STORAGE": "memory://s"}, "", (None, "p")),
        ((), {}, "insight_storage = memory://ini", ("memory://ini", None)),
        ((), {}, "", (None, None)),
    ],
)
def test_storage_and_profile_precedence(
    pytester: pytest.Pytester,
    args: tuple[str, ...],
    env: dict[str, str],
    ini: str,
    expected: tuple[str | None, str | None],
) -> None:
    found = settings(pytester, "--insight", *args, env=env, ini=ini)
    assert (found.storage, found.profile) == expected


def test_a_relative_ini_storage_is_relative_to_the_ini_file(pytester: pytest.Pytester) -> None:
    found = settings(pytester, "--insight", ini="insight_storage = .insight/store")
    assert found.storage == str(pytester.path / ".insight" / "store")


def test_storage_and_profile_together_on_the_command_line_is_a_usage_error(pytester: pytest.Pytester) -> None:
    with pytest.raises(pytest.UsageError, match="cannot be used together"):
        settings(pytester, "--insight", "--insight-storage", "memory://", "--insight-profile", "p")


def test_tags_merge_key_by_key(pytester: pytest.Pytester) -> None:
    found = settings(
        pytester,
        "--insight",
        "--insight-tag",
        "a=cli",
        env={"PYTEST_INSIGHT_TAGS": "a=env, b=env,c=env", "GITLAB_CI": "true", "CI_COMMIT_SHA": "f00"},
        ini="insight_tags =\n    a=ini\n    b=ini\n    d=ini",
    )
    assert found.tags == {"a": "cli", "b": "env", "c": "env", "d": "ini", "ci": "gitlab-ci", "commit": "f00"}


@pytest.mark.parametrize(
    ("args", "env", "ini", "expected"),
    [
        ((), {}, "insight_strict = true", True),
        ((), {"PYTEST_INSIGHT_STRICT": "0"}, "insight_strict = true", False),
        (("--insight-strict",), {"PYTEST_INSIGHT_STRICT": "false"}, "", True),
    ],
)
def test_strict_precedence(
    pytester: pytest.Pytester, args: tuple[str, ...], env: dict[str, str], ini: str, expected: bool
) -> None:
    assert settings(pytester, "--insight", *args, env=env, ini=ini).strict is expected


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("--insight-tag", "novalue"), {}, "--insight-tag: 'novalue' is not a key=value tag"),
        ((), {"PYTEST_INSIGHT_TAGS": "=x"}, "PYTEST_INSIGHT_TAGS: '=x' is not a key=value tag"),
        ((), {"PYTEST_INSIGHT_STRICT": "maybe"}, "PYTEST_INSIGHT_STRICT='maybe'"),
        (("--insight-sut", "bad\nname"), {}, "no control characters"),
    ],
)
def test_invalid_settings_are_usage_errors(
    pytester: pytest.Pytester, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    with pytest.raises(pytest.UsageError, match=re.escape(message)):
        settings(pytester, "--insight", *args, env=env)


def test_environment_enables_recording_end_to_end(
    pytester: pytest.Pytester, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_INSIGHT", "1")
    monkeypatch.setenv("PYTEST_INSIGHT_SUT", "from-env")
    monkeypatch.setenv("PYTEST_INSIGHT_STORAGE", str(store))
    pytester.makeini("[pytest]\ninsight_sut = from-ini\n")
    pytester.makepyfile(test_one="def test_one(): pass")
    pytester.runpytest().assert_outcomes(passed=1)
    assert only_session(store).sut_name == "from-env"


# -- import cost ------------------------------------------------------------------------------


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, pytest_insight.plugin; "
        "heavy = sorted({'boto3', 'botocore', 'anyio', 'aiofiles', 'msgspec'} & set(sys.modules)); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_run_that_does_not_record_imports_only_the_plugins_hooks_and_options(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import sys

        def pytest_unconfigure(config):
            print("LOADED:", sorted(m for m in sys.modules if m.startswith("pytest_insight")))
        """
    )
    pytester.makepyfile(test_one="def test_one(): pass")
    result = pytester.runpytest_subprocess("-s")  # the entry point loads the plugin
    result.stdout.fnmatch_lines(
        ["LOADED: ['pytest_insight', 'pytest_insight.plugin', 'pytest_insight.plugin.options']"]
    )


def test_recording_to_a_local_store_does_not_import_boto3(pytester: pytest.Pytester, store: Path) -> None:
    pytester.makeconftest(
        """
        import sys

        def pytest_unconfigure(config):
            print("HEAVY:", sorted(m for m in ("boto3", "botocore") if m in sys.modules))
        """
    )
    pytester.makepyfile(test_one="def test_one(): pass")
    result = pytester.runpytest_subprocess("-s", "--insight", "--insight-storage", str(store))
    result.stdout.fnmatch_lines(["pytest-insight: saved session *", "HEAVY: []"])
    assert len(stored(store)) == 1
