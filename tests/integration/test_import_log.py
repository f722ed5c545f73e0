"""`tailor import-log` and `tailor export-log` against both databases."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
import vowpalwabbit

from experiments.models import AuditLog, Decision
from tests.conftest import session_of
from tests.integration.helpers import register

ACTIONS = ["hero-1", "hero-2", "hero-3"]


def line(i: int, **over) -> dict:
    row = {"event_id": f"ev-{i}", "timestamp": 1_700_000_000 + i,
           "context": {"user": {"segment": "new" if i % 2 else "old"}, "hour": i % 24},
           "actions": ACTIONS, "chosen": ACTIONS[i % 3], "propensity": 1 / 3,
           "reward": float(i % 2)}
    row.update(over)
    return row


def write(path: Path, rows: list, gz: bool = False) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def invoke(runner, *args: str):
    return runner.invoke(args=[str(a) for a in args])


def decisions(app) -> list[Decision]:
    with session_of(app) as session:
        return list(session.scalars(sa.select(Decision).order_by(Decision.id)))


def test_import_is_idempotent_and_keeps_what_ope_needs(app, client, runner, team,
                                                       tmp_path) -> None:
    register(client, team)
    path = write(tmp_path / "log.jsonl.gz", [line(i) for i in range(30)], gz=True)
    first = invoke(runner, "import-log", "--experiment", "homepage-hero", path,
                   "--batch-size", 100)
    assert first.exit_code == 0, first.output
    assert "imported 30 decisions (jsonl)" in first.output
    more = write(tmp_path / "more.jsonl", [line(i) for i in range(25, 40)])
    second = invoke(runner, "import-log", "--experiment", "homepage-hero", more)
    assert "imported 10 decisions" in second.output and "5 already logged" in second.output
    rows = decisions(app)
    assert len(rows) == 40 and len({r.event_id for r in rows}) == 40
    row = next(r for r in rows if r.event_id == "ev-4")
    assert (row.phase, row.arm, row.policy) == ("imported", "imported", "imported")
    assert (row.chosen_index, row.action_id, row.reward) == (1, "hero-2", 0.0)
    assert row.propensity == pytest.approx(1 / 3)
    assert row.pmf == [None, pytest.approx(1 / 3), None]  # only the chosen one is known
    assert row.activated_at == row.closes_at == row.created_at == 1_700_000_004
    assert row.learned_version == 0  # not for the online learner unless --learn
    with session_of(app) as session:
        actions = [e.action for e in session.scalars(sa.select(AuditLog))]
    assert actions.count("decisions.import") == 2


def test_an_invalid_line_imports_nothing_unless_skipped(app, client, runner, team,
                                                        tmp_path) -> None:
    register(client, team)
    rows = [line(0), line(1, propensity=0), "{not json", line(3, chosen="hero-9")]
    path = write(tmp_path / "bad.jsonl", rows)
    result = invoke(runner, "import-log", "--experiment", "homepage-hero", path)
    assert result.exit_code == 2  # a user mistake (app/cli_base.py)
    assert "line 2: propensity must be a number in (0, 1]" in result.output
    assert "line 3: not valid JSON" in result.output
    assert "line 4: chosen 'hero-9' is not one of the offered actions" in result.output
    assert "nothing imported" in result.output and decisions(app) == []
    skipped = invoke(runner, "import-log", "--experiment", "homepage-hero", path,
                     "--skip-invalid")
    assert skipped.exit_code == 0 and "3 invalid skipped" in skipped.output
    assert [d.event_id for d in decisions(app)] == ["ev-0"]


def test_import_applies_the_experiments_pii_rules(app, client, runner, team, tmp_path) -> None:
    register(client, team)  # pii_fields: ["email"], mode hash
    path = write(tmp_path / "pii.jsonl", [line(0, context={"email": "a@b.example", "x": 1})])
    assert invoke(runner, "import-log", "--experiment", "homepage-hero", path).exit_code == 0
    stored = decisions(app)[0].context
    assert stored["x"] == 1 and stored["email"] != "a@b.example"


def test_unknown_experiment_and_learn_flag(app, client, runner, team, tmp_path) -> None:
    register(client, team)
    path = write(tmp_path / "log.jsonl", [line(0)])
    missing = invoke(runner, "import-log", "--experiment", "nope", path)
    assert missing.exit_code == 2 and "no experiment 'nope'" in missing.output
    learn = invoke(runner, "import-log", "--experiment", "homepage-hero", path, "--learn",
                   "--policy", "legacy-ranker")
    assert learn.exit_code == 0
    row = decisions(app)[0]
    assert row.learned_version is None and row.policy == "legacy-ranker"


def test_export_dsjson_round_trips_through_vw_and_reimport(app, client, runner, team,
                                                           tmp_path) -> None:
    register(client, team)
    register(client, team, key="copy")
    source = [line(i, pmf=[0.5, 0.25, 0.25] if i % 3 == 0 else None) for i in range(12)]
    source = [{**r, "pmf": r["pmf"] or None, "propensity": (r["pmf"] or [1 / 3] * 3)[i % 3]}
              for i, r in enumerate(source)]
    path = write(tmp_path / "log.jsonl", source)
    assert invoke(runner, "import-log", "--experiment", "homepage-hero", path).exit_code == 0
    out = tmp_path / "export.dsjson"
    result = invoke(runner, "export-log", "--experiment", "homepage-hero", out)
    assert result.exit_code == 0 and "exported 12 decisions" in result.output
    lines = out.read_text().splitlines()
    workspace = vowpalwabbit.Workspace("--cb_explore_adf --dsjson --quiet")
    try:
        for text, want in zip(lines, source, strict=True):
            examples = workspace.parse(text)
            assert len(examples) == 4
            label = examples[1 + ACTIONS.index(want["chosen"])].get_label().costs[0]
            assert label.cost == -want["reward"]
            assert label.probability == pytest.approx(want["propensity"], rel=1e-6)
            workspace.learn(examples)
            workspace.finish_example(examples)
    finally:
        workspace.finish()
    assert invoke(runner, "import-log", "--experiment", "copy", out).exit_code == 0
    by_event = {d.event_id: d for d in decisions(app) if d.experiment_id == 2}
    for want in source:
        got = by_event[want["event_id"]]
        assert (got.action_id, got.reward, got.created_at) == (
            want["chosen"], want["reward"], want["timestamp"])
        assert got.propensity == pytest.approx(want["propensity"])
        assert got.context == want["context"]
        if want["pmf"]:
            assert got.pmf == pytest.approx(want["pmf"])


def test_export_since_and_stdout(app, client, runner, team, tmp_path) -> None:
    register(client, team)
    path = write(tmp_path / "log.jsonl", [line(i) for i in range(5)])
    invoke(runner, "import-log", "--experiment", "homepage-hero", path)
    result = invoke(runner, "export-log", "--experiment", "homepage-hero", "-", "--since",
                    "2023-11-14T22:13:23Z")
    events = [json.loads(t)["EventId"] for t in result.stdout.splitlines() if t.startswith("{")]
    assert events == ["ev-3", "ev-4"]


def test_imported_decisions_stay_out_of_the_ab_report(app, client, runner, team,
                                                      tmp_path) -> None:
    register(client, team)
    path = write(tmp_path / "log.jsonl", [line(i) for i in range(20)])
    assert invoke(runner, "import-log", "--experiment", "homepage-hero", path).exit_code == 0
    report = client.get("/v1/experiments/homepage-hero/reports/ab",
                        headers=team.auth("analyst")).json
    assert "imported" not in report["arms"]
    assert sum(arm["n"] for arm in report["arms"].values()) == 0
