"""``insight report --html``: one self-contained page of a history.

The page holds inline SVG charts (see :mod:`.report_charts`), inline CSS and
a few lines of inline script for the SUT filter. Its Content-Security-Policy
allows no network request at all, so it opens the same offline, from a CI
artifact or from a bucket.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from statistics import median

from pytest_insight.analysis.durations import find_slower
from pytest_insight.analysis.flaky import find_flaky
from pytest_insight.analysis.history import History
from pytest_insight.analysis.regressions import Change, find_changes
from pytest_insight.analysis.report_charts import duration_chart, pass_rate_chart, sparkline
from pytest_insight.analysis.trends import daily_trends

__all__ = ["render_report"]

_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;padding:12px;max-width:1100px;color:#222}
h1{font-size:20px}h2{font-size:17px;margin-top:28px}h3{font-size:15px}
table{border-collapse:collapse;width:100%;margin:6px 0}td,th{padding:3px 6px;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}th{background:#f4f4f4}.num{text-align:right}
.id{font-family:monospace;word-break:break-all}.strip span{display:inline-block;width:6px;height:14px;
margin-right:1px}.P{background:#2a9d3a}.F{background:#d1342f}.chart svg{max-width:100%;height:auto}
.scroll{overflow-x:auto}.muted{color:#777}
"""
_SCRIPT = """
document.getElementById('sut').addEventListener('change', function (event) {
  var chosen = event.target.value;
  document.querySelectorAll('[data-sut]').forEach(function (element) {
    element.hidden = chosen !== '' && element.getAttribute('data-sut') !== chosen;
  });
});
"""


def render_report(history: History, *, min_runs: int = 5, slowest: int = 10, title: str = "") -> str:
    """Return the HTML page of ``history``: trends, flaky tests, regressions, fixes, slowest tests.

    Raises:
        DependencyError: vl-convert-python (the ``report`` extra) is not installed.
    """
    flaky = find_flaky(history, min_runs=min_runs)
    regressions, fixes = find_changes(history, min_runs=min_runs)
    slower = find_slower(history)
    trends = daily_trends(history, {(t.sut_name, t.nodeid) for t in flaky})
    suts = sorted({session.sut_name for session in history.sessions})
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{escape(title or 'pytest-insight report')}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title or 'pytest-insight report')}</h1>",
        f"<p class='muted'>{len(history.sessions)} sessions, generated "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}</p>",
        "<label>SUT <select id='sut'><option value=''>all</option>",
        *(f"<option>{escape(sut)}</option>" for sut in suts),
        "</select></label>",
    ]
    for sut in suts:
        days = [t for t in trends if t.sut_name == sut]
        parts += [
            f"<section data-sut='{escape(sut)}'><h2>{escape(sut)}</h2>",
            f"<h3>Pass rate per day</h3><div class='chart'>{pass_rate_chart(days)}</div>",
            f"<h3>Suite duration per day (median)</h3><div class='chart'>{duration_chart(days)}</div>",
            "</section>",
        ]
    parts.append("<h2>Flaky tests</h2>")
    rows = [
        (
            t.sut_name,
            f"<td class='id'>{escape(t.nodeid)}</td><td class='num'>{t.failures}/{t.runs}</td>"
            f"<td class='num'>{t.flip_rate:.2f}</td><td>{escape(t.evidence)}</td>"
            f"<td class='num'>{t.confidence:.2f}</td><td class='strip'>{_strip(t.recent)}</td>",
        )
        for t in flaky
    ]
    parts.append(_table(["test", "failed", "flip rate", "evidence", "confidence", "recent"], rows))
    parts.append("<h2>Regressions</h2>")
    parts.append(_changes(regressions, "last good", "first bad", "still failing"))
    parts.append("<h2>Slower tests</h2>")
    rows = [
        (
            t.sut_name,
            f"<td class='id'>{escape(t.nodeid)}</td><td class='num'>{t.baseline:.3f} s</td>"
            f"<td class='num'>{t.recent:.3f} s</td>"
            f"<td>{escape(_where(t.first_slow.commit, t.first_slow.start))}</td>",
        )
        for t in slower
    ]
    parts.append(_table(["test", "before", "now", "first slow"], rows))
    parts.append("<h2>Fixes</h2>")
    parts.append(_changes(fixes, "last bad", "first good", "still passing"))
    parts.append("<h2>Slowest tests</h2>")
    parts.append(_slowest(history, slowest))
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts)


def _strip(recent: str) -> str:
    return "".join(f"<span class='{letter}' title='{letter}'></span>" for letter in recent)


def _where(commit: str, start: datetime) -> str:
    return f"{commit[:10] or '-'} {start.strftime('%Y-%m-%d %H:%M')}"


def _table(headers: list[str], rows: list[tuple[str, str]]) -> str:
    if not rows:
        return "<p class='muted'>none</p>"
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    body = "".join(f"<tr data-sut='{escape(sut)}'>{cells}</tr>" for sut, cells in rows)
    return f"<div class='scroll'><table><tr>{head}</tr>{body}</table></div>"


def _changes(changes: list[Change], before: str, after: str, still: str) -> str:
    rows = [
        (
            c.sut_name,
            f"<td class='id'>{escape(c.nodeid)}</td>"
            f"<td>{escape(_where(c.before.commit, c.before.start))}</td>"
            f"<td>{escape(_where(c.after.commit, c.after.start))}</td><td>{'yes' if c.still else 'no'}</td>",
        )
        for c in changes
    ]
    return _table(["test", before, after, still], rows)


def _slowest(history: History, count: int) -> str:
    by_sut: dict[str, list[tuple[float, str, list[float]]]] = {}
    for (sut, nodeid), test in history.tests.items():
        recent = [test.durations[i] for i in test.latest_passing(60)]
        if recent:
            by_sut.setdefault(sut, []).append((median(recent), nodeid, recent))
    rows = []
    for sut in sorted(by_sut):
        for seconds, nodeid, recent in sorted(by_sut[sut], reverse=True)[:count]:
            cells = (
                f"<td class='id'>{escape(nodeid)}</td><td class='num'>{seconds:.3f} s</td>"
                f"<td class='chart'>{sparkline(recent)}</td>"
            )
            rows.append((sut, cells))
    return _table(["test", "median", "recent runs"], rows)
