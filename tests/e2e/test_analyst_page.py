"""The analyst page in headless Chromium against gunicorn: sign in through the form, read
the report, check every number shown equals the JSON report, save a screenshot.

The screenshot goes to the test's temporary directory, so that a test run never changes
the checkout (and parallel runs never write the same file). To refresh the image the docs
show: TAILOR_SCREENSHOT=docs/img/analyst-page.png .venv/bin/pytest tests/e2e/test_analyst_page.py
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import requests

from app import create_app
from app.db import dispose as db_dispose
from app.web.formatting import num, pct, pval
from app.web.verdicts import WORDS as VERDICT_WORDS
from tests.conftest import make_team
from tests.integration.helpers import experiment_body
from tests.integration.test_ab_report import seed

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARMS = {"champion": 0.45, "bandit": 0.45, "uniform": 0.10}

pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) or shutil.which("chromium")),
    reason="Debian's chromium is not installed (apt-get install -y chromium)")


def _seed(live_server, database_url) -> str:
    """Register through HTTP, then write 14 days of decisions straight into the database."""
    app = create_app({"DATABASE_URL": database_url})
    keys = make_team(app, "shop")
    body = experiment_body(arms=ARMS, champion={"type": "uniform"},
                           reward={"events": {"click": 1.0, "purchase": "value"},
                                   "aggregation": "sum", "window_seconds": 600,
                                   "default": 0.1})
    created = requests.post(f"{live_server.url}/v1/experiments", json=body, timeout=10,
                            headers=keys.auth("admin"))
    assert created.status_code == 201, created.text
    seed(app, "homepage-hero", {"champion": 1400, "bandit": 1350, "uniform": 300}, days=14,
         returning=True)
    db_dispose(app)
    return keys.analyst


def _cell(page, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def _check_numbers(page, report: dict) -> int:
    checked = 0
    for arm, row in report["arms"].items():
        base = f'#arms-table tr[data-arm="{arm}"]'
        for field in ("n", "units", "pending", "mean", "ci_low", "ci_high",
                      "decisions_without_unit"):
            assert _cell(page, f'{base} td[data-field="{field}"]') == num(row[field]), field
            checked += 1
    for c in report["comparisons"]:
        base = f'#comparisons-table tr[data-arm="{c["arm"]}"][data-metric="{c["metric"]}"]'
        for field, fmt in (("diff", num), ("ci_low", num), ("ci_high", num), ("lift", pct),
                           ("lift_ci_low", pct), ("lift_ci_high", pct), ("p_value", pval),
                           ("p_value_sequential", pval), ("ci_sequential_low", num),
                           ("ci_sequential_high", num)):
            assert _cell(page, f'{base} td[data-field="{field}"]') == fmt(c[field]), field
            checked += 1
        adjusted = _cell(page, f'{base} td[data-field="p_value_adjusted"]')
        assert adjusted.startswith(pval(c["p_value_adjusted"]))
        assert ("significant" in adjusted) == c["significant"]
        if c["bayes"]:
            cell = _cell(page, f'{base} td[data-field="chance_to_win"]')
            assert cell == num(c["bayes"]["chance_to_win"])
            checked += 1
    return checked


def test_analyst_page_in_chromium(live_server, database_url, request, tmp_path):
    from playwright.sync_api import sync_playwright

    screenshot = Path(os.environ.get("TAILOR_SCREENSHOT") or tmp_path / "analyst-page.png")
    analyst = _seed(live_server, database_url)
    path = "/experiments/homepage-hero?segment=user.country&top=3"
    report = requests.get(f"{live_server.url}/v1{path.replace('?', '/reports/ab?')}",
                          headers={"Authorization": f"Bearer {analyst}"}, timeout=30).json()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(live_server.url + path)
        assert "/login" in page.url
        page.fill("#key", analyst)
        page.click("section.login button[type=submit]")
        page.wait_for_url(f"**{path}")
        decision = report["decision"]
        line = page.locator("#decision")
        assert line.get_attribute("data-verdict") == decision["verdict"]
        assert _cell(page, '#decision [data-field="reason"]') == decision["reason"]
        assert _cell(page, '#decision [data-field="verdict"]') == VERDICT_WORDS[
            decision["verdict"]]
        assert "`" not in _cell(page, "#notes")
        assert page.locator("#arms-table svg.ci-bar").count() == 3
        assert _check_numbers(page, report) >= 70
        assert page.locator("#timeline-chart svg polyline").count() == 3
        assert page.locator("#forest-plot svg rect.estimate").count() == 6
        assert page.locator("#segments-table tr[data-segment='(missing)']").count() == 3
        assert "Always-valid (sequential)" in _cell(page, "#comparisons-table thead")
        assert page.locator("#ope").count() == 1
        if "sqlite" in request.node.name:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        page.click("form.logout button")
        page.wait_for_url("**/login")
        page.goto(live_server.url + path)
        assert "/login" in page.url
        browser.close()
    assert "sqlite" not in request.node.name or screenshot.stat().st_size > 0
