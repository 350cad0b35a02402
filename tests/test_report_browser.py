"""The HTML report renders in a real Chromium (the Debian package), offline, on desktop and phone."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, sync_playwright

from pytest_insight.analysis.history import History
from pytest_insight.analysis.report_page import render_report
from tests.labelled_history import make_history

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not CHROMIUM.exists():
    if sys.platform.startswith("linux"):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium", pytrace=False)
    pytest.skip("the report's browser test needs Debian's chromium (Linux only)", allow_module_level=True)

pytestmark = pytest.mark.xdist_group("chromium")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        yield context
        context.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sessions = make_history(5).sessions + make_history(6, sut_name="billing").sessions
    history = History.from_sessions(sessions)
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_report(history, title="shop: last 30 runs"), encoding="utf-8")
    return path


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_the_report_renders_offline_with_its_charts(
    browser: BrowserContext, report: Path, width: int, height: int
) -> None:
    page = browser.new_page()
    page.set_viewport_size({"width": width, "height": height})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report.as_uri())
    assert requests == [report.as_uri()]  # the page itself, nothing else
    assert errors == []
    # two charts per SUT plus one sparkline per slowest test, each with drawn lines
    charts = page.locator(".chart svg")
    assert charts.count() >= 2 * (2 + 10)
    assert page.locator("section .chart svg path").count() >= 4
    box = page.locator("section .chart svg").first.bounding_box()
    assert box is not None
    assert box["width"] > 200
    assert box["height"] > 80
    assert box["width"] <= width
    assert page.locator("td.strip span.F").count() > 0  # the flaky table's outcome strips
    # nothing wider than the screen but the scrollable tables
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
    billing_rows = page.locator("tr[data-sut='billing']")
    assert billing_rows.count() > 0
    page.select_option("#sut", "shop")
    assert page.locator("section[data-sut='shop']").is_visible()
    assert not page.locator("section[data-sut='billing']").is_visible()
    assert not any(row.is_visible() for row in billing_rows.all())
    page.select_option("#sut", "")
    assert page.locator("section[data-sut='billing']").is_visible()
    assert errors == []
    page.close()
