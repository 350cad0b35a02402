"""The ``insight`` command, run as a real subprocess on real stores in temporary directories."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_insight import __version__
from pytest_insight.core.storage import InMemoryStorage, JSONStorage
from pytest_insight.model.sessions import TestSession
from pytest_insight.storage.local.store import session_file_name

Run = Callable[..., subprocess.CompletedProcess[str]]

RECENT = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def insight(insight_home: Path) -> Run:
    """Run ``python -m pytest_insight ARGS`` with stdin not a terminal and the test's insight home."""

    def run(*args: str | Path, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTEST_INSIGHT_HOME": str(insight_home)}
        for name in ("PYTEST_INSIGHT_PROFILE", "PYTEST_INSIGHT_STORAGE"):
            env.pop(name, None)
        return subprocess.run(
            [sys.executable, "-m", "pytest_insight", *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            stdin=stdin,
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture
def sessions(make_session: Callable[..., TestSession]) -> list[TestSession]:
    """Two old sessions of ``api`` (May 2024) and a recent one of ``web``."""
    return [
        make_session("api-1", sut_name="api"),
        make_session("api-2", sut_name="api"),
        make_session("web-1", sut_name="web", start=RECENT),
    ]


@pytest.fixture
def store(tmp_path: Path, sessions: list[TestSession]) -> Path:
    """A local store holding ``sessions``."""
    path = tmp_path / "store"
    JSONStorage(path).save_sessions(sessions)
    return path


def stored_ids(path: Path) -> set[str]:
    return {session.session_id for session in JSONStorage(path).load_sessions()}


def assert_user_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    """One error line on stderr naming ``words``, the exit code, and no traceback."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("insight: error: "), result.stderr
    for word in words:
        assert word in lines[-1]


def test_version_and_the_console_script(insight: Run) -> None:
    result = insight("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"insight {__version__}")
    script = Path(sys.executable).with_name("insight")
    if not script.exists():
        pytest.skip("the insight console script is not installed next to this interpreter")
    listed = subprocess.run([script, "--help"], capture_output=True, text=True, check=False)
    assert listed.returncode == 0
    for command in ("export", "import", "clear", "sessions", "show", "profile"):
        assert command in listed.stdout


def test_sessions_lists_newest_first_with_counts(insight: Run, store: Path) -> None:
    table = insight("sessions", "--storage", store)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:6] == ["ID", "SUT", "START", "(UTC)", "DURATION", "TESTS"]
    assert "PASSED" in lines[0]
    assert "FAILED" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["web-1", "api-2", "api-1"]
    assert "2024-05-01 08:01:00" in lines[-2]

    listed = insight("--json", "sessions", "--storage", store, "--sut", "api", "--limit", "1")
    data = json.loads(listed.stdout)
    assert [item["session_id"] for item in data] == ["api-2"]
    assert data[0]["tests"] == 6
    assert data[0]["outcomes"] == {"passed": 2, "failed": 1, "skipped": 1, "xfailed": 1, "rerun": 1}

    recent = insight("sessions", "--storage", store, "--days", "1", "--json")
    assert [item["session_id"] for item in json.loads(recent.stdout)] == ["web-1"]


def test_show_prints_one_session_in_detail(insight: Run, store: Path, sessions: list[TestSession]) -> None:
    text = insight("show", "api-1", "--storage", store)
    assert text.returncode == 0, text.stderr
    for expected in (
        "Session:   api-1",
        "SUT:       api",
        "Start:     2024-05-01 08:00:00 UTC",
        "branch",
        "ci-runner-7",
        "tests/test_api.py::test_case_1[param-é]",
        "Reruns (1):",
        "tests/test_api.py::test_flaky: rerun -> passed (final: passed)",
    ):
        assert expected in text.stdout

    as_json = insight("show", "api-1", "--storage", store, "--json")
    assert json.loads(as_json.stdout) == sessions[0].to_dict()

    missing = insight("show", "nope", "--storage", store)
    assert_user_error(missing, 3, "'nope'")


def test_export_then_import_into_another_store(insight: Run, store: Path, tmp_path: Path) -> None:
    export_file = tmp_path / "out" / "team.json"
    export_file.parent.mkdir()
    exported = insight("export", export_file, "--storage", store, "--sut", "api", "--json")
    assert exported.returncode == 0, exported.stderr
    assert exported.stderr == ""  # piped: no progress bar
    assert json.loads(exported.stdout)["exported"] == 2

    other = tmp_path / "other"
    imported = insight("import", export_file, "--storage", other, "--json")
    assert imported.returncode == 0, imported.stderr
    stats = json.loads(imported.stdout)
    assert {key: stats[key] for key in ("total", "imported", "added", "skipped", "errors")} == {
        "total": 2,
        "imported": 2,
        "added": 2,
        "skipped": 0,
        "errors": 0,
    }
    assert stored_ids(other) == {"api-1", "api-2"}

    again = insight("import", export_file, "--storage", other)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "Imported 0 sessions (added 0, updated 0), skipped 2, errors 0"


def test_an_export_to_a_directory_says_how_many_bundles_were_new(
    insight: Run, store: Path, tmp_path: Path
) -> None:
    target = tmp_path / "bundles"
    first = insight("export", target, "--storage", store, "--json")
    assert first.returncode == 0, first.stderr
    counts = json.loads(first.stdout)
    written = sum(1 for _ in target.rglob("*.jsonl.gz"))
    assert (counts["bundles"], counts["new_bundles"]) == (written, written)
    again = insight("export", target, "--storage", store)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith(f"to {target} (0 of {written} bundles new)")
    one_file = insight("export", tmp_path / "all.jsonl.gz", "--storage", store, "--json")
    assert "bundles" not in json.loads(one_file.stdout)  # one file: no bundle layout to report on


def damaged_sources(folder: Path, sessions: list[TestSession]) -> dict[str, Path]:
    """Sources with one bad part each, beside good sessions where the format allows."""
    good = "".join(json.dumps(session.to_dict()) + "\n" for session in sessions[:2]).encode()
    tail = "".join(hashlib.sha256(str(n).encode()).hexdigest() for n in range(200)).encode()
    sources = {
        "bad-line.jsonl.gz": gzip.compress(good.replace(b"\n", b"\n{not json\n", 1)),
        # The cut falls well inside a long third line, so the first two lines decode whole.
        "truncated.jsonl.gz": gzip.compress(good + b'{"sut_name": "' + tail)[:-2000],
        "wrong-shape.json": b'{"hello": "world"}',
        "not-gzip.jsonl.gz": b"\x00 this is not gzip \xff" * 10,
    }
    for name, data in sources.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in sources}


@pytest.mark.parametrize(("name", "imported"), [("bad-line.jsonl.gz", 2), ("truncated.jsonl.gz", 2)])
def test_a_damaged_source_is_counted_named_and_exits_1(
    insight: Run, tmp_path: Path, sessions: list[TestSession], name: str, imported: int
) -> None:
    source = damaged_sources(tmp_path, sessions)[name]
    target = tmp_path / "target"
    result = insight("import", source, "--storage", target, "--json")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    stats = json.loads(result.stdout)
    assert (stats["imported"], stats["errors"]) == (imported, 1)
    assert name in stats["error_messages"][0]
    assert result.stderr.startswith(f"insight: warning: {source}")
    assert len(stored_ids(target)) == imported


@pytest.mark.parametrize("name", ["wrong-shape.json", "not-gzip.jsonl.gz"])
def test_a_file_that_is_no_export_is_one_line_and_exits_3(
    insight: Run, tmp_path: Path, sessions: list[TestSession], name: str
) -> None:
    source = damaged_sources(tmp_path, sessions)[name]
    result = insight("import", source, "--storage", tmp_path / "target")
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.startswith(f"insight: error: {source}: ")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "target").exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"name": "app", "version": "1.0.0"}', "expected an export document"),  # package.json
        (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), "not valid UTF-8"),  # a binary
        (gzip.compress(b"package.json\x00\x00\x00\x00ustar  \x00" + bytes(512)), "not an export"),  # .tar.gz
    ],
    ids=["json", "binary", "tarball"],
)
def test_random_files_are_refused_as_not_an_export(
    insight: Run, tmp_path: Path, content: bytes, reason: str
) -> None:
    source = tmp_path / "random"
    source.write_bytes(content)
    result = insight("import", source, "--storage", tmp_path / "target")
    assert (result.returncode, result.stdout) == (3, "")
    assert result.stderr.startswith(f"insight: error: {source}: ")
    assert reason in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_directory_without_bundles_says_so_and_skips_hidden_directories(
    insight: Run, tmp_path: Path, sessions: list[TestSession]
) -> None:
    source = tmp_path / "project"
    (source / ".hypothesis" / "examples").mkdir(parents=True)
    (source / ".hypothesis" / "examples" / "charmap.json.gz").write_bytes(gzip.compress(b"[1, 2]"))
    result = insight("import", source, "--storage", tmp_path / "target")
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"insight: warning: no bundles found at {source}\n"
    assert result.stdout.startswith("Imported 0 sessions")
    InMemoryStorage(sessions[:1]).export_sessions(source)  # now the layout is there, next to .hypothesis
    result = insight("import", source, "--storage", tmp_path / "target", "--json")
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout)["added"] == 1


def test_import_human_summary_names_the_bad_line(
    insight: Run, tmp_path: Path, sessions: list[TestSession]
) -> None:
    source = damaged_sources(tmp_path, sessions)["bad-line.jsonl.gz"]
    result = insight("import", source, "--storage", tmp_path / "target")
    assert result.returncode == 1, result.stderr
    assert result.stdout == "Imported 2 sessions (added 2, updated 0), skipped 0, errors 1\n"
    assert f"{source}:2" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["import", "{tmp}/missing.json"], 3, ["missing.json"]),
        (["import", "x.json", "--strategy", "newest"], 2, ["--strategy", "newest"]),
        (["export", "x.json", "--since", "2024-13-01"], 2, ["--since", "2024-13-01"]),
        (["clear", "--older-than", "90x"], 2, ["--older-than"]),
        (["sessions", "--profile", "nobody"], 2, ["nobody"]),
        (["sessions", "--storage", "ftp://host/x"], 2, ["ftp://host/x"]),
        (["sessions", "--storage", "{tmp}/a", "--profile", "b"], 2, ["--profile"]),
        (["sessions", "--storage", "{tmp}/corrupt"], 3, ["corrupt"]),
        (["frobnicate"], 2, ["frobnicate"]),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    insight: Run, tmp_path: Path, args: list[str], code: int, words: list[str]
) -> None:
    corrupt = tmp_path / "corrupt" / "sessions" / "00"
    corrupt.mkdir(parents=True)
    (corrupt / session_file_name("x")).write_text("{ not json")
    result = insight(*(arg.format(tmp=tmp_path) for arg in args))
    assert_user_error(result, code, *words)


def test_debug_shows_the_traceback(insight: Run) -> None:
    result = insight("sessions", "--profile", "nobody", "--debug")
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert "UnknownProfileError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("insight: error: unknown profile")


def test_clear_refuses_without_a_filter_or_confirmation(insight: Run, store: Path) -> None:
    no_filter = insight("clear", "--storage", store, "--yes")
    assert_user_error(no_filter, 2, "--all")
    piped = insight("clear", "--storage", store, "--sut", "api")
    assert_user_error(piped, 2, "--yes")
    assert stored_ids(store) == {"api-1", "api-2", "web-1"}


def test_clear_dry_run_lists_and_removes_nothing(insight: Run, store: Path) -> None:
    text = insight("clear", "--storage", store, "--older-than", "30d", "--dry-run")
    assert text.returncode == 0, text.stderr
    assert [line.split()[0] for line in text.stdout.splitlines()[1:3]] == ["api-1", "api-2"]
    assert "Would remove 2 sessions" in text.stdout
    as_json = json.loads(insight("clear", "--storage", store, "--all", "--dry-run", "--json").stdout)
    assert (as_json["dry_run"], as_json["matched"], as_json["cleared"]) == (True, 3, 0)
    assert stored_ids(store) == {"api-1", "api-2", "web-1"}


def test_clear_with_yes_removes_what_the_filter_selects(insight: Run, store: Path) -> None:
    result = insight("clear", "--storage", store, "--before", "2024-05-01T08:00:30Z", "--yes", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["matched"], data["cleared"]) == (1, 1)
    assert [item["session_id"] for item in data["sessions"]] == ["api-1"]
    assert stored_ids(store) == {"api-2", "web-1"}


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.parametrize(("answer", "code", "left"), [(b"y\n", 0, {"web-1"}), (b"n\n", 1, None)])
def test_clear_asks_on_a_terminal(
    insight: Run, store: Path, answer: bytes, code: int, left: set[str] | None
) -> None:
    import pty

    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer)
        result = insight("clear", "--storage", store, "--sut", "api", stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)
    assert result.returncode == code, result.stderr
    assert "Remove 2 sessions from" in result.stderr
    assert stored_ids(store) == (left if left is not None else {"api-1", "api-2", "web-1"})


def test_profiles_select_the_storage(insight: Run, store: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    assert insight("profile", "create", "full", store).returncode == 0
    created = insight("profile", "create", "empty", empty, "--use", "--json")
    assert json.loads(created.stdout) == {
        "name": "empty",
        "active": True,
        "storage": str(empty),
        "options": {},
    }

    listed = json.loads(insight("profile", "list", "--json").stdout)
    assert listed["active"] == "empty"
    assert set(listed["profiles"]) == {"full", "empty"}
    table = insight("profile", "list").stdout
    assert any(line.startswith("*") and "empty" in line for line in table.splitlines())

    assert json.loads(insight("sessions", "--json").stdout) == []
    chosen = json.loads(insight("sessions", "--profile", "full", "--json").stdout)
    assert len(chosen) == 3

    assert insight("profile", "use", "full").returncode == 0
    assert len(json.loads(insight("sessions", "--json").stdout)) == 3
    assert insight("profile", "delete", "full").returncode == 0
    assert_user_error(insight("profile", "use", "full"), 2, "full")
    duplicate = insight("profile", "create", "empty", "memory://")
    assert_user_error(duplicate, 2, "exists")


def test_a_reader_that_stops_early_is_not_an_error(
    insight_home: Path, tmp_path: Path, make_session: Callable[..., TestSession]
) -> None:
    store = tmp_path / "big"
    JSONStorage(store).save_sessions([make_session(tests=1, reruns=False) for _ in range(600)])
    env = {**os.environ, "PYTEST_INSIGHT_HOME": str(insight_home)}
    with subprocess.Popen(
        [sys.executable, "-m", "pytest_insight", "sessions", "--json", "--storage", str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline() == b"[\n"
        process.stdout.close()  # the listing is far larger than a pipe holds: the writer is blocked
        stderr = process.stderr.read()
        assert process.wait(timeout=60) == 141
    assert stderr == b""


def test_summary_names_failing_slow_and_flaky_tests(insight: Run, store: Path) -> None:
    result = insight("summary", "--storage", store, "--sut", "api", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["sessions"] == 2
    assert data["outcomes"] == {"passed": 4, "failed": 2, "skipped": 2, "xfailed": 2, "rerun": 2}
    assert [entry["nodeid"] for entry in data["failing"]] == ["tests/test_api.py::test_case_1[param-é]"]
    assert data["failing"][0]["failed_runs"] == 2
    assert data["flaky"] == []  # two sessions: fewer runs than insight flaky's --min-runs (5)
    assert data["slowest"][0]["nodeid"] == "tests/test_api.py::test_flaky"
    result = insight("summary", "--storage", store, "--sut", "api", "--json", "--min-runs", "1")
    data = json.loads(result.stdout)
    # passed on a rerun: flaky, as insight flaky --min-runs 1 says
    assert [entry["nodeid"] for entry in data["flaky"]] == ["tests/test_api.py::test_flaky"]
    flaky = insight("flaky", "--storage", store, "--sut", "api", "--json", "--min-runs", "1")
    assert [entry["nodeid"] for entry in json.loads(flaky.stdout)["flaky"]] == [data["flaky"][0]["nodeid"]]

    text = insight("summary", "--storage", store, "--top", "1")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("3 sessions: ")
    assert "Failing tests:" in text.stdout
    assert "Flaky tests:" in text.stdout


def test_older_than_clears_whole_utc_days(
    insight: Run, tmp_path: Path, make_session: Callable[..., TestSession]
) -> None:
    cutoff = datetime.now(UTC) - timedelta(days=1)
    day_start = cutoff.replace(hour=0, minute=0, second=0, microsecond=0)
    same_day_but_older = day_start + (cutoff - day_start) / 2
    path = tmp_path / "days"
    JSONStorage(path).save_sessions(
        [
            make_session("old-day", start=cutoff - timedelta(days=2)),
            make_session("cutoff-day", start=same_day_but_older),
        ]
    )
    result = insight("clear", "--storage", path, "--older-than", "1d", "--yes", "--json")
    assert result.returncode == 0, result.stderr
    assert stored_ids(path) == {"cutoff-day"}
