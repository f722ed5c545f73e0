"""Explanations read VW's own weights: every name, index and weight agrees with VW's
`--audit` output for the same model and example, for each exploration preset."""

from __future__ import annotations

import re

import pytest
import vowpalwabbit

from bandits.explain import Explainer, top, unexplainable
from bandits.exploration import vw_arguments
from bandits.features import build_example, feature_types
from bandits.learner import OnlineLearner
from bandits.policy import workspace

TYPES = feature_types({"bio": "text", "user.vec": "vector"})
ACTIONS = [("a1", {"cat": "shoes", "price": 49.0}), ("a2", {"cat": "bags"}),
           ("a3", {"cat": "hats", "meta": {"new": True}})]
CONTEXT = {"hour": 14, "user": {"segment": "pro", "vec": [0.5, -0.25]},
           "bio": "likes trail running"}
AUDIT = re.compile(r"^(?P<name>[^\t:]+(?::[^\t:]+)?):(?P<index>\d+):(?P<value>[^:]+):"
                   r"(?P<weight>[^@]+)@")


def _trained(arguments: str) -> bytes:
    learner = OnlineLearner(arguments, types=TYPES)
    for i in range(200):
        context = {**CONTEXT, "hour": i % 24, "user": {"segment": f"s{i % 3}",
                                                       "vec": [0.1 * (i % 5), 0.3]}}
        learner.learn(context, ACTIONS, i % 3, float(i % 3 == i % 2), 1 / 3)
    data = learner.to_bytes()
    learner.close()
    return data


def _audited(arguments: str, data: bytes, lines: list[str], capfd) -> list[dict[str, str]]:
    capfd.readouterr()
    audit = workspace(arguments.replace("--quiet", "--quiet --audit"), data)
    audit.predict(lines)
    audit.finish()
    out = capfd.readouterr().out
    blocks = [line for line in out.splitlines() if line.startswith("\t")]
    return [[m.groupdict() for m in map(AUDIT.match, block.strip().split("\t")) if m]
            for block in blocks]


@pytest.mark.parametrize("exploration, params", [
    ("epsilon", {"epsilon": 0.1}), ("squarecb", {"gamma_scale": 10}),
    ("softmax", {"lambda": 2.0}), ("regcb", {}), ("greedy", {}),
    ("epsilon", {"epsilon": 0.1, "cb_type": "ips"}),
    ("epsilon", {"epsilon": 0.1, "cb_type": "dm"}),
    ("squarecb", {"interactions": ["ca", "cca"][:1] + ["ac"], "bits": 20})])
def test_contributions_match_vw_audit(exploration, params, capfd):
    arguments = vw_arguments(exploration, params)
    assert unexplainable(arguments) is None
    data = _trained(arguments)
    lines = build_example(CONTEXT, ACTIONS, types=TYPES)
    served = workspace(arguments, data)
    explainer = Explainer(served, arguments)
    ours = {c.name: c for c in explainer.contributions(lines[0], lines[1])}
    served.finish()
    audited = {a["name"]: a for a in _audited(arguments, data, lines, capfd)[0]}
    assert set(audited) <= set(ours)
    for name, entry in audited.items():
        assert ours[name].vw_weight == pytest.approx(float(entry["weight"]), rel=1e-5,
                                                     abs=1e-6), name
        assert ours[name].value == pytest.approx(float(entry["value"]))
    assert any(c.vw_weight != 0 for c in ours.values())
    assert any("*" in name for name in audited)  # interactions are covered


@pytest.mark.parametrize("exploration, params", [
    ("bag", {"bag": 3}), ("cover", {"cover": 3}),
    ("epsilon", {"interactions": ["ca", "cca"]}), ("epsilon", {"cb_type": "dr"})])
def test_what_is_not_explained_says_so(exploration, params):
    assert unexplainable(vw_arguments(exploration, params))


def test_top_is_sorted_by_size_and_bounded():
    arguments = vw_arguments("epsilon", {"epsilon": 0.1})
    served = workspace(arguments, _trained(arguments))
    lines = build_example(CONTEXT, ACTIONS, types=TYPES)
    listed = top(Explainer(served, arguments).contributions(lines[0], lines[2]))
    served.finish()
    sizes = [abs(c["weight"]) for c in listed]
    assert 0 < len(listed) <= 10 and sizes == sorted(sizes, reverse=True)
    assert not vowpalwabbit.__name__.startswith("x")


def test_the_deciding_feature_is_the_top_contribution():
    """Simulation with known truth: the best action is the segment's; device and hour are
    noise. After training, the segment crossed with the chosen action is the top
    contribution for >= 90% of the bandit's decisions."""
    import numpy as np

    from bandits.policy import VWPolicy, rng_for, sample_index

    arguments = vw_arguments("squarecb", {"gamma_scale": 10})
    actions = [(f"a{i}", {}) for i in range(5)]
    rng = np.random.default_rng(0)

    def context(i: int) -> dict:
        return {"user": {"segment": f"s{i % 5}"}, "device": f"d{rng.integers(3)}",
                "hour": int(rng.integers(24))}

    learner = OnlineLearner(arguments)
    for i in range(2000):
        shown = context(i)
        pmf = learner.predict(shown, actions)
        chosen = sample_index(pmf, rng_for(f"train-{i}"))
        reward = float(rng.random() < (0.8 if chosen == i % 5 else 0.1))
        learner.learn(shown, actions, chosen, reward, pmf[chosen])
    policy = VWPolicy(arguments, learner.to_bytes(), version=1)
    learner.close()
    hits = 0
    for i in range(200):
        shown = context(i)
        chosen = sample_index(policy.pmf(shown, actions), rng_for(f"serve-{i}"))
        explanation = policy.explain(shown, actions, chosen)
        assert explanation["action_id"] == f"a{chosen}"
        hits += explanation["features"][0]["name"] == \
            f"c_user^segment=s{i % 5}*aid^id=a{chosen}"
    policy.close()
    assert hits / 200 >= 0.9
