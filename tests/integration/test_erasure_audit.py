"""Erasure is idempotent and always audited; reads of a unit's decisions and exports of the
log and of reports are audited (who, what, when)."""

from __future__ import annotations

from urllib.parse import quote

from experiments import pii
from tests.integration.helpers import register

JANE = "jane@example.com"


def audit_entries(client, team, action: str) -> list[dict]:
    response = client.get(f"/v1/audit?action={action}", headers=team.auth())
    assert response.status_code == 200
    return response.json["entries"]


def test_erasing_a_unit_with_nothing_stored_answers_zero_counts_and_is_audited(
        client, team):
    for attempt in (1, 2):
        response = client.delete("/v1/units/nobody-42", headers=team.auth())
        assert response.status_code == 200, response.json
        assert response.json["decisions"] == 0 and response.json["rewards"] == 0
        assert response.json["experiments"] == {}
        entries = audit_entries(client, team, "unit.erase")
        assert len(entries) == attempt
    entry = entries[-1]
    assert entry["actor"].startswith("key:") and entry["at"]
    assert entry["target"] == response.json["unit"] and pii.is_hashed(entry["target"])
    assert "nobody-42" not in str(entries)
    assert entry["details"] == {"decisions": 0, "rewards": 0, "experiments": {}, "profiles": 0}


def test_erasing_twice_erases_once_and_audits_twice(client, team):
    register(client, team, key="shop", unit_field="email")
    ranked = client.post("/v1/experiments/shop/rank", headers=team.auth("client"),
                         json={"context": {"email": JANE}, "event_id": "e1"})
    assert ranked.status_code == 200
    first = client.delete(f"/v1/units/{quote(JANE)}", headers=team.auth())
    second = client.delete(f"/v1/units/{quote(JANE)}", headers=team.auth())
    assert (first.json["decisions"], second.json["decisions"]) == (1, 0)
    assert first.json["unit"] == second.json["unit"]
    assert [e["details"]["decisions"] for e in audit_entries(client, team, "unit.erase")] \
        == [1, 0]


def test_reading_a_units_decisions_is_audited_without_the_clear_id(client, team):
    register(client, team, key="shop", unit_field="email")
    client.post("/v1/experiments/shop/rank", headers=team.auth("client"),
                json={"context": {"email": JANE}, "event_id": "e1"})
    read = client.get(f"/v1/experiments/shop/decisions?unit_id={quote(JANE)}",
                      headers=team.auth("analyst"))
    assert read.status_code == 200 and len(read.json["decisions"]) == 1
    entries = audit_entries(client, team, "decisions.read")
    assert len(entries) == 1 and JANE not in str(entries)
    entry = entries[0]
    assert entry["target"] == "shop" and entry["details"]["returned"] == 1
    assert pii.is_hashed(entry["details"]["unit"])
    assert entry["actor"].startswith("key:") and entry["at"]
    whole = client.get("/v1/experiments/shop/decisions", headers=team.auth("analyst"))
    assert whole.status_code == 200
    assert len(audit_entries(client, team, "decisions.read")) == 1  # by unit only


def test_report_exports_are_audited(client, team):
    register(client, team)
    csv = client.get("/v1/experiments/homepage-hero/reports/ab?format=csv",
                     headers=team.auth("analyst"))
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    client.get("/v1/experiments/homepage-hero/reports/ab", headers=team.auth("analyst"))
    entries = audit_entries(client, team, "report.export")
    assert len(entries) == 1
    assert entries[0]["target"] == "homepage-hero"
    assert entries[0]["details"] == {"report": "ab", "format": "csv"}


def test_cli_export_log_is_audited(app, client, team, runner, tmp_path):
    register(client, team)
    out = tmp_path / "log.json"
    result = runner.invoke(args=["export-log", "--experiment", "homepage-hero", str(out)])
    assert result.exit_code == 0, result.output
    entries = audit_entries(client, team, "decisions.export")
    assert len(entries) == 1
    entry = entries[0]
    assert entry["actor"].startswith("cli:") and entry["target"] == "homepage-hero"
    assert entry["details"]["decisions"] == 0
    assert entry["details"]["file"].endswith("log.json")
