"""Typos a new user makes: each exits non-zero with one line naming the fix, and creates nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_insight.core.storage import JSONStorage, open_storage
from pytest_insight.errors import ConfigurationError, UnknownProfileError, did_you_mean
from pytest_insight.storage.uris import split_uri, storage_schemes
from tests.conftest import build_session

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def insight(insight_home: Path, tmp_path: Path) -> Run:
    """Run ``python -m pytest_insight ARGS`` in ``tmp_path`` with the test's insight home."""

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTEST_INSIGHT_HOME": str(insight_home)}
        for name in ("PYTEST_INSIGHT_PROFILE", "PYTEST_INSIGHT_STORAGE"):
            env.pop(name, None)
        command = [sys.executable, "-m", "pytest_insight", *map(str, args)]
        return subprocess.run(
            command,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    return run


def one_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("insight: error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def entries(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*")}


@pytest.mark.parametrize(
    ("uri", "meant"),
    [
        ("s3:/bucket/team", "s3://bucket/team"),
        ("s3:bucket/team", "s3://bucket/team"),
        ("S3:/bucket", "s3://bucket"),
        ("memory:", "memory://"),
        ("file:/tmp/store", "file:///tmp/store"),
    ],
)
@pytest.mark.parametrize("where", ["--storage", "export", "import"])
def test_a_uri_with_a_slash_missing_is_refused_with_the_one_meant(
    insight: Run, tmp_path: Path, uri: str, meant: str, where: str
) -> None:
    before = entries(tmp_path)
    arguments = {
        "--storage": ["--storage", uri, "sessions"],
        "export": ["export", uri],
        "import": ["import", uri],
    }
    error = one_error(insight(*arguments[where]), 2)
    assert f"did you mean {meant!r}?" in error
    assert entries(tmp_path) == before  # no ./s3:/bucket/team directory


@pytest.mark.parametrize(
    ("uri", "hint"), [("s4://bucket", "; did you mean 's3://'?"), ("azure://bucket", "")]
)
def test_an_unknown_scheme_is_refused_naming_the_known_ones(insight: Run, uri: str, hint: str) -> None:
    error = one_error(insight("--storage", uri, "sessions"), 2)
    assert (
        f"unsupported URI scheme in {uri!r}{hint} (use a path or one of file://, memory://, s3://)" in error
    )


def test_the_scheme_is_case_insensitive_everywhere(tmp_path: Path) -> None:
    assert open_storage("MEMORY://x").uri == open_storage("memory://x").uri
    assert split_uri("S3://bucket/p", storage_schemes()) == ("s3", "bucket/p")


@pytest.mark.parametrize("path", ["C:\\store", "results:v1", "./s3:/bucket", "relative/dir"])
def test_paths_that_only_contain_a_colon_stay_paths(path: str) -> None:
    assert split_uri(path, storage_schemes()) == ("", path)


def test_a_mistyped_uri_stops_a_pytest_run_before_its_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one():\n    raise AssertionError('must not run')\n")
    result = pytester.runpytest("--insight", "--insight-storage", "s3:/bucket/team")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*insight storage: 's3:/bucket/team' looks like a mistyped URI*"])
    assert not (pytester.path / "s3:").exists()


PROJECT_INI = "[pytest]\npython_files = check_*.py\n"  # found only if pytest looks from the project


