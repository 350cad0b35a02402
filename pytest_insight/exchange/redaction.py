"""Find secrets in captured output, failure texts and tags, and replace them by ``[REDACTED:<kind>]``.

Test output carries secrets: environment dumps, connection strings, request
headers. They are redacted when a run is recorded and again whenever
sessions leave the machine (an export to a file or bucket, a JUnit report), so
a session imported from elsewhere is cleaned too. Only counts are reported,
never the values.

The kinds, each a pattern for a well-known token format or a shape that is
a secret wherever it appears:

=====================  ========================================================
``aws-access-key-id``  ``AKIA...``/``ASIA...`` and the other IAM key id prefixes
``aws-secret-key``     40 characters of base64 assigned to an ``aws..secret`` name
``github-token``       ``ghp_``, ``gho_``, ``ghu_``, ``ghs_``, ``ghr_``, ``github_pat_``
``gitlab-token``       ``glpat-``, ``gldt-``, ``glrt-`` and the other GitLab prefixes
``slack-token``        ``xoxb-``, ``xoxp-``, ... and Slack webhook URLs
``jwt``                three base64url parts starting ``eyJ``
``bearer-token``       the credential after ``Bearer`` (an ``Authorization`` header)
``private-key``        a PEM ``PRIVATE KEY`` block, whole
``url-password``       the password of ``scheme://user:password@host``
``password``           the value (6 characters or more) of ``password=``, ``secret:``, ``token = ...``
``custom``             a pattern the user added
=====================  ========================================================

Where a pattern has a group named ``secret``, only that group is replaced,
so ``password=hunter2`` becomes ``password=[REDACTED:password]``.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

import msgspec

from pytest_insight.errors import ConfigurationError
from pytest_insight.model.sessions import TestSession

__all__ = ["KINDS", "Redactor"]

KINDS: dict[str, str] = {
    "private-key": (
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
        r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    ),
    "aws-access-key-id": (
        r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])"
    ),
    "aws-secret-key": (
        r"(?i:aws_?secret(?:_?access)?_?key|secret_?access_?key)[\"']?\s*[:=]\s*[\"']?"
        r"(?P<secret>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
    ),
    "github-token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
    "gitlab-token": r"\bgl(?:pat|dt|rt|ptt|ft|imt|agent|oas|cbt|soat)-[A-Za-z0-9_-]{20,}",
    "slack-token": (
        r"\bxox[abpors]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}"
    ),
    "jwt": r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    "bearer-token": r"(?i:\bbearer)\s+(?P<secret>[A-Za-z0-9._~+/-]{12,}=*)",
    "url-password": r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@\"']+:(?P<secret>[^\s@/\"']+)@",
    "password": (
        r"(?i:\b(?:password|passwd|pwd|secret|token|api_?key|access_?key|client_?secret)\b)"
        r"[\"']?\s*[:=]\s*(?P<secret>\"[^\"\n]{4,}\"|'[^'\n]{4,}'|[^\s\"',;&]{6,})"
    ),
}


# What a text must hold for a kind's pattern to match: words found in the lower-cased text, or a
# case-sensitive prefix pattern. Both are many times faster than the patterns themselves (a
# case-insensitive pattern scans slowly), and almost all captured output holds none of them.
_NEEDLES: dict[str, tuple[tuple[str, ...], str]] = {
    "private-key": (("private key",), ""),
    "aws-access-key-id": ((), r"A(?:KIA|SIA|GPA|IDA|ROA|IPA|NPA|NVA|BIA|CCA)"),
    "aws-secret-key": (("secret",), ""),
    "github-token": ((), r"gh[pousr]_|github_pat_"),
    "gitlab-token": ((), r"gl[a-z]{2,5}-"),
    "slack-token": (("hooks.slack.com",), r"xox[abpors]-"),
    "jwt": ((), r"eyJ"),
    "bearer-token": (("bearer",), ""),
    "url-password": (("://",), ""),
    "password": (("pass", "pwd", "secret", "token", "key"), ""),
}


# How far before a needle a match of the kind can start: the keyword of ``password`` holds its
# needle at most 7 characters in (``client_secret``, ``access_key``). A kind with a reach is
# matched only at those starts, not scanned for along the whole text: a test's output holds
# "passed", "key" and "token" all the time, and a scan of it with a case-insensitive pattern
# is the slow part of redaction. None: scanned, when a needle is found (rare or fast kinds);
# url-password's matches start where the scheme before its "://" does.
_REACH: dict[str, int | None] = {
    "private-key": None,
    "aws-access-key-id": 0,
    "aws-secret-key": 4,
    "github-token": 0,
    "gitlab-token": 0,
    "slack-token": None,
    "jwt": 0,
    "bearer-token": 0,
    "url-password": None,
    "password": 7,
}

# What the lower-cased text must hold right after a needle for a match to be there: what the
# kind's pattern requires after it, loosened (the rest of a keyword, then the assignment). Most
# needles found ("token" in prose, "passed") fail it at once, and no match start is tried for them.
_AFTER_NEEDLE: dict[str, str] = {
    "aws-secret-key": r"[a-z_]*[\"']?\s*[:=]",
    "bearer-token": r"\s+[a-z0-9._~+/-]{12}",
    "url-password": r"[^\s:/@\"']+:[^\s@/\"']+@",
    "password": r"[a-z_]*[\"']?\s*[:=]",
}

# The characters a case-insensitive pattern takes for an ASCII letter, folded to it (İ also keeps
# the folded text as long as the text, which the needles' positions rely on).
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_TEXT_FIELDS = ("capstdout", "capstderr", "caplog", "longreprtext")  # a result's texts, in this order
_SEPARATOR = "\n\x00\n"  # between fields searched as one text: no secret's pattern ends in it


def _folded(value: str) -> str:
    """``value`` lower-cased for finding needles, character for character."""
    return value.lower() if value.isascii() else value.translate(_FOLD).lower()


class _Kind(NamedTuple):
    """A kind of secret; its patterns compile on first use (re caches them): most texts hold no needle."""

    name: str
    source: str
    words: tuple[str, ...]
    prefix: re.Pattern[str] | None
    reach: int | None
    after_source: str | None

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.source)

    @property
    def after(self) -> re.Pattern[str] | None:
        return None if self.after_source is None else re.compile(self.after_source)

    def may_match(self, value: str, lowered: str) -> bool:
        if self.prefix is not None and self.prefix.search(value) is not None:
            return True
        return any(word in lowered for word in self.words)

    def matches(self, value: str, lowered: str) -> Iterator[re.Match[str]]:
        """The matches ``pattern.finditer(value)`` finds, found faster where the kind has a reach."""
        if len(lowered) != len(value) or (self.reach is None and self.name != "url-password"):
            if self.may_match(value, lowered):
                yield from self.pattern.finditer(value)
            return
        resume = 0
        pattern = self.pattern
        for start in sorted(set(self._starts(value, lowered))):
            if start >= resume and (match := pattern.match(value, start)) is not None:
                resume = match.end()
                yield match

    def _starts(self, value: str, lowered: str) -> Iterator[int]:
        """Every position a match can start at: near each needle (``lowered`` aligns with ``value``)."""
        if self.prefix is not None:
            yield from (found.start() for found in self.prefix.finditer(value))
        after = self.after
        for word in self.words:
            at = lowered.find(word)
            while at >= 0:
                if after is not None and after.match(lowered, at + len(word)) is None:
                    pass
                elif self.reach is None:  # url-password: the scheme before "://"
                    first = at
                    while first > 0 and value[first - 1] in _SCHEME_CHARS:
                        first -= 1
                    yield from range(first, at)
                else:
                    yield from range(max(at - self.reach, 0), at + 1)
                at = lowered.find(word, at + 1)


class _ResultTexts(msgspec.Struct):
    capstdout: str = ""
    capstderr: str = ""
    caplog: str = ""
    longreprtext: str = ""


class _SessionTexts(msgspec.Struct):
    test_results: list[_ResultTexts] = []
    session_tags: dict[str, str] = {}


_LINE_TEXTS = msgspec.json.Decoder(_SessionTexts)


class Redactor:
    """Replaces every secret a text holds, counting each kind.

    Args:
        patterns: extra regular expressions, of kind ``custom``.
        allow: values never redacted (a test fixture's fake key, a public token).

    Attributes:
        counts: the secrets replaced so far, by kind.
    """

    def __init__(self, patterns: Sequence[str] = (), allow: Sequence[str] = ()) -> None:
        self.patterns = tuple(patterns)
        self.allow = tuple(allow)
        self.counts: Counter[str] = Counter()
        kinds = [
            _Kind(
                kind,
                pattern,
                _NEEDLES[kind][0],
                re.compile(_NEEDLES[kind][1]) if _NEEDLES[kind][1] else None,
                _REACH[kind],
                _AFTER_NEEDLE.get(kind),
            )
            for kind, pattern in KINDS.items()
        ]
        for pattern in self.patterns:
            try:
                custom = re.compile(pattern)
            except re.error as exc:
                raise ConfigurationError(f"redaction pattern {pattern!r}: {exc}") from None
            kinds.append(_Kind("custom", pattern, (), custom, None, None))
        self._kinds = kinds
        self._allowed = frozenset(self.allow)
        self._words = tuple(sorted({word for kind in kinds for word in kind.words}))
        self._prefixes = [kind.prefix for kind in kinds if kind.prefix is not None]

    def text(self, value: str) -> str:
        """``value`` with its secrets replaced (the same string when it holds none)."""
        if not value:
            return value
        lowered = _folded(value)
        if not self._may_hold(value, lowered):
            return value
        for kind in self._kinds:
            pieces: list[str] = []
            done = 0
            for match in kind.matches(value, lowered):
                pieces += (value[done : match.start()], self._replace(match, kind=kind.name))
                done = match.end()
            if pieces:
                value = "".join(pieces) + value[done:]
                lowered = _folded(value)
        return value

    def redacted_line(self, line: bytes) -> TestSession | None:
        """The session of a stored line with its secrets replaced, or None when it holds none.

        Only the line's text fields are read and searched, once, so that a clean
        session, the common case, is never decoded whole.

        Raises:
            InvalidDataError: the line holds a secret and is no session.
        """
        from pytest_insight.model.lenient import read_line

        touched = self._touched_in_line(line)
        if touched is not None and not touched:
            return None
        session = read_line(line)
        self._redact_fields(session, touched)
        return session

    def session(self, session: TestSession) -> TestSession:
        """Redact ``session`` in place (output, logs, failure texts, tags) and return it."""
        self._redact_fields(session, None)
        return session

    def _redact_fields(self, session: TestSession, touched: set[int] | None) -> None:
        """Redact the fields of ``session`` that hold a secret (``touched``: their indexes, when known)."""
        places = [
            (result, name)
            for result in session.test_results
            for name in _TEXT_FIELDS
            if getattr(result, name)
        ]
        tags = list(session.session_tags)
        fields = [getattr(result, name) for result, name in places]
        fields += [session.session_tags[key] for key in tags]
        for index in sorted(self._touched(fields) if touched is None else touched):
            if index < len(places):
                result, name = places[index]
                setattr(result, name, self.text(fields[index]))
            else:
                key = tags[index - len(places)]
                session.session_tags[key] = self.text(fields[index])

    def _touched_in_line(self, line: bytes) -> set[int] | None:
        """:meth:`_touched` of a line's texts, in :meth:`_redact_fields`' order; None when unreadable."""
        try:
            texts = _LINE_TEXTS.decode(line)
        except msgspec.DecodeError:
            return None  # not the shape expected: decoded whole, it is redacted field by field
        fields = [
            text
            for result in texts.test_results
            for text in (result.capstdout, result.capstderr, result.caplog, result.longreprtext)
            if text
        ]
        return self._touched([*fields, *texts.session_tags.values()])

    def sessions(self, sessions: Iterable[TestSession]) -> list[TestSession]:
        """Redact each of ``sessions`` in place; return them as a list."""
        return [self.session(each) for each in sessions]

    @property
    def total(self) -> int:
        """How many secrets were replaced so far."""
        return sum(self.counts.values())

    def summary(self) -> str:
        """``3 secrets redacted (2 aws-access-key-id, 1 password)``, or ``""`` when none was."""
        if not self.total:
            return ""
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts.items()))
        return f"{self.total} secret{'s' if self.total != 1 else ''} redacted ({kinds})"

    def _may_hold(self, value: str, lowered: str) -> bool:
        """Whether any kind's needle is in ``value``: most texts hold none, and are done with here."""
        return any(word in lowered for word in self._words) or any(
            prefix.search(value) is not None for prefix in self._prefixes
        )

    def _touched(self, fields: Sequence[str]) -> set[int]:
        """The indexes of ``fields`` that :meth:`text` would change, found in one pass over all of them.

        The fields are searched as one text, each on lines of its own after a
        NUL. A match inside one field is the match a search of that field finds;
        a match across fields (no pattern ends at a NUL line, but a match may
        span one) marks every field it spans, so that a match it hides is not
        missed: those fields are redacted one by one, exactly.
        """
        joined = _SEPARATOR.join(fields)
        lowered = _folded(joined)
        if not self._may_hold(joined, lowered):
            return set()  # the common case, decided without a kind's pattern
        starts = list(itertools.accumulate((len(text) + len(_SEPARATOR) for text in fields[:-1]), initial=0))
        touched: set[int] = set()
        for kind in self._kinds:
            for match in kind.matches(joined, lowered):
                first = bisect.bisect_right(starts, match.start()) - 1
                last = bisect.bisect_right(starts, match.end() - 1) - 1
                if first != last or self._secret(match) is not None:
                    touched.update(range(first, last + 1))
        return touched

    def _secret(self, match: re.Match[str]) -> str | None:
        """The part of ``match`` to replace, or None where it is allowed or already replaced."""
        found = match.group("secret" if "secret" in match.re.groupindex else 0)
        if found is None or found in self._allowed or found.startswith("[REDACTED:"):
            return None
        return found

    def _replace(self, match: re.Match[str], *, kind: str) -> str:
        if self._secret(match) is None:
            return match.group(0)
        self.counts[kind] += 1
        secret = "secret" if "secret" in match.re.groupindex else 0
        start, end = match.span(secret)
        whole = match.group(0)
        offset = match.start(0)
        return f"{whole[: start - offset]}[REDACTED:{kind}]{whole[end - offset :]}"
