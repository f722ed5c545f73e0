"""`vw:` candidates: validated settings, and progressive-validation replay over a log."""

from __future__ import annotations

import numpy as np
import pytest

from bandits.policy import UniformPolicy, rng_for, sample_index
from experiments.errors import ValidationFailed
from experiments.ope_report.candidates import FixedSource, UniformSource, split_names
from experiments.ope_report.replay import ReplaySource, parse_vw_spec
from experiments.ope_report.scope import Chunk

REWARD = {"events": {"click": 1.0}, "aggregation": "sum", "window_seconds": 60, "default": 0.0}
ACTIONS = [{"id": f"a{j}", "features": {}} for j in range(3)]


def chunk(n: int, seed: int = 0) -> Chunk:
    """n uniform-logged decisions; action a{segment} pays 1 for users of that segment."""
    rng = np.random.default_rng(seed)
    segments = rng.integers(0, 3, n)
    chosen = np.array([sample_index([1 / 3] * 3, rng_for(str(i))) for i in range(n)])
    rewards = (chosen == segments).astype(float)
    positions = {a["id"]: j for j, a in enumerate(ACTIONS)}
    return Chunk(
        event_ids=[str(i) for i in range(n)], arms=["bandit"] * n,
        contexts=[{"segment": f"s{s}"} for s in segments],
        context_keys=[f"s{s}" for s in segments], actions=[ACTIONS] * n,
        positions=[positions] * n, signatures=["x"] * n, logged_pmfs=[[1 / 3] * 3] * n,
        chosen=chosen, propensity=np.full(n, 1 / 3), rewards=rewards,
        rewarded=np.ones(n, bool), mask=np.ones((n, 3), bool), candidate_pmfs={})


def test_split_names_keeps_vw_parameters_together() -> None:
    assert split_names(["model:latest,vw:squarecb,gamma_scale=20,learning_rate=0.5,uniform",
                        "pmf:greedy"]) == [
        "model:latest", "vw:squarecb,gamma_scale=20,learning_rate=0.5", "uniform",
        "pmf:greedy"]


def test_vw_spec_is_validated_like_a_learner_setting() -> None:
    spec = parse_vw_spec("squarecb,gamma_scale=20,learning_rate=0.5,interactions=ca+cca",
                         REWARD)
    assert spec.exploration == "squarecb"
    assert "--squarecb" in spec.arguments and "--gamma_scale 20" in spec.arguments
    assert "--interactions cca" in spec.arguments and "--learning_rate 0.5" in spec.arguments


@pytest.mark.parametrize(("text", "message"), [
    ("thompson", "exploration"),
    ("epsilon,epsilon=2", "epsilon"),
    ("epsilon,data=/etc/passwd", "unknown parameter"),
    ("epsilon,epsilon", "is not <param>=<value>"),
    ("squarecb,gamma_scale=abc", "gamma_scale: must be a number"),
    ("epsilon,bits=40", "bits"),
    ("epsilon,interactions=cx", "interactions"),
])
def test_bad_vw_specs_are_refused_naming_the_candidate(text: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_vw_spec(text, REWARD)
    assert caught.value.message.startswith(f"candidates: vw:{text}: ")
    assert message in caught.value.message


def test_replay_gives_pre_update_pmfs_and_learns_in_time_order() -> None:
    log = chunk(1500)
    source = ReplaySource("vw:epsilon,epsilon=0.1", parse_vw_spec("epsilon,epsilon=0.1",
                                                                  REWARD))
    first, rest = source.pmfs(_rows(log, slice(0, 1))), source.pmfs(_rows(log, slice(1, None)))
    source.close()
    # Before learning anything, the model is indifferent between actions.
    assert first[0] == pytest.approx(UniformPolicy().pmf({}, [("a", {})] * 3), abs=1e-6)
    pmf = np.vstack([first, rest])
    assert pmf.sum(axis=1) == pytest.approx(np.ones(1500))
    # By the end it prefers the paying action for the segment (pmf 0.9 + 0.1/3).
    late = pmf[-300:]
    best = np.array([int(c["segment"][1]) for c in log.contexts[-300:]])
    assert (late.argmax(axis=1) == best).mean() > 0.9
    assert late[np.arange(300), best].mean() > 0.8


def test_replay_is_deterministic() -> None:
    log = chunk(200, seed=3)
    runs = []
    for _ in range(2):
        source = ReplaySource("vw:squarecb", parse_vw_spec("squarecb", REWARD))
        runs.append(source.pmfs(log))
        source.close()
    assert np.array_equal(runs[0], runs[1])


def test_uniform_and_fixed_sources() -> None:
    log = chunk(4)
    assert UniformSource().pmfs(log) == pytest.approx(np.full((4, 3), 1 / 3))
    fixed = FixedSource("a2").pmfs(log)
    assert fixed.tolist() == [[0.0, 0.0, 1.0]] * 4
    assert FixedSource("zz").pmfs(log) == pytest.approx(np.full((4, 3), 1 / 3))  # not offered


def _rows(log: Chunk, part: slice) -> Chunk:
    return Chunk(
        event_ids=log.event_ids[part], arms=log.arms[part], contexts=log.contexts[part],
        context_keys=log.context_keys[part],
        actions=log.actions[part], positions=log.positions[part],
        signatures=log.signatures[part], logged_pmfs=log.logged_pmfs[part],
        chosen=log.chosen[part], propensity=log.propensity[part], rewards=log.rewards[part],
        rewarded=log.rewarded[part], mask=log.mask[part], candidate_pmfs={})
