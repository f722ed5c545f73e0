"""Golden tests: the A/B report's numbers equal statsmodels/scipy on raw per-decision data.

A seeded experiment is written straight into the database (decisions and reward events,
with the edge cases the report must leave out: paused, not activated, late events,
another experiment), then read through `GET /v1/experiments/{key}/reports/ab` on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import sqlalchemy as sa
from scipy import stats
from statsmodels.stats import multitest, power, proportion, weightstats

from experiments import clock
from experiments.abstats import MeanStats, sequential_cumulative
from experiments.models import Decision, Experiment, RewardEvent
from experiments.reports.comparisons import BURN_IN
from tests.conftest import session_of
from tests.integration.helpers import ACTIONS, register

DAY = 86400.0
BUCKET = 6 * 3600.0  # five days of data: the report's looks are 6-hour buckets
TOL = 1e-9
COUNTRIES = ["DE", "FR", "US", "IT"]
DEFAULT = 0.1  # the reward of a decision without events: catches a forgotten COALESCE


@dataclass
class Truth:
    """What was written, per decision, to compute the expected numbers independently."""

    arm: list[str] = field(default_factory=list)
    unit: list[str | None] = field(default_factory=list)
    day: list[int] = field(default_factory=list)
    reward: list[float] = field(default_factory=list)
    click: list[float] = field(default_factory=list)
    purchase: list[float] = field(default_factory=list)
    country: list[str | None] = field(default_factory=list)
    action: list[str] = field(default_factory=list)
    open: list[bool] = field(default_factory=list)
    online: list[bool] = field(default_factory=list)
    created: list[float] = field(default_factory=list)

    def values(self, name: str, arm: str, closed_only: bool = False) -> np.ndarray:
        column = getattr(self, name)
        return np.array([v for v, a, o in zip(column, self.arm, self.open, strict=True)
                         if a == arm and not (closed_only and o)], dtype=float)


def experiment_id(app, key: str) -> int:
    with session_of(app) as session:
        return session.scalar(sa.select(Experiment.id).where(Experiment.key == key))


def _decision(exp_id: int, i: int, arm: str, created: float, **over) -> dict:
    row = dict(experiment_id=exp_id, event_id=f"e{exp_id}-{i}", request_hash="h", arm=arm,
               policy=arm, model_version=None, experiment_version=1, phase="online",
               unit_id=None, context={}, actions=ACTIONS, pmf=[1 / 3] * 3, chosen_index=0,
               action_id="hero-1", propensity=1 / 3, deferred=False, activated_at=created,
               closes_at=created + 600, reward=None, reward_count=0, learned_version=None,
               created_at=created)
    row.update(over)
    return row


def seed(app, key: str, sizes: dict[str, int], seed_: int = 11, *, binary: bool = False,
         days: int = 5, returning: bool = False) -> Truth:
    """Write decisions and reward events; return the per-decision truth of what counts.

    Without ``returning`` no decision has a unit, so every decision is a unit of its own
    and the report's numbers are the decision-level golden ones. With ``returning``, 80%
    of the decisions come from units of their arm (``n / 4`` per arm) that come back.
    """
    rng = np.random.default_rng(seed_)
    exp_id, now = experiment_id(app, key), clock.now()
    start = now - days * DAY
    truth, decisions, events = Truth(), [], []
    click_p = {"champion": 0.10, "bandit": 0.16, "uniform": 0.12}
    for arm, n in sizes.items():
        for _ in range(n):
            i = len(decisions)
            created = start + float(rng.uniform(0, days * DAY - 1))
            is_open = bool(rng.random() < 0.05)
            created = now - 60 if is_open else created
            click = float(rng.random() < click_p[arm])
            buy = 0.0 if binary else float(rng.exponential(20.0) if rng.random() < 0.05 else 0)
            country = None if rng.random() < 0.1 else str(rng.choice(COUNTRIES, p=[.4, .3, .2, .1]))
            unit = None if not returning or rng.random() < 0.2 else \
                f"{arm}-u{int(rng.integers(0, max(n // 4, 1)))}"
            action = str(rng.choice(["hero-1", "hero-2", "hero-3"]))
            got = click + buy
            decisions.append(_decision(
                exp_id, i, arm, created, unit_id=unit, action_id=action,
                context={"user": {"country": country}} if country else {"hour": 3},
                reward=got if (click or buy) else None, reward_count=int(click) + int(buy > 0)))
            for kind, value in (("click", click), ("purchase", buy)):
                if value:
                    events.append((i, kind, value, False))
            if rng.random() < 0.05:  # a late event: stored, never counted
                events.append((i, "click", 1.0, True))
            truth.arm.append(arm)
            truth.unit.append(unit or f"event:{i}")
            truth.day.append(int(created // BUCKET))
            truth.reward.append(got if (click or buy) else (0.0 if binary else DEFAULT))
            truth.click.append(click)
            truth.purchase.append(buy)
            truth.country.append(country)
            truth.action.append(action)
            truth.open.append(is_open)
            truth.online.append(True)
            truth.created.append(created)
    _noise(decisions, exp_id, start)
    _write(app, decisions, events)
    return truth


def _noise(decisions: list[dict], exp_id: int, start: float) -> None:
    """Decisions the report must ignore: paused phase, never activated."""
    base = len(decisions)
    decisions.append(_decision(exp_id, base, "champion", start + 10, phase="paused",
                               reward=100.0))
    decisions.append(_decision(exp_id, base + 1, "bandit", start + 20, deferred=True,
                               activated_at=None, closes_at=None, reward=100.0))


def _write(app, decisions: list[dict], events: list[tuple]) -> None:
    with session_of(app) as session:
        session.execute(sa.insert(Decision), decisions)
        ids = dict(session.execute(sa.select(Decision.event_id, Decision.id).where(
            Decision.experiment_id == decisions[0]["experiment_id"])).all())
        if not events:
            session.commit()
            return
        session.execute(sa.insert(RewardEvent), [
            dict(experiment_id=decisions[0]["experiment_id"], event_id=decisions[i]["event_id"],
                 decision_id=ids[decisions[i]["event_id"]], type=kind, value=value,
                 raw_value=value, idempotency_key=None, late=late, received_at=clock.now())
            for i, kind, value, late in events])
        session.commit()


def report(client, team, key: str = "homepage-hero", **params):
    response = client.get(f"/v1/experiments/{key}/reports/ab", query_string=params,
                          headers=team.auth("analyst"))
    assert response.status_code == 200, response.json
    return response.json


def close(a: float | None, b: float, tol: float = TOL) -> bool:
    return a is not None and math.isclose(a, float(b), rel_tol=tol, abs_tol=tol)


ARMS = {"champion": 0.4, "bandit": 0.4, "uniform": 0.2}
SIZES = {"champion": 420, "bandit": 400, "uniform": 190}
REWARD = {"events": {"click": 1.0, "purchase": "value"}, "aggregation": "sum",
          "window_seconds": 600, "default": DEFAULT}


@pytest.fixture
def seeded(app, client, team) -> Truth:
    register(client, team, arms=ARMS, reward=REWARD, champion={"type": "uniform"})
    register(client, team, key="other", arms=ARMS, reward=REWARD)
    seed(app, "other", {"champion": 30, "bandit": 30, "uniform": 5}, seed_=99)
    return seed(app, "homepage-hero", SIZES)


def test_arms_equal_numpy_and_statsmodels(client, team, seeded):
    body = report(client, team)
    assert list(body)[:7] == ["experiment", "alpha", "generated_at", "srm", "arms",
                               "comparisons", "warnings"]
    assert body["experiment"] == "homepage-hero" and body["alpha"] == 0.05
    for arm in ARMS:
        row, x = body["arms"][arm], seeded.values("reward", arm)
        low, high = weightstats.DescrStatsW(x).tconfint_mean(alpha=0.05)
        units = {u for u, a in zip(seeded.unit, seeded.arm, strict=True) if a == arm}
        pending = sum(o for o, a in zip(seeded.open, seeded.arm, strict=True) if a == arm)
        assert row["n"] == len(x) and row["units"] == len(units)
        assert row["pending"] == pending
        assert close(row["mean"], x.mean()) and close(row["ci_low"], low)
        assert close(row["ci_high"], high) and row["rate"] is None
        clicks = seeded.values("click", arm)
        wl, wh = proportion.proportion_confint(clicks.sum(), len(clicks), 0.05, "wilson")
        click = row["metrics"]["event:click"]
        assert close(click["mean"], clicks.mean()) and close(click["rate"], clicks.mean())
        assert close(click["ci_low"], wl) and close(click["ci_high"], wh)
        assert close(row["metrics"]["event:purchase"]["mean"], seeded.values("purchase",
                                                                             arm).mean())


def _expected_comparison(truth: Truth, metric: str, arm: str, alpha: float = 0.05) -> dict:
    c, t = truth.values(metric, "champion"), truth.values(metric, arm)
    if metric == "click":
        count, nobs = [t.sum(), c.sum()], [len(t), len(c)]
        _, p = proportion.proportions_ztest(count, nobs)
        low, high = proportion.confint_proportions_2indep(
            count[0], nobs[0], count[1], nobs[1], method="newcomb", compare="diff",
            alpha=alpha)
        return {"p": p, "low": low, "high": high, "diff": t.mean() - c.mean(), "method":
                "z_pooled"}
    cm = weightstats.CompareMeans(weightstats.DescrStatsW(t), weightstats.DescrStatsW(c))
    _, p, _ = cm.ttest_ind(usevar="unequal")
    low, high = cm.tconfint_diff(alpha=alpha, usevar="unequal")
    return {"p": p, "low": low, "high": high, "diff": t.mean() - c.mean(), "method": "welch"}


def test_comparisons_equal_statsmodels_with_holm(client, team, seeded):
    body = report(client, team)
    rows = body["comparisons"]
    assert [(r["metric"], r["arm"]) for r in rows] == [
        (m, a) for m in ("reward", "event:click", "event:purchase") for a in ("bandit", "uniform")]
    names = {"reward": "reward", "event:click": "click", "event:purchase": "purchase"}
    expected = [_expected_comparison(seeded, names[r["metric"]], r["arm"]) for r in rows]
    _, holm, _, _ = multitest.multipletests([e["p"] for e in expected], method="holm")
    for row, e, h in zip(rows, expected, holm, strict=True):
        assert row["control"] == "champion" and row["method"] == e["method"]
        assert close(row["diff"], e["diff"]) and close(row["p_value"], e["p"])
        assert close(row["ci_low"], e["low"]) and close(row["ci_high"], e["high"])
        assert close(row["p_value_holm"], h)
        assert row["significant"] == (h < 0.05)
        assert row["significant_unadjusted"] == (e["p"] < 0.05)
    first = rows[0]
    c, t = seeded.values("reward", "champion"), seeded.values("reward", "bandit")
    assert close(first["lift"], t.mean() / c.mean() - 1)
    assert first["lift_ci_low"] < first["lift"] < first["lift_ci_high"]


def _looks(truth: Truth, arm: str) -> list[MeanStats]:
    """Cumulative statistics at the end of each 6-hour look (one decision per unit)."""
    x = truth.values("reward", arm)
    bucket = np.array([d for d, a in zip(truth.day, truth.arm, strict=True) if a == arm])
    return [MeanStats.from_values(x[bucket <= d]) for d in sorted(set(truth.day))]


def test_sequential_uses_cumulative_looks_and_power_equals_statsmodels(client, team, seeded):
    body = report(client, team, lift="0.2")
    row = body["comparisons"][0]
    assert body["timeline"]["unit"] == "6 hours"
    c_looks, t_looks = _looks(seeded, "champion"), _looks(seeded, "bandit")
    start = next(i for i, (c, t) in enumerate(zip(c_looks, t_looks, strict=True))
                 if min(c.n, t.n) >= BURN_IN)
    path = sequential_cumulative(c_looks[start:], t_looks[start:])
    assert close(row["p_value_sequential"], path[-1].p_value)
    assert close(row["ci_sequential_low"], path[-1].ci.lower)
    assert row["ci_sequential_low"] < row["ci_low"]  # a confidence sequence is wider
    c, t = seeded.values("reward", "champion"), seeded.values("reward", "bandit")
    effect = 0.2 * c.mean() / c.std(ddof=1)
    expected = power.TTestIndPower().power(effect, nobs1=len(t), ratio=len(c) / len(t),
                                           alpha=0.05)
    assert close(row["power"]["power"], expected, 1e-6) and row["power"]["lift"] == 0.2
    needed = power.TTestIndPower().solve_power(effect, power=0.8, alpha=0.05)
    assert row["power"]["n_per_arm"] == math.ceil(needed)
    timeline = body["timeline"]["series"]["bandit"]
    assert timeline[-1]["n"] == len(t) and close(timeline[-1]["mean"], t.mean())


def test_srm_is_chi_square_of_online_counts(client, team, seeded):
    srm = report(client, team)["srm"]
    counts = [seeded.arm.count(a) for a in ARMS]
    expected = stats.chisquare(counts, np.array(list(ARMS.values())) * sum(counts)).pvalue
    assert srm["observed"] == dict(zip(ARMS, counts, strict=True))
    assert close(srm["p_value"], expected) and srm["mismatch"] == (expected < 0.001)
    assert srm["expected"] == pytest.approx(ARMS)


def test_closed_windows_only(client, team, seeded):
    body = report(client, team, include_open="false")
    x = seeded.values("reward", "bandit", closed_only=True)
    assert body["include_open"] is False
    assert body["arms"]["bandit"]["n"] == len(x) and body["arms"]["bandit"]["pending"] == 0
    assert close(body["arms"]["bandit"]["mean"], x.mean())
    assert any("closed" in note for note in body["notes"])


def test_segments_and_action_shares(client, team, seeded):
    body = report(client, team, segment="user.country", top="2")
    seg = body["segments"]
    assert seg["field"] == "user.country" and seg["top"] == 2
    values = [v["value"] for v in seg["values"]]
    assert values == ["DE", "FR", "(other)", "(missing)"]
    label = {"DE": "DE", "FR": "FR", "US": "(other)", "IT": "(other)", None: "(missing)"}
    for entry in seg["values"]:
        for arm, row in entry["arms"].items():
            x = np.array([r for r, a, c in zip(seeded.reward, seeded.arm, seeded.country,
                                               strict=True)
                          if a == arm and label[c] == entry["value"]])
            assert row["n"] == len(x) and close(row["mean"], x.mean())
        chosen = [act for act, a, c in zip(seeded.action, seeded.arm, seeded.country,
                                           strict=True)
                  if a == "bandit" and label[c] == entry["value"]]
        for action, share in entry["actions"]["bandit"].items():
            assert close(share, chosen.count(action) / len(chosen))
    holm = [c["p_value_holm"] for v in seg["values"] for c in v["comparisons"]]
    raw = [c["p_value"] for v in seg["values"] for c in v["comparisons"]]
    assert close(holm[0], multitest.multipletests(raw, method="holm")[1][0])
    overall = [a for a, arm in zip(seeded.action, seeded.arm, strict=True) if arm == "uniform"]
    for action, share in body["arms"]["uniform"]["actions"].items():
        assert close(share, overall.count(action) / len(overall))


def test_top_level_context_field_and_numbers_as_text(app, client, team, seeded):
    body = report(client, team, segment="hour")
    values = {v["value"]: v["n"] for v in body["segments"]["values"]}
    assert values == {"3": seeded.country.count(None), "(missing)": len(seeded.arm)
                      - seeded.country.count(None)}


def test_csv_has_one_row_per_arm_comparison_and_segment(client, team, seeded):
    response = client.get("/v1/experiments/homepage-hero/reports/ab?format=csv&segment=hour",
                          headers=team.auth("analyst"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0].startswith("section,segment,arm,metric,n,")
    sections = [line.split(",")[0] for line in lines[1:]]
    assert sections.count("arm") == 3 and sections.count("comparison") == 6
    assert sections.count("segment_arm") == 6 and sections.count("segment_comparison") == 4
