"""What a learning delay costs on bench/learning.py's environments: raw VW that learns
each decision only after D later decisions were made (the served model lags D decisions),
against raw VW that learns at once, on the same stream.

The service cannot learn a decision before its reward window closes (a `sum` of events may
still grow until then) and its grace period passes: at R ranks per second that is a lag of
at least R x (window + grace) decisions, whatever the learner does. This table says what
such a lag costs, so the service's ratio to raw VW can be read against its rank rate.
The served model is refreshed every D/8 decisions (the service's snapshots).

`--final-after F` adds rows for a learner that takes a decision as soon as its reward is
final, F decisions after it was made, when a reward came (under an `earliest` rule the
first event is final: nothing later can change it), and D decisions after it otherwise
(no reward yet may still mean one is coming): what learning final rewards before the
window closes would buy, measured before building it. Not built in the service.

    .venv/bin/python -m bench.learning_delay --environment profiles --delays 0,30,60,100,150,200,300
    .venv/bin/python -m bench.learning_delay --environment profiles --delays 0,300 --final-after 50
"""

from __future__ import annotations

import argparse
from collections import deque

import numpy as np

from bandits.features import feature_types
from bandits.learner import OnlineLearner
from bandits.policy import rng_for, sample_index
from bench.learning import ACTION_IDS, ARGUMENTS, Environment, environments


def delayed(env: Environment, seed: int, delay: int, final_after: int | None = None,
            ) -> np.ndarray:
    """Expected reward per round when the served model lags `delay` decisions (those
    with a positive reward only `final_after`, when given)."""
    types = feature_types((env.settings or {}).get("feature_types"))
    actions = [(a, {}) for a in ACTION_IDS]
    learner, served = OnlineLearner(ARGUMENTS, types=types), OnlineLearner(ARGUMENTS,
                                                                          types=types)
    shortest = delay if final_after is None else min(delay, final_after)
    refresh, expected = max(1, shortest // 8), np.zeros(len(env.contexts))
    # (due index, context, chosen, reward, propensity), in the order they become due
    waiting: deque[tuple[int, dict, int, float, float]] = deque()
    final: deque[tuple[int, dict, int, float, float]] = deque()
    for index, context in enumerate(env.contexts):
        pmf = served.predict(context, actions)
        chosen = sample_index(pmf, rng_for(f"raw-{env.name}-{seed}-{index}"))
        expected[index] = env.probabilities[index, chosen]
        reward = env.draw(index, chosen)
        if final_after is not None and reward > 0:
            final.append((index + final_after, context, chosen, reward, pmf[chosen]))
        else:
            waiting.append((index + delay, context, chosen, reward, pmf[chosen]))
        learned = False
        while True:  # whichever queue's head is due first, in due order
            heads = [q for q in (final, waiting) if q and q[0][0] <= index]
            if not heads:
                break
            item = min(heads, key=lambda q: q[0][0]).popleft()
            learner.learn(item[1], actions, *item[2:])
            learned = True
        if learned and index % refresh == 0:
            served.close()
            served = OnlineLearner(ARGUMENTS, learner.to_bytes(), types)
    learner.close()
    served.close()
    return expected


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--environment", default="profiles")
    parser.add_argument("--delays", default="0,30,60,100,150,200,300")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--final-after", type=int, default=None, metavar="F",
                        help="also: rewarded decisions learned F decisions late")
    options = parser.parse_args(argv)
    env = environments([options.environment], quick=False)[0]
    runs = {str(d): np.mean([delayed(env, s, d) for s in range(options.seeds)], axis=0)
            for d in [int(x) for x in options.delays.split(",")]}
    if options.final_after is not None:
        for d in [int(x) for x in options.delays.split(",")]:
            if d > options.final_after:
                runs[f"{d}, rewarded {options.final_after}"] = np.mean(
                    [delayed(env, s, d, options.final_after) for s in range(options.seeds)],
                    axis=0)
    base = runs.get("0", np.mean([delayed(env, s, 0) for s in range(options.seeds)], axis=0))
    fifths = np.linspace(0, len(base), 6).astype(int)
    print(f"### {env.name}: {len(base)} customers, raw VW learning D decisions late "
          f"(mean of {options.seeds} seeds) / raw VW learning at once\n")
    print("| delay D (decisions) | all | " + " | ".join(
        f"{lo + 1}–{hi}" for lo, hi in zip(fifths[:-1], fifths[1:], strict=True)) + " |")
    print("| ---: | ---: |" + " ---: |" * 5)
    for delay, expected in runs.items():
        parts = [expected[lo:hi].mean() / base[lo:hi].mean()
                 for lo, hi in zip(fifths[:-1], fifths[1:], strict=True)]
        print(f"| {delay} | {expected.mean() / base.mean():.1%} | "
              + " | ".join(f"{p:.1%}" for p in parts) + " |")


if __name__ == "__main__":
    main()
