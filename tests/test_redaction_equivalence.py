"""Redaction matches near needles instead of scanning: it must replace exactly what a scan would."""

from __future__ import annotations

import re
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_insight.exchange.redaction import KINDS, Redactor
from pytest_insight.format.bundle import encode_session
from tests.conftest import build_session
from tests.test_redaction import SAMPLES

ALLOWED = "hunter2hunter2"
PIECES = [
    *(text for text, _ in SAMPLES.values()),
    "password", "Password", "PASSWD", "pwd", "secret", "client_secret", "clientSecret", "token", "api_key",
    "ApiKey", "access_key", "aws_secret_access_key", "AWS_SECRET_KEY", "Bearer", "bearer ", "://",
    "https://", "user:", "@", "=", ": ", " = ", "'", '"', " ", "\n", "\t", ";", ",", "&", "AKIA", "ghp_",
    "gldt-", "xoxp-", "eyJ", "passed", "keyword", "x", "Q7", "0123456789", "abcdefghij", "/+=",
    "\u0130", "\u0131", "\u017f", "\u212a", "pa\u017fsword=", "\u017fecret: ",
    ALLOWED, "[REDACTED:password]", "client_secret=abcdefghij", "ACCESS_KEY: 0123456789",
    "aws_secret_key = '0123456789abcdefghij0123456789abcdefghij'", "https://me:pa55word@host",
]  # fmt: skip


def scanned(
    value: str, patterns: tuple[str, ...] = (), allow: tuple[str, ...] = ()
) -> tuple[str, Counter[str]]:
    """What redaction did before it matched near needles: every kind's pattern substituted over the text."""
    counts: Counter[str] = Counter()
    kinds = [*KINDS.items(), *(("custom", pattern) for pattern in patterns)]
    for kind, pattern in kinds:

        def replace(match: re.Match[str], kind: str = kind) -> str:
            group = "secret" if "secret" in match.re.groupindex else 0
            found = match.group(group)
            if found is None or found in allow or found.startswith("[REDACTED:"):
                return match.group(0)
            counts[kind] += 1
            start, end = match.span(group)
            text = match.string
            return f"{text[match.start(0) : start]}[REDACTED:{kind}]{text[end : match.end(0)]}"

        value = re.sub(pattern, replace, value)
    return value, counts


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=3), max_size=30).map("".join))
def test_redaction_replaces_what_a_scan_of_every_pattern_replaces(value: str) -> None:
    redactor = Redactor(allow=[ALLOWED])
    expected, counts = scanned(value, allow=(ALLOWED,))
    assert redactor.text(value) == expected
    assert redactor.counts == counts


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=20).map("".join))
def test_a_custom_pattern_is_scanned_for_everywhere(value: str) -> None:
    patterns = (r"Q7\d+",)
    assert Redactor(patterns).text(value) == scanned(value, patterns)[0]


FIELDS = ("capstdout", "capstderr", "caplog", "longreprtext")
TEXT = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(TEXT, TEXT, TEXT, TEXT), min_size=1, max_size=6),
    st.dictionaries(TEXT, TEXT, max_size=3),
)
def test_a_session_is_redacted_field_by_field_and_its_line_tells_whether_it_must_be(
    texts: list[tuple[str, str, str, str]], tags: dict[str, str]
) -> None:
    session = build_session("eq", tests=len(texts), reruns=False, tags=tags)
    for result, (out, err, log, failure) in zip(session.test_results, texts, strict=True):
        result.capstdout, result.capstderr, result.caplog, result.longreprtext = out, err, log, failure
    line = encode_session(session).line
    by_field = Redactor(allow=[ALLOWED])
    expected = [
        (
            by_field.text(r.capstdout),
            by_field.text(r.capstderr),
            by_field.text(r.caplog),
            by_field.text(r.longreprtext),
        )
        for r in session.test_results
    ]
    expected_tags = {key: by_field.text(value) for key, value in session.session_tags.items()}

    redactor = Redactor(allow=[ALLOWED])
    from_line = Redactor(allow=[ALLOWED]).redacted_line(line)
    if not by_field.total:
        assert from_line is None
    else:
        assert from_line is not None
        assert [tuple(getattr(r, name) for name in FIELDS) for r in from_line.test_results] == expected
        assert from_line.session_tags == expected_tags
    redactor.session(session)
    assert [(r.capstdout, r.capstderr, r.caplog, r.longreprtext) for r in session.test_results] == expected
    assert session.session_tags == expected_tags
    assert redactor.counts == by_field.counts


def test_a_match_across_two_fields_does_not_hide_one_inside_the_second() -> None:
    session = build_session("across", tests=1, reruns=False)
    result = session.test_results[0]
    result.capstdout = "-----BEGIN RSA PRIVATE KEY-----\ntruncated by the capture"  # a block cut short
    result.capstderr = SAMPLES["private-key"][0]  # a whole block, after the cut one when searched as one
    expected = Redactor().text(result.capstderr)
    assert "[REDACTED:private-key]" in expected
    assert Redactor().redacted_line(encode_session(session).line) is not None
    Redactor().session(session)
    assert (result.capstdout, result.capstderr) == (
        "-----BEGIN RSA PRIVATE KEY-----\ntruncated by the capture",
        expected,
    )
