"""Write sessions as JUnit XML that GitHub, GitLab, Jenkins and Surefire-reading tools accept.

One ``<testsuite>`` a session (named by its SUT), one ``<testcase>`` a
result. A test that pytest-rerunfailures ran again carries its earlier
attempts as Surefire does: ``<flakyFailure>`` when it passed in the end,
``<rerunFailure>`` when it still failed. Each case's ``status`` attribute is
its exact outcome (``xpassed``, ``xfailed``, ...), which the CI tools ignore
and :mod:`pytest_insight.junit.reader` reads back, so that importing an
export keeps every outcome count. The session's id and tags are the suite's
properties. Times are UTC without an offset, as the Jenkins schema has them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from xml.sax.saxutils import XMLGenerator
from xml.sax.xmlreader import AttributesImpl

from pytest_insight.junit import SESSION_ID_PROPERTY
from pytest_insight.model.sessions import TestOutcome, TestResult, TestSession

__all__ = ["junit_pieces"]

# characters XML 1.0 cannot carry at all: captured output may hold them (terminal control codes)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_FAILING = {TestOutcome.FAILED: "failure", TestOutcome.ERROR: "error"}


def junit_pieces(sessions: Iterable[TestSession]) -> Iterator[bytes]:
    """The JUnit document for ``sessions``, a suite at a time (for a streaming write)."""
    buffer = io.StringIO()
    xml = XMLGenerator(buffer, encoding="utf-8", short_empty_elements=True)
    xml.startDocument()
    _start(xml, "testsuites", {"name": "pytest-insight"})
    yield _drain(buffer)
    for session in sessions:
        _suite(xml, session)
        yield _drain(buffer)
    xml.endElement("testsuites")
    xml.endDocument()
    buffer.write("\n")
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text.encode("utf-8")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _suite(xml: XMLGenerator, session: TestSession) -> None:
    finals = [result for result in session.test_results if result.outcome is not TestOutcome.RERUN]
    counts = {outcome: sum(r.outcome is outcome for r in finals) for outcome in TestOutcome}
    attributes = {
        "name": _clean(session.sut_name),
        "tests": str(len(finals)),
        "failures": str(counts[TestOutcome.FAILED]),
        "errors": str(counts[TestOutcome.ERROR]),
        "skipped": str(counts[TestOutcome.SKIPPED] + counts[TestOutcome.XFAILED]),
        "time": f"{session.session_duration:.3f}",
        "timestamp": session.session_start_time.replace(tzinfo=None).isoformat(timespec="seconds"),
    }
    hostname = session.testing_system.get("hostname")
    if isinstance(hostname, str) and hostname:
        attributes["hostname"] = _clean(hostname)
    _start(xml, "testsuite", attributes)
    _start(xml, "properties", {})
    properties = {SESSION_ID_PROPERTY: session.session_id, **session.session_tags}
    for name, value in properties.items():
        _start(xml, "property", {"name": _clean(name), "value": _clean(value)})
        xml.endElement("property")
    xml.endElement("properties")
    attempts: dict[str, list[TestResult]] = {}
    for result in session.test_results:
        if result.outcome is TestOutcome.RERUN:
            attempts.setdefault(result.nodeid, []).append(result)
        else:
            _case(xml, result, attempts.pop(result.nodeid, []))
    for left in attempts.values():  # attempts with no final result: each a case of its own
        for attempt in left:
            _case(xml, attempt, [])
    xml.endElement("testsuite")


def _names(nodeid: str) -> dict[str, str]:
    """``file``, ``classname`` and ``name`` as pytest writes them for a node id."""
    file, _, rest = nodeid.partition("::")
    parts = rest.split("::") if rest else []
    module = file.removesuffix(".py").replace("/", ".")
    name = parts[-1] if parts else nodeid
    return {"name": _clean(name), "classname": _clean(".".join([module, *parts[:-1]])), "file": _clean(file)}


def _case(xml: XMLGenerator, result: TestResult, attempts: list[TestResult]) -> None:
    outcome = result.outcome
    _start(
        xml, "testcase", {**_names(result.nodeid), "time": f"{result.duration:.3f}", "status": outcome.value}
    )
    text = _clean(result.longreprtext)
    message = text.strip().splitlines()[-1][:200] if text.strip() else outcome.value
    if outcome in _FAILING:
        _text_element(xml, _FAILING[outcome], text, {"message": message})
    elif outcome is TestOutcome.XFAILED:
        _text_element(xml, "skipped", text, {"type": "pytest.xfail", "message": message})
    elif outcome in (TestOutcome.SKIPPED, TestOutcome.RERUN):
        _text_element(xml, "skipped", text, {"message": message})
    flaky = outcome not in _FAILING
    for attempt in attempts:
        kind = "flakyFailure" if flaky else "rerunFailure"
        detail = _clean(attempt.longreprtext)
        _start(xml, kind, {"message": detail.strip().splitlines()[-1][:200] if detail.strip() else "rerun"})
        for tag, value in (
            ("stackTrace", detail),
            ("system-out", attempt.capstdout),
            ("system-err", attempt.capstderr),
        ):
            if value:
                _text_element(xml, tag, _clean(value), {})
        xml.endElement(kind)
    output = result.capstdout + (f"\n--- captured log ---\n{result.caplog}" if result.caplog else "")
    if output:
        _text_element(xml, "system-out", _clean(output), {})
    if result.capstderr:
        _text_element(xml, "system-err", _clean(result.capstderr), {})
    xml.endElement("testcase")


def _start(xml: XMLGenerator, tag: str, attributes: dict[str, str]) -> None:
    xml.startElement(tag, AttributesImpl(attributes))


def _last_line(text: str) -> str:
    """A failure's message: the last line of its text, where pytest puts the error."""
    lines = text.strip().splitlines()
    return lines[-1][:200] if lines else ""


def _text_element(xml: XMLGenerator, tag: str, text: str, attributes: dict[str, str]) -> None:
    _start(xml, tag, attributes)
    if text:
        xml.characters(text)
    xml.endElement(tag)
