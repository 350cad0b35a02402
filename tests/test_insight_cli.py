"""``insight flaky``, ``regressions``, ``trends``, ``diff`` and ``report`` on a local store and a bucket."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_insight.cli.main import EXIT_DATA, EXIT_USAGE, main
from pytest_insight.core.storage import JSONStorage, S3Storage
from tests.labelled_history import LabelledHistory, make_history
from tests.s3servers import S3Target

SMALL = {"steady": 20, "broken": 2, "flaky": 6, "regressed": 3, "fixed": 3, "slowed": 3, "slow": 3}


@pytest.fixture(scope="module")
def made() -> LabelledHistory:
    return make_history(7, counts=SMALL)


@pytest.fixture
def store(tmp_path: Path, made: LabelledHistory) -> str:
    JSONStorage(tmp_path / "store").save_sessions(made.sessions)
    return str(tmp_path / "store")


def insight(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = insight(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_flaky_text_and_json(capsys: pytest.CaptureFixture[str], store: str, made: LabelledHistory) -> None:
    found = as_json(capsys, "flaky", "--storage", store)
    names = [test["nodeid"] for test in found["flaky"]]
    assert {made.labels[n].kind for n in names} == {"flaky"}
    assert set(names) >= made.flaky_detectable()
    code, out, _ = insight(capsys, "flaky", "--storage", store)
    assert code == 0
    assert out.startswith(f"{len(names)} flaky tests in 30 sessions:\n")
    assert "FAILED  FLIPS  CONF  EVIDENCE" in out
    assert "passed and failed on" in out
    assert as_json(capsys, "flaky", "--storage", store, "--min-runs", "31")["flaky"] == []
    assert as_json(capsys, "flaky", "--storage", store, "--sut", "other")["sessions"] == 0


def test_regressions_and_trends(
    capsys: pytest.CaptureFixture[str], store: str, made: LabelledHistory
) -> None:
    found = as_json(capsys, "regressions", "--storage", store)
    assert {made.labels[c["nodeid"]].kind for c in found["regressions"]} == {"regressed"}
    assert {made.labels[c["nodeid"]].kind for c in found["fixes"]} == {"fixed"}
    for change in found["regressions"]:
        assert change["after"]["commit"] == made.commits[made.labels[change["nodeid"]].change]
    code, out, _ = insight(capsys, "regressions", "--storage", store)
    assert code == 0
    assert "Outcome regressions (3):" in out
    assert "Duration regressions" in out
    assert "Fixes (3):" in out
    days = as_json(capsys, "trends", "--storage", store)["days"]
    assert sum(day["sessions"] for day in days) == 30
    assert all(0 <= day["pass_rate"] <= 1 for day in days)


def test_diff_by_session_ids_and_by_commit(
    capsys: pytest.CaptureFixture[str], store: str, made: LabelledHistory
) -> None:
    first, last = made.sessions[0], made.sessions[-1]
    found = as_json(capsys, "diff", first.session_id, last.session_id, "--storage", store)
    assert (found["base_sessions"], found["head_sessions"]) == (1, 1)
    newly = {entry["nodeid"] for entry in found["newly_failing"]}
    assert {n for n, label in made.labels.items() if label.kind == "regressed"} <= newly
    assert all(entry["failure"] for entry in found["newly_failing"])
    by_commit = as_json(
        capsys, "diff", "--base", made.commits[0][:10], "--head", made.commits[-1], "--storage", store
    )
    assert by_commit["base_sessions"] >= 1
    by_branch = as_json(capsys, "diff", "--base", made.commits[0], "--head", "main", "--storage", store)
    assert by_branch["head_sessions"] == sum(
        1 for s in made.sessions if s.session_tags["commit"] == made.commits[-1]
    )
    code, out, _ = insight(capsys, "diff", first.session_id, last.session_id, "--storage", store)
    assert code == 0
    assert "Newly failing" in out
    assert "    | AssertionError" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["diff", "only-one"], EXIT_USAGE, "give two session ids"),
        (["diff", "a", "b", "--base", "x"], EXIT_USAGE, "not both forms"),
        (["diff", "--base", "main"], EXIT_USAGE, "both --base and --head"),
        (["diff", "nope-1", "nope-2"], EXIT_DATA, "no session with id 'nope-1'"),
        (
            ["diff", "--base", "nowhere", "--head", "main"],
            EXIT_DATA,
            "no session has a commit or branch 'nowhere'",
        ),
        (["flaky", "--min-runs", "0"], EXIT_USAGE, "must be at least 1"),
        (["report"], EXIT_USAGE, "--html"),
        (["report", "--html", "s3://bucket-only"], EXIT_USAGE, "full key"),
    ],
)
def test_user_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], store: str, args: list[str], code: int, message: str
) -> None:
    got, out, err = insight(capsys, *args, "--storage", store)
    assert got == code
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("insight: error: ")
    assert message in err


def test_report_to_a_file(capsys: pytest.CaptureFixture[str], store: str, tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.html"
    target.parent.mkdir()
    found = as_json(capsys, "report", "--html", str(target), "--storage", store, "--title", "shop <main>")
    page = target.read_text(encoding="utf-8")
    assert found == {"html": str(target), "bytes": len(page.encode()), "sessions": 30}
    assert "<title>shop &lt;main&gt;</title>" in page
    assert "<script src" not in page
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert page.count("<svg") >= 2 + 10


def test_the_same_answers_straight_from_a_bucket(
    capsys: pytest.CaptureFixture[str], store: str, moto_server_s3: S3Target, made: LabelledHistory
) -> None:
    S3Storage(moto_server_s3.bucket, "team", endpoint_url=moto_server_s3.endpoint_url).save_sessions(
        made.sessions
    )
    uri = f"s3://{moto_server_s3.bucket}/team"
    for command in ("flaky", "regressions", "trends"):
        assert as_json(capsys, command, "--storage", uri) == as_json(capsys, command, "--storage", store)
    found = as_json(
        capsys, "report", "--html", f"s3://{moto_server_s3.bucket}/reports/shop.html", "--storage", uri
    )
    body = moto_server_s3.client.get_object(Bucket=moto_server_s3.bucket, Key="reports/shop.html")
    assert body["ContentType"] == "text/html; charset=utf-8"
    assert len(body["Body"].read()) == found["bytes"]


def test_report_without_its_extra_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "vl_convert", None)  # what an absent package looks like to import
    code, out, err = insight(capsys, "report", "--html", str(tmp_path / "r.html"), "--storage", store)
    assert code == EXIT_USAGE
    assert out == ""
    assert (
        err
        == "insight: error: insight report needs vl-convert-python: pip install 'pytest-insight[report]'\n"
    )
    assert not (tmp_path / "r.html").exists()


def test_every_command_on_an_empty_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = str(tmp_path / "empty")
    assert as_json(capsys, "flaky", "--storage", empty) == {"sessions": 0, "flaky": []}
    assert as_json(capsys, "trends", "--storage", empty) == {"days": []}
    found = as_json(capsys, "regressions", "--storage", empty)
    assert found == {"sessions": 0, "regressions": [], "slower": [], "fixes": []}
    assert as_json(capsys, "report", "--html", str(tmp_path / "r.html"), "--storage", empty)["sessions"] == 0
    assert "<h2>Flaky tests</h2>" in (tmp_path / "r.html").read_text(encoding="utf-8")
