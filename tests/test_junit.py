"""JUnit XML in and out: pytest's and Surefire's reports as sessions, sessions as a schema-valid report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import xmlschema
from defusedxml import ElementTree

from pytest_insight.core.storage import InMemoryStorage, JSONStorage
from pytest_insight.errors import InvalidDataError
from pytest_insight.junit.reader import read_junit
from pytest_insight.model.sessions import TestOutcome, TestSession
from tests.conftest import build_session

SCHEMA = xmlschema.XMLSchema(Path(__file__).parent / "data" / "junit" / "jenkins-junit.xsd")

SUITE = """
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("no database")

def test_pass():
    print("hello from stdout")

def test_fail():
    assert 1 == 2, "one is not two"

@pytest.mark.skip(reason="not here")
def test_skip():
    pass

@pytest.mark.xfail(reason="known bug", strict=True)
def test_xfail():
    assert False

def test_setup_error(broken):
    pass

@pytest.mark.parametrize("n", [1, 2, 3])
def test_many(n):
    assert n
"""

SUREFIRE = """<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="com.acme.CheckoutTest" time="3.25" tests="4" errors="0" skipped="1" failures="1"
           timestamp="2026-11-30T10:15:00" hostname="build-7">
  <properties>
    <property name="java.version" value="21.0.5"/>
    <property name="branch" value="main"/>
  </properties>
  <testcase name="pays" classname="com.acme.CheckoutTest" time="1.5">
    <system-out>paid 12.00</system-out>
  </testcase>
  <testcase name="refunds" classname="com.acme.CheckoutTest" time="0.75">
    <failure message="expected done" type="org.opentest4j.AssertionFailedError">trace line 1
trace line 2</failure>
    <rerunFailure message="expected done" type="org.opentest4j.AssertionFailedError">
      <stackTrace>first attempt</stackTrace>
    </rerunFailure>
  </testcase>
  <testcase name="retries" classname="com.acme.CheckoutTest" time="1.0">
    <flakyFailure message="timeout" type="java.net.SocketTimeoutException">
      <stackTrace>timed out</stackTrace>
      <system-out>attempt 1</system-out>
    </flakyFailure>
    <flakyError message="reset" type="java.io.IOException"><stackTrace>reset</stackTrace></flakyError>
  </testcase>
  <testcase name="later" classname="com.acme.CheckoutTest" time="0">
    <skipped message="disabled"/>
  </testcase>
