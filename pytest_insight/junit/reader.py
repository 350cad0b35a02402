"""Read JUnit XML reports (pytest's, Maven Surefire's and the like) as sessions.

The file is parsed as a stream (``iterparse``), one ``<testcase>`` at a time,
so a report of any size is read in bounded memory. It is parsed by
defusedxml: a document type declaration or an entity (the billion-laughs and
external-entity attacks) is refused, never expanded.

How a ``<testcase>`` becomes results:

=======================================  =====================================
``status`` attribute (written by         that outcome, when it names one
pytest-insight's own export)
``<failure>``                            ``failed``
``<error>``                              ``error`` (pytest: a failing setup or
                                         teardown; Surefire: an exception)
``<skipped type="pytest.xfail">``        ``xfailed``
any other ``<skipped>``                  ``skipped``
no child                                 ``passed``
each ``<rerunFailure>``/``<rerunError>``  a ``rerun`` result before the final
/``<flakyFailure>``/``<flakyError>``      one (Surefire's attempts)
=======================================  =====================================

The node id is ``file::Class::name`` when the case names its file (pytest's
xunit1) or comes from pytest (a suite named ``pytest``: the module is the
dotted class name up to its first capitalised part), else ``classname::name``.
Times become durations; ``system-out`` and ``system-err`` the captured
output; the failure's text (or message) the long representation; a suite's
properties the session's tags.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from pytest_insight.errors import InvalidDataError
from pytest_insight.junit import SESSION_ID_PROPERTY
from pytest_insight.model.session_ids import imported_session_id
from pytest_insight.model.sessions import RerunTestGroup, TestOutcome, TestResult, TestSession, to_utc

__all__ = ["Grouping", "read_junit"]

Grouping = Literal["file", "testsuite"]
_RERUNS = ("rerunFailure", "rerunError", "flakyFailure", "flakyError")
_OUTCOMES = {outcome.value: outcome for outcome in TestOutcome}
_MAX_DURATION = 366 * 24 * 3600.0


@dataclass
class _Suite:
    """What is known of one session while its test cases stream past."""

    name: str
    start: datetime
    hostname: str
    tags: dict[str, str] = field(default_factory=dict)
    results: list[TestResult] = field(default_factory=list)
    elapsed: float = 0.0


def read_junit(
    path: Path, *, sut_name: str | None = None, grouping: Grouping | None = None
) -> Iterator[TestSession]:
    """Yield the sessions of the JUnit report at ``path``.

    Args:
        path: the XML file.
        sut_name: the SUT of every session; the (first) suite's name when None.
        grouping: one session for the whole file, or one per ``<testsuite>``;
            when None, one per suite for pytest-insight's own exports (each
            suite was a session) and one for the file otherwise.

    Raises:
        InvalidDataError: the file is not well-formed XML (naming the line),
            declares a DTD or entities, or is not a JUnit report.
        OSError: the file cannot be read.
    """
    source = str(path)
    digest = _digest(path)
    fallback = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    with path.open("rb") as stream:
        suites = _suites(stream, source, fallback)
        first = next(suites, None)
        if first is None:
            raise InvalidDataError("not a JUnit report: no <testsuite> or <testcase>", source=source)
        if (grouping or ("testsuite" if SESSION_ID_PROPERTY in first.tags else "file")) == "testsuite":
            for number, suite in enumerate(itertools.chain([first], suites)):
                yield _session(suite, sut_name, f"{digest}:{number}")
            return
        for suite in suites:
            first.results += suite.results
            first.elapsed += suite.elapsed
            first.tags = {**suite.tags, **first.tags}
        yield _session(first, sut_name, digest)


def _digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


def _suites(stream: IO[bytes], source: str, fallback: datetime) -> Iterator[_Suite]:
    """Each ``<testsuite>`` with its cases; cases outside a suite count as one.

    A suite without a readable ``timestamp`` starts at ``fallback`` (the file's time).
    """
    suite: _Suite | None = None
    depth = 0
    root_seen = False
    try:
        for event, element in iterparse(stream, events=("start", "end"), forbid_dtd=True):
            tag = element.tag
            if event == "start":
                if not root_seen:
                    root_seen = True
                    if tag not in ("testsuites", "testsuite", "testcase"):
                        raise InvalidDataError(
                            f"not a JUnit report: the root element is <{tag}>", source=source
                        )
                if tag == "testsuite":
                    depth += 1
                    if depth == 1:
                        start = _time_attribute(element) or fallback
                        suite = _Suite(element.get("name", ""), start, element.get("hostname", ""))
                continue
            if tag == "testcase":
                if suite is None:  # cases outside any suite: one unnamed suite
                    suite = _Suite("", fallback, "")
                suite.results += _results(element, suite, source)
                element.clear()
            elif tag == "property" and suite is not None and element.get("name"):
                suite.tags[str(element.get("name"))] = element.get("value", element.text or "")
            elif tag == "testsuite":
                depth -= 1
                if depth == 0 and suite is not None:
                    yield suite
                    suite = None
                element.clear()
        if suite is not None:
            yield suite
    except ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise InvalidDataError(f"not well-formed XML: {_reason(exc)}", source=source, line=line) from None
    except DefusedXmlException as exc:
        raise InvalidDataError(
            f"refused: XML with a document type declaration or entities ({type(exc).__name__})", source=source
        ) from None


def _reason(exc: ParseError) -> str:
    return str(exc).split(":", 1)[0]


def _results(case: Element, suite: _Suite, source: str) -> list[TestResult]:
    name = case.get("name", "")
    classname = case.get("classname", "")
    nodeid = _nodeid(case.get("file"), classname, name, pytest_report=suite.name == "pytest")
    duration = _seconds(case.get("time"), source)
    stop_offset = suite.elapsed + duration
    start = suite.start + timedelta(seconds=suite.elapsed)
    suite.elapsed = stop_offset
    out = _text(case.find("system-out"))
    err = _text(case.find("system-err"))
    outcome, longrepr = _final(case)
    attempts = [
        TestResult(
            nodeid,
            TestOutcome.RERUN,
            start,
            start,
            0.0,
            capstdout=_text(rerun.find("system-out")),
            capstderr=_text(rerun.find("system-err")),
            longreprtext=_text(rerun.find("stackTrace")) or _text(rerun) or rerun.get("message", ""),
        )
        for rerun in case
        if rerun.tag in _RERUNS
    ]
    final = TestResult(
        nodeid,
        outcome,
        start,
        start + timedelta(seconds=duration),
        duration,
        capstdout=out,
        capstderr=err,
        longreprtext=longrepr,
    )
    return [*attempts, final]


def _final(case: Element) -> tuple[TestOutcome, str]:
    """The case's own outcome and failure text."""
    status = _OUTCOMES.get((case.get("status") or "").lower())
    for child in case:
        if child.tag in ("failure", "error"):
            text = _text(child) or child.get("message", "")
            default = TestOutcome.FAILED if child.tag == "failure" else TestOutcome.ERROR
            return status or default, text
        if child.tag == "skipped":
            xfail = (child.get("type") or "") == "pytest.xfail"
            default = TestOutcome.XFAILED if xfail else TestOutcome.SKIPPED
            return status or default, _text(child) or child.get("message", "")
    return status or TestOutcome.PASSED, ""


def _nodeid(file: str | None, classname: str, name: str, *, pytest_report: bool) -> str:
    """``file::Class::name`` as pytest names the test, where the report lets it be known."""
    if not file and pytest_report and classname:
        # pytest's xunit2 names no file: the module is the dotted classname up to the first class
        parts = classname.split(".")
        cut = next((i for i, part in enumerate(parts) if part[:1].isupper()), len(parts))
        file = "/".join(parts[:cut]) + ".py" if cut else None
    if file:
        module = file.removesuffix(".py").replace("/", ".").replace("\\", ".")
        rest = classname.removeprefix(module).lstrip(".") if classname.startswith(module) else ""
        return "::".join(part for part in (file.replace("\\", "/"), *rest.split("."), name) if part)
    return f"{classname}::{name}" if classname else name


def _text(element: Element | None) -> str:
    return "".join(element.itertext()) if element is not None else ""


def _seconds(value: str | None, source: str) -> float:
    if not value:
        return 0.0
    try:
        seconds = float(value.replace(",", ""))  # Surefire writes 1,234.5 in some locales
    except ValueError:
        raise InvalidDataError(f"not a number: {value[:64]!r}", source=source, field="time") from None
    if not 0 <= seconds <= _MAX_DURATION:  # NaN fails too
        raise InvalidDataError(f"out of range: {value[:64]!r}", source=source, field="time")
    return seconds


def _time_attribute(element: Element) -> datetime | None:
    value = element.get("timestamp")
    if not value:
        return None
    try:
        return to_utc(datetime.fromisoformat(value))
    except ValueError:
        return None  # an unreadable timestamp: the file's time stands in


def _session(suite: _Suite, sut_name: str | None, digest: str) -> TestSession:
    start = suite.start
    sut = sut_name or suite.name or "junit"
    groups = [
        RerunTestGroup(nodeid, [r for r in suite.results if r.nodeid == nodeid])
        for nodeid in dict.fromkeys(r.nodeid for r in suite.results if r.outcome is TestOutcome.RERUN)
    ]
    system: dict[str, Any] = {"hostname": suite.hostname} if suite.hostname else {}
    exported_id = suite.tags.pop(SESSION_ID_PROPERTY, "")  # our own export: the id it had
    return TestSession(
        sut_name=sut,
        session_id=exported_id
        or imported_session_id(sut, start, hashlib.sha256(digest.encode()).hexdigest()),
        session_start_time=start,
        session_stop_time=start + timedelta(seconds=suite.elapsed),
        session_duration=suite.elapsed,
        session_tags=suite.tags,
        testing_system=system,
        test_results=suite.results,
        rerun_test_groups=groups,
    )