def test_a_store_path_after_a_space_that_would_move_pytests_rootdir_is_refused(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini(PROJECT_INI)
    pytester.makepyfile(check_one="def test_one():\n    pass\n")
    store = tmp_path / "store"  # outside the project, and already there: pytest would take it for a test path
    store.mkdir()
    for args in (["--insight", "--insight-storage", str(store)], ["--insight-storage", str(store)]):
        result = pytester.runpytest_subprocess(*args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: --insight-storage {store}: pytest took the path after*"])
        assert f"instead of {pytester.path} ({pytester.path / 'tox.ini'})" in result.stderr.str()
        assert f"write --insight-storage={store}" in result.stderr.str()
    # an ini file named with -c is not searched for: the store's place changes nothing then
    pytester.runpytest_subprocess("-c", "tox.ini", "--insight-storage", str(store)).assert_outcomes(passed=1)
    monkeypatch.setenv("PYTEST_ADDOPTS", f"--insight-storage {store}")
    assert pytester.runpytest_subprocess("--insight").ret == pytest.ExitCode.USAGE_ERROR
    monkeypatch.delenv("PYTEST_ADDOPTS")
    assert not any(store.iterdir())
    result = pytester.runpytest_subprocess("--insight", f"--insight-storage={store}")
    result.assert_outcomes(passed=1)  # the project's ini was read: check_one.py was collected
    (session,) = JSONStorage(store).load_sessions()
    assert [result.nodeid for result in session.test_results] == ["check_one.py::test_one"]


def test_a_store_path_after_a_space_that_leaves_pytests_rootdir_alone_is_read_as_written(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(PROJECT_INI)
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "check_one.py").write_text("def test_one():\n    pass\n", encoding="utf-8")
    (pytester.path / ".insight").mkdir()
    # outside the test path given, but the ini file pytest finds is the project's either way
    for args in ([], ["tests"]):
        result = pytester.runpytest_subprocess("--insight", "--insight-storage", ".insight", *args)
        result.assert_outcomes(passed=1)
    assert len(JSONStorage(pytester.path / ".insight").load_sessions()) == 2


def test_an_export_file_in_a_missing_directory_is_refused(insight: Run, tmp_path: Path) -> None:
    JSONStorage(tmp_path / "store").save_session(build_session("one"))
    for target in (tmp_path / "missing" / "dir" / "x.json", tmp_path / "missing" / "x.jsonl.gz"):
        error = one_error(insight("export", target, "--storage", tmp_path / "store"), 3)
        assert f"no such directory {target.parent}" in error
    assert not (tmp_path / "missing").exists()
    # a directory target is created, parents included, as documented
    assert insight("export", tmp_path / "new" / "bundles", "--storage", tmp_path / "store").returncode == 0
    assert any((tmp_path / "new" / "bundles").rglob("*.jsonl.gz"))


@pytest.mark.parametrize(
    ("arguments", "hint"),
    [
        (["exprt", "x.json"], "did you mean 'export'?"),
        (["sessions", "--sutt", "api"], "did you mean '--sut'?"),
        (["sessions", "--limt=3"], "did you mean '--limit'?"),
        (["import", "x.json", "--strategy", "keepboth"], "did you mean 'keep_both'?"),
        (["import", "x.json", "--strategy", "replace"], "did you mean 'replace_existing'?"),
    ],
)
def test_close_matches_are_suggested(insight: Run, arguments: list[str], hint: str) -> None:
    assert hint in one_error(insight(*arguments), 2)


def test_keep_both_with_a_dash_is_the_strategy_the_library_accepts(insight: Run, tmp_path: Path) -> None:
    JSONStorage(tmp_path / "theirs").save_session(build_session("one", tests=2))  # another "one"
    JSONStorage(tmp_path / "theirs").export_sessions(tmp_path / "theirs.json")
    JSONStorage(tmp_path / "mine").save_session(build_session("one"))
    result = insight(
        "import", tmp_path / "theirs.json", "--strategy", "keep-both", "--storage", tmp_path / "mine"
    )
    assert result.returncode == 0, result.stderr
    assert len(JSONStorage(tmp_path / "mine").load_sessions()) == 2


def test_an_unknown_profile_suggests_the_close_one(insight: Run) -> None:
    assert insight("profile", "create", "production", "memory://p").returncode == 0
    assert "did you mean 'production'?" in one_error(insight("--profile", "prodution", "sessions"), 2)
    error = UnknownProfileError("stagin", ["staging", "prod"])
    assert str(error) == "unknown profile 'stagin'; did you mean 'staging'? (known profiles: prod, staging)"


def test_did_you_mean_stays_quiet_when_nothing_is_close() -> None:
    assert did_you_mean("zzz", ["export", "import"]) == ""
    assert did_you_mean("KEEP-BOTH", ["keep_both"]) == "; did you mean 'keep_both'?"
    with pytest.raises(ConfigurationError, match="unsupported URI scheme"):
        split_uri("ftp://host/x", storage_schemes())


@pytest.mark.parametrize("age", ["5m", "1h", "90s", "36h"])
def test_older_than_refuses_ages_below_whole_days(insight: Run, tmp_path: Path, age: str) -> None:
    JSONStorage(tmp_path / "store").save_session(build_session("one"))
    error = one_error(insight("clear", "--older-than", age, "--yes", "--storage", tmp_path / "store"), 2)
    assert "--older-than counts whole UTC days" in error
    assert len(JSONStorage(tmp_path / "store").load_sessions()) == 1


def test_older_than_says_what_the_cutoff_became(insight: Run, tmp_path: Path) -> None:
    JSONStorage(tmp_path / "store").save_session(build_session("one"))
    result = insight("clear", "--older-than", "2w", "--yes", "--storage", tmp_path / "store")
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("--older-than 14d: sessions that started before ")
    assert result.stderr.rstrip().endswith("00:00:00 UTC")


def test_a_storage_chosen_by_the_environment_is_named(insight_home: Path, tmp_path: Path) -> None:
    JSONStorage(tmp_path / "env-store").save_session(build_session("one"))
    env = {
        **os.environ,
        "PYTEST_INSIGHT_HOME": str(insight_home),
        "PYTEST_INSIGHT_STORAGE": str(tmp_path / "env-store"),
    }
    env.pop("PYTEST_INSIGHT_PROFILE", None)
    command = [sys.executable, "-m", "pytest_insight", "sessions", "--json"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    store_uri = (tmp_path / "env-store").as_uri()
    assert (
        result.stderr
        == f"insight: storage {store_uri} (from PYTEST_INSIGHT_STORAGE={tmp_path / 'env-store'})\n"
    )
    assert [entry["session_id"] for entry in json.loads(result.stdout)] == ["one"]
    named = subprocess.run(
        [*command, "--storage", str(tmp_path)], env=env, capture_output=True, text=True, check=False
    )
    assert named.stderr == ""  # named on the command line: nothing to explain


@pytest.mark.parametrize("verb", ["export", "import"])
def test_the_storage_itself_is_refused_as_a_source_or_target(insight: Run, tmp_path: Path, verb: str) -> None:
    store = tmp_path / "store"
    JSONStorage(store).save_session(build_session("one"))
    before = entries(store)
    error = one_error(insight(verb, store, "--storage", f"file://{store}/"), 2)
    assert f"{store} is the storage itself" in error
    assert entries(store) == before
    error = one_error(insight(verb, "s3://bucket/team/v1/sut=api", "--storage", "s3://bucket/team"), 2)
    assert "is the storage itself (s3://bucket/team)" in error


@pytest.mark.parametrize(
    "where", [["--storage", "s3://", "sessions"], ["export", "s3:///team"], ["import", "s3://"]]
)
def test_a_missing_bucket_name_is_one_wording_everywhere(insight: Run, where: list[str]) -> None:
    assert "an s3:// URI needs a bucket name" in one_error(insight(*where), 2)
