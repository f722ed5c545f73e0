"""The analyst pages show the report's verdict: the decision line at the top of the
experiment page and the experiments list (units, headline lift, verdict, model, lag)."""

from __future__ import annotations

import html
import re

from app.web.formatting import pct
from app.web.verdicts import WORDS
from tests.integration.helpers import register
from tests.integration.test_ab_report import report, seed


def _text(page: str, pattern: str) -> str:
    found = re.search(pattern, page, re.S)
    assert found, pattern
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def test_decision_line_and_list_agree_with_the_json(app, client, team):
    register(client, team, arms={"champion": 0.5, "bandit": 0.5},
             reward={"events": {"click": 1.0}, "aggregation": "sum", "window_seconds": 600,
                     "default": 0.0})
    seed(app, "homepage-hero", {"champion": 300, "bandit": 300}, returning=True, binary=True)
    body = report(client, team)
    decision = body["decision"]
    page = client.get("/experiments/homepage-hero", headers=team.auth("analyst"))
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f'data-verdict="{decision["verdict"]}"' in text
    assert _text(text, r'data-field="verdict">(.*?)</strong>') == WORDS[decision["verdict"]]
    assert _text(text, r'data-field="reason">(.*?)</span>') == decision["reason"]
    notes = _text(text, r'<section id="notes">(.*?)</section>')
    assert "`" not in notes and "include_open" not in notes and "p_value" not in notes
    assert text.count('class="ci-bar"') == 2
    listing = client.get("/experiments", headers=team.auth("analyst")).get_data(as_text=True)
    row = _text(listing, r'<tr data-key="homepage-hero"[^>]*>(.*?)</tr>')
    units = sum(a["units"] for a in body["arms"].values())
    assert str(units) in row and WORDS[decision["verdict"]] in row
    head = body["comparisons"][0]
    assert pct(head["lift"]) in row and pct(head["lift_ci_low"]) in row
    assert f'data-verdict="{decision["verdict"]}"' in listing


def test_list_reuses_a_headline_for_a_minute(app, client, team):
    from app.web.list_rows import EXTENSION, TTL_SECONDS, ListRows

    now = [0.0]
    app.extensions[EXTENSION] = ListRows(clock=lambda: now[0])
    register(client, team, arms={"champion": 0.5, "bandit": 0.5})
    seed(app, "homepage-hero", {"champion": 30, "bandit": 30})

    def units() -> str:
        listing = client.get("/experiments", headers=team.auth("analyst")).get_data(as_text=True)
        return _text(listing, r'<tr data-key="homepage-hero".*?data-field="units">(.*?)</td>')

    first = units()
    seed(app, "homepage-hero", {"champion": 30, "bandit": 30})
    now[0] = TTL_SECONDS - 1
    assert units() == first  # kept
    now[0] = TTL_SECONDS + 1
    assert units() != first  # built again from the new decisions