</testsuite>
"""


def counts(session: TestSession) -> dict[str, int]:
    return {outcome.value: n for outcome, n in session.outcome_counts().items()}


def insight(*args: str | Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTEST_INSIGHT_HOME": str(home)}
    command = [sys.executable, "-m", "pytest_insight", *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


def test_a_pytest_junit_file_imports_with_pytests_own_counts(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(test_shop=SUITE)
    report = tmp_path / "junit.xml"
    result = pytester.runpytest(
        f"--junitxml={report}", "-o", "junit_family=xunit2", "-o", "junit_logging=system-out"
    )
    pytests = result.parseoutcomes()
    (session,) = read_junit(report, sut_name="shop")
    recorded = counts(session)
    assert recorded == {
        "passed": pytests["passed"],
        "failed": pytests["failed"],
        "skipped": pytests["skipped"],
        "xfailed": pytests["xfailed"],
        "error": pytests["errors"],
    }
    by_name = {result.nodeid: result for result in session.test_results}
    failed = by_name["test_shop.py::test_fail"]
    assert "one is not two" in failed.longreprtext
    assert "hello from stdout" in by_name["test_shop.py::test_pass"].capstdout
    assert by_name["test_shop.py::test_setup_error"].outcome is TestOutcome.ERROR
    assert "test_shop.py::test_many[2]" in by_name
    assert session.sut_name == "shop"
    assert session.testing_system["hostname"]


def test_surefire_reruns_flaky_attempts_properties_and_times(tmp_path: Path) -> None:
    report = tmp_path / "TEST-com.acme.CheckoutTest.xml"
    report.write_text(SUREFIRE, encoding="utf-8")
    (session,) = read_junit(report)
    assert session.sut_name == "com.acme.CheckoutTest"
    assert session.session_tags == {"java.version": "21.0.5", "branch": "main"}
    assert session.testing_system == {"hostname": "build-7"}
    assert session.session_start_time.isoformat() == "2026-11-30T10:15:00+00:00"
    assert [(r.nodeid.split("::")[-1], r.outcome.value) for r in session.test_results] == [
        ("pays", "passed"),
        ("refunds", "rerun"),
        ("refunds", "failed"),
        ("retries", "rerun"),
        ("retries", "rerun"),
        ("retries", "passed"),
        ("later", "skipped"),
    ]
    refunds = session.test_results[2]
    assert refunds.nodeid == "com.acme.CheckoutTest::refunds"
    assert (refunds.duration, refunds.longreprtext) == (0.75, "trace line 1\ntrace line 2")
    assert session.test_results[1].longreprtext == "first attempt"
    assert session.test_results[3].capstdout == "attempt 1"
    assert session.test_results[0].capstdout == "paid 12.00"
    assert [(g.nodeid.split("::")[-1], len(g.tests)) for g in session.rerun_test_groups] == [
        ("refunds", 2),
        ("retries", 3),
    ]
    assert session.session_duration == 3.25
    again = next(read_junit(report))
    assert again.session_id == session.session_id  # the same report imported twice is skipped, not doubled


def sessions_of_every_outcome() -> list[TestSession]:
    first = build_session("s-1", tests=8)  # passed, failed, skipped, xfailed, and a rerun group
    second = build_session("s-2", sut_name="web", tests=3, reruns=False, tags={"branch": "feat/ü"})
    second.test_results[0].outcome = TestOutcome.XPASSED
    second.test_results[1].outcome = TestOutcome.ERROR
    second.test_results[2].capstdout = "bell \x07 and nul \x00 in output"
    return [first, second]


def test_the_export_is_valid_against_the_jenkins_schema_and_round_trips(tmp_path: Path) -> None:
    sessions = sessions_of_every_outcome()
    target = tmp_path / "report.xml"
    assert InMemoryStorage(sessions).export_sessions(target) == 2
    SCHEMA.validate(str(target))
    back = InMemoryStorage()
    stats = back.import_sessions(target)
    assert (stats["added"], stats["errors"]) == (2, 0)
    for original in sessions:
        imported = back.get_session_by_id(original.session_id)
        assert imported is not None, original.session_id
        assert counts(imported) == counts(original)
        assert imported.sut_name == original.sut_name
        assert imported.session_tags == original.session_tags
        assert [r.nodeid for r in imported.test_results if r.outcome is not TestOutcome.RERUN] == [
            r.nodeid for r in original.test_results if r.outcome is not TestOutcome.RERUN
        ]
    web = back.get_session_by_id("s-2")
    assert web is not None
    assert web.test_results[2].capstdout == "bell \ufffd and nul \ufffd in output"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            "<testsuite><testcase name='a'>&lol2;</testcase></testsuite>",
            "refused: XML with a document type declaration or entities",
        ),
        ("<testsuite name='x'>\n<testcase name='a'>\n</testsuite>", ":3: not well-formed XML"),
        (
            "<project><modelVersion>4.0.0</modelVersion></project>",
            "not a JUnit report: the root element is <project>",
        ),
    ],
    ids=["billion-laughs", "malformed", "pom"],
)
def test_hostile_or_foreign_xml_is_one_line_and_exit_3(tmp_path: Path, content: str, reason: str) -> None:
    report = tmp_path / "report.xml"
    report.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidDataError, match=reason.replace("<", ".").replace(">", ".")):
        InMemoryStorage().import_sessions(report)
    result = insight("import", report, "--storage", tmp_path / "store", home=tmp_path / "home")
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"insight: error: {report}")
    assert not (tmp_path / "store").exists()


def test_the_cli_imports_reports_and_exports_junit(pytester: pytest.Pytester, tmp_path: Path) -> None:
    home = tmp_path / "home"
    pytester.makepyfile(test_shop=SUITE)
    pytester.runpytest(f"--junitxml={tmp_path / 'reports' / 'pytest.xml'}")
    (tmp_path / "reports" / "TEST-checkout.xml").write_text(SUREFIRE, encoding="utf-8")
    store = tmp_path / "store"
    imported = insight(
        "import", tmp_path / "reports", "--storage", store, "--sut", "shop", "--json", home=home
    )
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["added"] == 2
    assert {s.sut_name for s in JSONStorage(store).load_sessions()} == {"shop"}
    again = insight("import", tmp_path / "reports", "--storage", store, "--sut", "shop", "--json", home=home)
    assert json.loads(again.stdout)["skipped"] == 2

    for target, extra in ((tmp_path / "out.xml", []), (tmp_path / "out.report", ["--format", "junit"])):
        exported = insight("export", target, "--storage", store, *extra, home=home)
        assert exported.returncode == 0, exported.stderr
        SCHEMA.validate(str(target))
    suites = ElementTree.parse(tmp_path / "out.xml").findall("testsuite")
    assert sorted(int(suite.get("tests", "0")) for suite in suites) == [
        4,
        8,
    ]  # Surefire's 4 cases, pytest's 8


def test_one_session_per_testsuite_on_request(tmp_path: Path) -> None:
    two = SUREFIRE.replace('<?xml version="1.0" encoding="UTF-8"?>', "")
    report = tmp_path / "suites.xml"
    report.write_text(
        f"<testsuites>{two}{two.replace('CheckoutTest', 'CartTest')}</testsuites>", encoding="utf-8"
    )
    assert len(list(read_junit(report))) == 1
    per_suite = list(read_junit(report, grouping="testsuite"))
    assert [s.sut_name for s in per_suite] == ["com.acme.CheckoutTest", "com.acme.CartTest"]
    assert len({s.session_id for s in per_suite}) == 2
    result = insight(
        "import", report, "--junit-sessions", "testsuite", "--storage", tmp_path / "store", "--json",
        home=tmp_path / "home",
    )  # fmt: skip
    assert json.loads(result.stdout)["added"] == 2, result.stderr


def test_a_quoted_glob_imports_every_report_it_matches(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    (reports / "unit").mkdir(parents=True)
    (reports / "unit" / "TEST-a.xml").write_text(SUREFIRE, encoding="utf-8")
    (reports / "TEST-b.xml").write_text(SUREFIRE.replace("CheckoutTest", "CartTest"), encoding="utf-8")
    (reports / "notes.txt").write_text("not a report", encoding="utf-8")
    home = tmp_path / "home"
    store = tmp_path / "store"
    result = insight("import", f"{reports}/**/TEST-*.xml", "--storage", store, "--json", home=home)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["added"] == 2
    none = insight("import", f"{reports}/*.json", "--storage", tmp_path / "store", home=home)
    assert none.returncode == 0
    assert none.stderr == f"insight: warning: no bundles found at {reports}/*.json\n"
