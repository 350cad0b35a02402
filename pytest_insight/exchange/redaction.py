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

import functools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

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


class _Kind(NamedTuple):
    name: str
    pattern: re.Pattern[str]
    words: tuple[str, ...]
    prefix: re.Pattern[str] | None

    def may_match(self, value: str, lowered: str) -> bool:
        if self.prefix is not None and self.prefix.search(value) is not None:
            return True
        return any(word in lowered for word in self.words)


@dataclass
class Redactor:
    """Replaces every secret a text holds, counting each kind.

    Args:
        patterns: extra regular expressions, of kind ``custom``.
        allow: values never redacted (a test fixture's fake key, a public token).
    """

    patterns: Sequence[str] = ()
    allow: Sequence[str] = ()
    counts: Counter[str] = field(default_factory=Counter, init=False)

    def __post_init__(self) -> None:
        kinds = [
            _Kind(
                kind,
                re.compile(pattern),
                _NEEDLES[kind][0],
                re.compile(_NEEDLES[kind][1]) if _NEEDLES[kind][1] else None,
            )
            for kind, pattern in KINDS.items()
        ]
        for pattern in self.patterns:
            try:
                custom = re.compile(pattern)
            except re.error as exc:
                raise ConfigurationError(f"redaction pattern {pattern!r}: {exc}") from None
            kinds.append(_Kind("custom", custom, (), custom))
        self._kinds = kinds
        self._allowed = frozenset(self.allow)

    def text(self, value: str) -> str:
        """``value`` with its secrets replaced (the same string when it holds none)."""
        if not value:
            return value
        lowered = value.lower()
        for kind in self._kinds:
            if kind.may_match(value, lowered):
                value = kind.pattern.sub(functools.partial(self._replace, kind=kind.name), value)
        return value

    def may_hold_secret(self, value: str) -> bool:
        """Whether :meth:`text` could replace anything in ``value`` (a cheap test, no false negatives)."""
        lowered = value.lower()
        return any(kind.may_match(value, lowered) for kind in self._kinds)

    def _replace(self, match: re.Match[str], *, kind: str) -> str:
        secret = "secret" if "secret" in (match.re.groupindex or {}) else 0
        found = match.group(secret)
        if found is None or found in self._allowed or found.startswith("[REDACTED:"):
            return match.group(0)
        self.counts[kind] += 1
        start, end = match.span(secret)
        whole = match.group(0)
        offset = match.start(0)
        return f"{whole[: start - offset]}[REDACTED:{kind}]{whole[end - offset :]}"

    def session(self, session: TestSession) -> TestSession:
        """Redact ``session`` in place (output, logs, failure texts, tags) and return it."""
        for result in session.test_results:
            result.capstdout = self.text(result.capstdout)
            result.capstderr = self.text(result.capstderr)
            result.caplog = self.text(result.caplog)
            result.longreprtext = self.text(result.longreprtext)
        session.session_tags = {key: self.text(value) for key, value in session.session_tags.items()}
        return session

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
