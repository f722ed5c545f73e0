"""The OPE section of the analyst page: the newest stored report, its chart and table."""

from __future__ import annotations

from tests.integration.helpers import register
from tests.integration.test_ab_report_pages import sign_in
from tests.integration.test_ope_report import URL, seed

PAGE = "/experiments/homepage-hero"


def test_page_shows_how_to_compute_then_the_newest_report(app, client, team) -> None:
    register(client, team)
    seed(app, 100, 400)
    sign_in(client, team.analyst)
    empty = client.get(PAGE).get_data(as_text=True)
    assert 'id="ope-empty"' in empty and "tailor ope --experiment homepage-hero" in empty
    report = client.get(URL, query_string={"candidates": "fixed:hero-2,fixed:hero-3"},
                        headers=team.auth("analyst")).json
    html = client.get(PAGE).get_data(as_text=True)
    assert f"Report {report['report_id']}" in html
    assert 'id="ope-chart"><svg' in html and "Estimated value per policy (DR" in html
    for name, entry in report["candidates"].items():
        verdict = entry["vs_champion"]["verdict"]
        assert f'data-candidate="{name}"' in html
        assert f'verdict-{verdict}" data-field="verdict">{verdict}<' in html
    assert 'data-candidate="fixed:hero-1" class="champion"' in html
    assert 'id="ope-health"' in html and 'data-arm="bandit"' in html
