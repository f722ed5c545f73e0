"""How often an explanation credits the feature that decides (issue 13's criterion).

A simulation with known truth: 5 actions, the user's `segment` (5 values) decides which
action pays (0.8 against 0.1), `device` and `hour` are noise. The bandit (squarecb, the
service's default learner, the same `OnlineLearner`/`VWPolicy` code rank and the learner
run) learns from its own sampled decisions; then it serves `--serve` new decisions with
`"explain": true`'s code (`VWPolicy.explain`), and we count the decisions whose top
contribution is the segment crossed with the chosen action
(`c_user^segment=s<k>*aid^id=a<chosen>`). Side by side: the same count after only
`--early` training decisions (the baseline: a model that has not learned yet).

    .venv/bin/python -m bench.explanations --seeds 10
"""

from __future__ import annotations

import argparse

import numpy as np

from bandits.exploration import vw_arguments
from bandits.learner import OnlineLearner
from bandits.policy import VWPolicy, rng_for, sample_index

ACTIONS = [(f"a{i}", {}) for i in range(5)]


def _context(rng: np.random.Generator, i: int) -> dict:
    return {"user": {"segment": f"s{i % 5}"}, "device": f"d{rng.integers(3)}",
            "hour": int(rng.integers(24))}


def share(seed: int, train: int, serve: int) -> float:
    """The share of `serve` decisions whose top contribution is the deciding feature."""
    arguments = vw_arguments("squarecb", {"gamma_scale": 10})
    rng = np.random.default_rng(seed)
    learner = OnlineLearner(arguments)
    for i in range(train):
        shown = _context(rng, i)
        pmf = learner.predict(shown, ACTIONS)
        chosen = sample_index(pmf, rng_for(f"train-{seed}-{i}"))
        reward = float(rng.random() < (0.8 if chosen == i % 5 else 0.1))
        learner.learn(shown, ACTIONS, chosen, reward, pmf[chosen])
    policy = VWPolicy(arguments, learner.to_bytes(), version=1)
    learner.close()
    hits = 0
    for i in range(serve):
        shown = _context(rng, i)
        chosen = sample_index(policy.pmf(shown, ACTIONS), rng_for(f"serve-{seed}-{i}"))
        top = policy.explain(shown, ACTIONS, chosen)["features"]
        hits += bool(top) and top[0]["name"] == f"c_user^segment=s{i % 5}*aid^id=a{chosen}"
    policy.close()
    return hits / serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--early", type=int, default=50)
    parser.add_argument("--serve", type=int, default=500)
    options = parser.parse_args(argv)
    rows = [(seed, share(seed, options.early, options.serve),
             share(seed, options.train, options.serve)) for seed in range(options.seeds)]
    print(f"| seed | after {options.early} decisions (baseline) | after {options.train} |")
    print("| ---: | ---: | ---: |")
    for seed, early, trained in rows:
        print(f"| {seed} | {early:.1%} | {trained:.1%} |")
    early = np.mean([r[1] for r in rows])
    trained = np.array([r[2] for r in rows])
    print(f"| mean | {early:.1%} | {trained.mean():.1%} (min {trained.min():.1%}) |")
    print(f"\nshare of {options.serve} served decisions per seed whose top contribution is "
          "the segment crossed with the chosen action; goal >= 90%")


if __name__ == "__main__":
    main()
