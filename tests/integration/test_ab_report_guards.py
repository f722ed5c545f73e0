"""The A/B report on degenerate data, bad input and other teams: a result or a clear 4xx."""

from __future__ import annotations

import pytest

from tests.integration.helpers import rank, register
from tests.integration.test_ab_report import _decision, _write, experiment_id, report

URL = "/v1/experiments/homepage-hero/reports/ab"


def _rows(app, key: str, arms: dict[str, list[float | None]], phase: str = "online") -> None:
    exp_id = experiment_id(app, key)
    rows, now = [], 1.7e9
    for arm, rewards in arms.items():
        for r in rewards:
            rows.append(_decision(exp_id, len(rows), arm, now + len(rows), reward=r,
                                  phase=phase))
    _write(app, rows, [])


def test_empty_experiment_reports_reasons_not_errors(client, team):
    register(client, team)
    body = report(client, team)
    assert body["arms"]["champion"]["n"] == 0 and body["arms"]["champion"]["reason"] == "empty"
    assert body["arms"]["champion"]["mean"] is None
    assert [c["reason"] for c in body["comparisons"]] == ["empty"] * 3  # reward, 2 events
    assert all(c["p_value"] is None and c["significant"] is False for c in body["comparisons"])
    codes = {w["code"] for w in body["warnings"]}
    assert {"empty_arm", "empty"} <= codes
    assert body["srm"]["p_value"] is None and body["srm"]["reason"] == "empty"
    assert body["timeline"]["series"]["champion"] == []


def test_zero_variance_is_a_reason(app, client, team):
    register(client, team, reward={"events": {"click": 1.0}, "default": 0.0})
    _rows(app, "homepage-hero", {"champion": [None] * 150, "bandit": [None] * 150})
    body = report(client, team)
    row = body["comparisons"][0]
    assert row["reason"] == "zero_variance" and row["p_value"] is None
    assert row["method"] == "z_pooled"  # all zeros is a 0/1 metric
    assert body["arms"]["bandit"]["rate"] == 0.0 and body["arms"]["bandit"]["ci_low"] == 0.0
    assert row["lift"] is None and row["lift_reason"] == "zero_control_mean"
    assert len(body["comparisons"]) == 1  # one event type: no per-event metric


def test_single_arm_without_champion(app, client, team):
    register(client, team, arms={"bandit": 1.0})
    _rows(app, "homepage-hero", {"bandit": [1.0, 0.0, 2.0]})
    body = report(client, team)
    assert body["control"] == "bandit" and body["comparisons"] == []
    codes = {w["code"] for w in body["warnings"]}
    assert {"control_not_champion", "single_arm", "small_sample"} <= codes
    assert any("first arm in the configuration" in note for note in body["notes"])


def test_sample_ratio_mismatch_is_flagged(app, client, team):
    register(client, team)
    _rows(app, "homepage-hero", {"champion": [1.0, 0.0] * 300, "bandit": [1.0, 0.0] * 200})
    body = report(client, team)
    assert body["srm"]["mismatch"] is True and body["srm"]["p_value"] < 0.001
    assert "sample_ratio_mismatch" in {w["code"] for w in body["warnings"]}


def test_apprentice_decisions_are_left_out_of_srm(app, client, team):
    register(client, team)
    _rows(app, "homepage-hero", {"champion": [1.0, 0.0] * 100}, phase="apprentice")
    body = report(client, team)
    assert body["arms"]["champion"]["n"] == 200
    assert body["srm"]["observed"] == {"champion": 0, "bandit": 0}
    assert body["srm"]["mismatch"] is False


def test_ranked_through_the_api_counts_with_open_windows(client, team):
    register(client, team)
    for i in range(12):
        response = rank(client, team, event_id=f"e{i}", context={"user_id": f"u{i % 5}"})
        assert response.status_code == 200
    client.post("/v1/events/e0/rewards", json={"type": "purchase", "value": 30.0},
                headers=team.auth("client"))
    body = report(client, team)
    arms = body["arms"]
    assert sum(a["n"] for a in arms.values()) == 12
    assert sum(a["pending"] for a in arms.values()) == 12
    assert sum(a["units"] for a in arms.values()) == 5
    assert sum(a["total"] for a in arms.values()) == 30.0
    assert body["timeline"]["unit"] == "5 minutes"  # a young experiment: minutes
    closed = report(client, team, include_open="false")
    assert sum(a["n"] for a in closed["arms"].values()) == 0


@pytest.mark.parametrize("query, field", [
    ("lift=abc", "lift"), ("lift=0", "lift"), ("lift=inf", "lift"), ("lift=-1", "lift"),
    ("lift=nan", "lift"), ("top=0", "top"), ("top=x", "top"), ("top=51", "top"),
    ("include_open=maybe", "include_open"), ("segment=a.b.c", "segment"),
    ("segment=x%27%3B%20drop", "segment"), ("segment=" + "x" * 65, "segment"),
    ("format=xml", "format"), ("segment=a%00b", "segment"), ("lift=0.1%00", "lift"),
    ("top=1%00", "top"), ("include_open=true%00", "include_open"),
])
def test_bad_parameters_are_400(client, team, query, field):
    register(client, team)
    response = client.get(f"{URL}?{query}", headers=team.auth("analyst"))
    assert response.status_code == 400
    assert response.json["error"]["details"][0]["field"] == field


def test_nul_in_the_key_is_not_a_server_error(client, team):
    for path in ("/v1/experiments/a%00b/reports/ab", "/experiments/a%00b"):
        response = client.get(path, headers=team.auth("analyst"))
        assert 400 <= response.status_code < 500


def test_other_team_scope_and_missing_key(client, team, other_team):
    register(client, team)
    assert client.get(URL, headers=other_team.auth("analyst")).status_code == 404
    assert client.get(URL, headers=team.auth("client")).status_code == 403
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers=team.auth("admin")).status_code == 200


def test_report_reads_aggregates_never_rows(app, client, team):
    import sqlalchemy as sa

    from app.db import engine_of
    from experiments.models import Experiment
    from experiments.reports import ReportOptions, build_report
    from tests.conftest import session_of

    register(client, team)
    _rows(app, "homepage-hero", {"champion": [1.0, 0.0] * 50, "bandit": [0.0, 2.0] * 50})
    statements: list[str] = []

    def capture(conn, cursor, statement, *_):
        statements.append(statement)

    engine = engine_of(app)
    with session_of(app) as session:
        experiment = session.scalars(sa.select(Experiment)).one()
        sa.event.listen(engine, "before_cursor_execute", capture)
        try:
            body = build_report(session, experiment, ReportOptions(segment="user.country"))
        finally:
            sa.event.remove(engine, "before_cursor_execute", capture)
    assert body["arms"]["bandit"]["n"] == 100
    reads = [s for s in statements if not s.startswith("SET LOCAL")]
    # span; unit cells; units online; top values with segment actions (one statement,
    # which also gives the arms' actions); segment unit cells
    assert len(reads) == 5, reads
    assert "min(decisions.activated_at)" in reads[0]  # one aggregate row
    assert all("GROUP BY" in s.upper() for s in reads[1:]), reads
