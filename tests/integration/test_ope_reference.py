"""The OPE report on real logs (Open Bandit Dataset, "men") against the Open Bandit Pipeline.

The whole path a user takes: `tailor import-log` of the JSON Lines logs, `tailor candidates
add` for each candidate file, then `GET /v1/experiments/{key}/reports/ope`. IPS and SNIPS
depend on the data alone and must equal OBP's values to 1e-9 (relative), as must the
weight diagnostics. DM and DR depend on the reward model (OBP fits one logistic regression
per position, in-sample; Tailor a hashed-feature model with 2-fold cross-fitting), so they
must fall inside OBP's DR interval, the reference's interval for the policy's value (OBP's
DM interval only reflects the averaging noise of its own model's predictions; see
tests/unit/test_ope_reference.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TeamKeys

OBD = Path(__file__).resolve().parents[2] / "data" / "obd" / "men"  # shipped, with its licence
SUPPLIED = ("greedy", "eps_greedy", "bts_empirical")

pytestmark = pytest.mark.skipif(
    not (OBD / "reference.json").exists(),
    reason=f"Open Bandit reference data not found at {OBD}",
)


def _experiment(client, team: TeamKeys) -> None:
    body = {"key": "obd-men", "reward": {"events": {"click": 1.0}, "window_seconds": 60},
            "champion": {"type": "uniform"}, "arms": {"champion": 1.0}}
    response = client.post("/v1/experiments", json=body, headers=team.auth("admin"))
    assert response.status_code == 201, response.json


def _cli(runner, *args: str) -> str:
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_report_on_open_bandit_logs_matches_the_reference(client, runner, team) -> None:
    reference = json.loads((OBD / "reference.json").read_text())
    _experiment(client, team)
    out = _cli(runner, "import-log", "--experiment", "obd-men", str(OBD / "logs.jsonl.gz"))
    assert "imported 10000 decisions" in out
    for name in SUPPLIED:
        _cli(runner, "candidates", "add", "--experiment", "obd-men", "--name", name,
             str(OBD / "candidates" / f"{name}.jsonl.gz"))
    names = [n for n in reference["candidates"] if n != "uniform" and ":" in n]
    wanted = ["uniform", *names, *(f"pmf:{n}" for n in SUPPLIED)]
    response = client.get("/v1/experiments/obd-men/reports/ope",
                          query_string={"candidates": ",".join(wanted)},
                          headers=team.auth("analyst"))
    assert response.status_code == 200, response.json
    report = response.json
    assert report["n_decisions"] == reference["n_decisions"]
    assert set(report["candidates"]) == set(wanted)
    for name in wanted:
        _check_candidate(report["candidates"][name], reference["candidates"][
            name.removeprefix("pmf:")], name)
    _check_champion(report, reference)


def _check_candidate(got: dict, want: dict, name: str) -> None:
    estimators = got["estimators"]
    for ours, theirs in (("ips", "ipw"), ("snips", "snipw")):
        entry = want[theirs]
        value = entry["value"] if isinstance(entry, dict) else entry
        assert estimators[ours]["value"] == pytest.approx(value, rel=1e-9, abs=1e-15), \
            (name, ours)
    if "dr" in want:  # the reference has model-based estimates for these candidates
        low, high = want["dr"]["ci_lower"], want["dr"]["ci_upper"]
        for estimator in ("dm", "dr", "dr-os"):
            assert low <= estimators[estimator]["value"] <= high, (name, estimator)
    if "ess" in want:
        assert got["ess"] == pytest.approx(want["ess"], rel=1e-9), name
        assert got["max_weight"] == pytest.approx(want["max_weight"], rel=1e-9), name
    assert got["vs_champion"]["estimator"] == "dr"
    assert got["vs_champion"]["verdict"] in ("better", "worse", "inconclusive")


def _check_champion(report: dict, reference: dict) -> None:
    champion = report["champion"]
    assert champion["candidate"] == "uniform"
    assert champion["on_policy"]["n"] == 0  # imported logs are no champion traffic
    ips = champion["estimators"]["ips"]["value"]
    assert ips == pytest.approx(reference["candidates"]["uniform"]["ipw"]["value"], rel=1e-9)
    # The uniform candidate is the champion: zero difference, and no verdict of better.
    same = report["candidates"]["uniform"]["vs_champion"]
    assert same["diff"] == 0 and same["verdict"] == "inconclusive"
    # greedy's DR difference clears zero on these logs; BTS's does not.
    assert report["candidates"]["pmf:greedy"]["vs_champion"]["verdict"] == "better"
    assert report["candidates"]["pmf:bts_empirical"]["vs_champion"]["verdict"] == "inconclusive"
