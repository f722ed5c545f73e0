"""Exploration presets: validation, argument strings, and valid pmfs from VW."""

from __future__ import annotations

from typing import Any

import pytest

from bandits.exploration import (
    EXPLORATIONS,
    ExplorationError,
    validate_learner,
    vw_arguments,
)
from bandits.learner import OnlineLearner
from bandits.policy import VWPolicy


def test_required_presets_exist() -> None:
    assert {"epsilon", "squarecb", "softmax", "bag", "cover", "regcb", "greedy"} <= EXPLORATIONS
    assert "regcbopt" not in EXPLORATIONS  # VW returns [1.0, 1.0...]: not a pmf


BASE = "--cb_explore_adf --quiet"
COSTS = "--cb_min_cost -1 --cb_max_cost 0"  # reward range [0, 1]


@pytest.mark.parametrize(
    ("exploration", "params", "expected"),
    [
        ("epsilon", {}, f"{BASE} --epsilon 0.05 --bit_precision 18 {COSTS} --interactions ca"),
        ("greedy", {}, f"{BASE} --epsilon 0 --bit_precision 18 {COSTS} --interactions ca"),
        (
            "squarecb",
            {"gamma_scale": 10, "learning_rate": 0.5, "interactions": ["ca", "cca"]},
            f"{BASE} --squarecb --gamma_scale 10 --gamma_exponent 0.5 --learning_rate 0.5 "
            f"--bit_precision 18 {COSTS} --interactions ca --interactions cca",
        ),
        (
            "softmax",
            {"lambda": 2},
            f"{BASE} --softmax --lambda 2 --bit_precision 18 {COSTS} --interactions ca",
        ),
        (
            "bag",
            {"bag": 3, "interactions": [], "reward_range": [-1, 50]},
            f"{BASE} --bag 3 --epsilon 0 --bit_precision 18 --cb_min_cost -50 --cb_max_cost 1",
        ),
        (
            "cover",
            {"cb_type": "ips", "bits": 20},
            f"{BASE} --cover 3 --psi 1 --bit_precision 20 {COSTS} --cb_type ips --interactions ca",
        ),
        (
            "regcb",
            {"power_t": 0, "l2": 1e-6},
            f"{BASE} --regcb --mellowness 0.1 --power_t 0 --l2 1e-06 --bit_precision 18 {COSTS} "
            "--interactions ca",
        ),
    ],
)
def test_vw_arguments(exploration: str, params: dict[str, Any], expected: str) -> None:
    assert vw_arguments(exploration, params) == expected


def test_validate_learner_normalizes() -> None:
    assert validate_learner("epsilon", None) == {
        "epsilon": 0.05,
        "bits": 18,
        "interactions": ["ca"],
        "reward_range": [0.0, 1.0],
    }
    assert validate_learner("bag", {"bag": 4.0, "interactions": ["ca", "ca"]})["bag"] == 4
    assert validate_learner("bag", {"interactions": ("ca", "ca")})["interactions"] == ["ca"]


@pytest.mark.parametrize(
    ("exploration", "params", "field"),
    [
        ("thompson", {}, "learner.exploration"),
        ("regcbopt", {}, "learner.exploration"),
        (None, {}, "learner.exploration"),
        ("epsilon", [], "learner.params"),
        ("epsilon", {"epsilon": 1.5}, "learner.params.epsilon"),
        ("epsilon", {"epsilon": -0.1}, "learner.params.epsilon"),
        ("epsilon", {"epsilon": "0.1"}, "learner.params.epsilon"),
        ("epsilon", {"epsilon": True}, "learner.params.epsilon"),
        ("epsilon", {"epsilon": float("nan")}, "learner.params.epsilon"),
        ("epsilon", {"gamma_scale": 3}, "learner.params.gamma_scale"),
        ("squarecb", {"gamma_scale": 0}, "learner.params.gamma_scale"),
        ("squarecb", {"gamma_scale": float("inf")}, "learner.params.gamma_scale"),
        ("bag", {"bag": 2.5}, "learner.params.bag"),
        ("bag", {"bag": 1}, "learner.params.bag"),
        ("cover", {"cover": 0}, "learner.params.cover"),
        ("regcb", {"mellowness": 0}, "learner.params.mellowness"),
        ("softmax", {"lambda": -1}, "learner.params.lambda"),
        ("epsilon", {"learning_rate": 0}, "learner.params.learning_rate"),
        ("epsilon", {"bits": 40}, "learner.params.bits"),
        ("epsilon", {"power_t": 2}, "learner.params.power_t"),
        ("epsilon", {"cb_type": "bogus"}, "learner.params.cb_type"),
        ("epsilon", {"interactions": "ca"}, "learner.params.interactions"),
        ("epsilon", {"interactions": ["UA"]}, "learner.params.interactions[0]"),
        ("epsilon", {"interactions": ["ca", "c"]}, "learner.params.interactions[1]"),
        ("epsilon", {"interactions": ["ca", 1]}, "learner.params.interactions[1]"),
        ("epsilon", {"interactions": ["ca --save x"]}, "learner.params.interactions[0]"),
        ("epsilon", {"reward_range": [1, 1]}, "learner.params.reward_range"),
        ("epsilon", {"reward_range": [0]}, "learner.params.reward_range"),
        ("epsilon", {"reward_range": "0,1"}, "learner.params.reward_range"),
        ("epsilon", {"reward_range": [0, float("inf")]}, "learner.params.reward_range[1]"),
        ("epsilon", {"reward_range": [None, 1]}, "learner.params.reward_range[0]"),
    ],
)
def test_invalid_learner_names_the_field(exploration: Any, params: Any, field: str) -> None:
    with pytest.raises(ExplorationError) as info:
        vw_arguments(exploration, params)
    assert info.value.field == field
    assert field in str(info.value)


@pytest.mark.parametrize("exploration", sorted(EXPLORATIONS))
def test_every_preset_gives_a_pmf_for_1_to_20_actions(exploration: str) -> None:
    arguments = vw_arguments(exploration, {})
    learner = OnlineLearner(arguments)
    catalog = [(f"a{i}", {"rank": i, "kind": "odd" if i % 2 else "even"}) for i in range(20)]
    for step in range(60):  # a little learning so presets leave their uniform start
        actions = catalog[: 1 + step % 20]
        chosen = step % len(actions)
        learner.learn({"u": f"s{step % 3}"}, actions, chosen, float(chosen == 0), 1 / len(actions))
    policy = VWPolicy(arguments, learner.to_bytes())
    for count in range(1, 21):
        pmf = policy.pmf({"u": "s1", "hour": 3}, catalog[:count])
        assert len(pmf) == count
        assert abs(sum(pmf) - 1) < 1e-6
        assert min(pmf) >= 0
