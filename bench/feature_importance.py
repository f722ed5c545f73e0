"""How often feature importance ranks the informative context feature first.

``experiments.offline.importance.simulate``: uniformly logged decisions over 3 actions
where only the context feature ``segment`` (3 values) decides which action pays (0.7
against 0.2), beside ``--noise`` noise features of 5 values each. For each seed, the
drop-column importances are computed and the share of seeds where ``segment`` ranks first
is printed (the suite runs 2 seeds; docs/personalizer-migration.md records this run).

    .venv/bin/python -m bench.feature_importance --seeds 100 --decisions 900
"""

from __future__ import annotations

import argparse

from experiments.offline import importance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--decisions", type=int, default=900)
    parser.add_argument("--noise", type=int, default=4)
    args = parser.parse_args()
    first = 0
    for seed in range(args.seeds):
        log = importance.simulate(1000 + seed, n=args.decisions, noise=args.noise)
        rows = importance.importances(log)
        first += rows[0]["featureName"] == "segment"
    print(f"segment ranked first in {first} of {args.seeds} seeds "
          f"({first / args.seeds:.1%}); {args.decisions} decisions, {args.noise} noise "
          "features")


if __name__ == "__main__":
    main()
