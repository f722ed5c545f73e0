"""The online learner: it learns, its interactions matter, snapshots round-trip."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bandits.exploration import vw_arguments
from bandits.learner import OnlineLearner, cost_from_reward
from bandits.policy import VWPolicy, rng_for, sample_index

SEGMENTS = ["new", "returning", "vip"]
CATALOG = [("shoes", {}), ("bags", {}), ("hats", {}), ("belts", {})]
BEST = {"new": 0, "returning": 1, "vip": 2}  # a context x action rule: no main effect


def _simulate(learner: OnlineLearner, steps: int, seed: int) -> float:
    """Run the bandit loop on a known world; return the mean reward of the last 500."""
    world = np.random.default_rng(seed)
    rewards = []
    for step in range(steps):
        segment = SEGMENTS[int(world.integers(3))]
        context: dict[str, Any] = {"user": {"segment": segment}, "hour": int(world.integers(24))}
        pmf = learner.predict(context, CATALOG)
        chosen = sample_index(pmf, rng_for(f"{seed}-{step}"))
        reward = float(world.random() < (0.8 if chosen == BEST[segment] else 0.1))
        learner.learn(context, CATALOG, chosen, reward, pmf[chosen])
        rewards.append(reward)
    return float(np.mean(rewards[-500:]))


def test_cost_is_minus_reward() -> None:
    assert cost_from_reward(1.5) == -1.5
    assert str(cost_from_reward(0)) == "0.0"


@pytest.mark.parametrize("exploration", ["squarecb", "regcb", "epsilon"])
def test_learns_a_context_dependent_best_action(exploration: str) -> None:
    learner = OnlineLearner(vw_arguments(exploration, {}))
    mean = _simulate(learner, 2500, seed=1)
    uniform = (0.8 + 3 * 0.1) / 4  # 0.275
    assert learner.examples_learned == 2500
    assert mean > 0.6 > uniform


def test_the_context_action_interaction_is_what_learns_it() -> None:
    """Without interactions VW sees no context x action signal (the XOR-like rule)."""
    flat = OnlineLearner(vw_arguments("squarecb", {"interactions": []}))
    assert _simulate(flat, 2500, seed=1) < 0.45


def test_learn_returns_the_probability_before_the_update() -> None:
    learner = OnlineLearner(vw_arguments("epsilon", {"epsilon": 0.2}))
    before = learner.learn({"u": "a"}, CATALOG, 2, 1.0, 0.25)
    assert before == pytest.approx(0.25)  # fresh model: uniform
    assert learner.predict({"u": "a"}, CATALOG)[2] > 0.25
    with pytest.raises(ValueError):
        learner.learn({"u": "a"}, CATALOG, 4, 1.0, 0.25)
    with pytest.raises(ValueError):
        learner.learn({"u": "a"}, CATALOG, 0, 1.0, 0.0)
    assert learner.examples_learned == 1


@pytest.mark.parametrize("exploration", ["squarecb", "bag", "cover", "softmax"])
def test_snapshot_round_trip_gives_the_same_pmf_and_keeps_learning(exploration: str) -> None:
    arguments = vw_arguments(exploration, {})
    learner = OnlineLearner(arguments)
    _simulate(learner, 300, seed=2)
    snapshot = learner.to_bytes()
    policy = VWPolicy(arguments, snapshot, version=7)
    resumed = OnlineLearner(arguments, snapshot)
    for segment in SEGMENTS:
        context = {"user": {"segment": segment}, "hour": 9}
        assert policy.pmf(context, CATALOG) == learner.predict(context, CATALOG)
    # Continuing from the snapshot is the same as never having stopped (save_resume).
    for target in (learner, resumed):
        target.learn({"user": {"segment": "vip"}}, CATALOG, 3, 1.0, 0.25)
    context = {"user": {"segment": "vip"}}
    assert resumed.predict(context, CATALOG) == learner.predict(context, CATALOG)


@pytest.mark.parametrize("exploration", ["squarecb", "epsilon"])
def test_the_model_is_the_one_vws_own_workspace_api_learns(exploration: str) -> None:
    """`learn` calls pylibvw directly and reuses encoded action lines: the model it saves
    is byte for byte the one VW's documented Workspace API (parse, predict, learn,
    finish_example on the same text) learns from the same stream, with the same
    probabilities before each update."""
    from vowpalwabbit import Workspace

    from bandits.features import build_example
    from bandits.policy import checked_pmf

    arguments = vw_arguments(exploration, {})
    ours = OnlineLearner(arguments)
    theirs = Workspace(arguments + " --quiet")
    catalog = [(name, {"price": 10.0 + index, "tag": name[0]})
               for index, (name, _) in enumerate(CATALOG)]
    world = np.random.default_rng(3)
    for step in range(400):
        context = {"user": {"segment": SEGMENTS[step % 3]}, "hour": int(world.integers(24))}
        actions = catalog if step % 4 else [(a, dict(f)) for a, f in reversed(catalog)]
        chosen = int(world.integers(len(actions)))
        reward = float(world.random() < 0.3) * 2.5
        probability = 1.0 / len(actions)
        before = ours.learn(context, actions, chosen, reward, probability)
        label = (chosen, cost_from_reward(reward), probability)
        examples = theirs.parse(build_example(context, actions, label))
        theirs.predict(examples)
        assert before == checked_pmf(examples[0].get_prediction(), len(actions))[chosen]
        theirs.learn(examples)
        theirs.finish_example(examples)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "theirs.vw"
        theirs.save(str(path))
        assert ours.to_bytes() == path.read_bytes()
    theirs.finish()
