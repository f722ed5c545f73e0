"""Time and memory of a full OPE report on a large log, and OBP on the same arrays.

A synthetic experiment with 10 actions: a champion arm (fixed:a0, 10% of traffic) and a
bandit arm logging uniformly; the click probability depends on the user's segment and the
action. The log is written straight into a fresh database, then, in a separate process
(so its peak RSS is the report's own), ``build_report`` computes the whole report:
champion plus the candidates ``uniform`` and ``fixed:a3``, with IPS, SNIPS, DM, DR,
Switch-DR and DR-os, analytic intervals, paired differences, diagnostics and health.
Log sizes are run in turn, to show that memory does not grow with the log.

The same decisions and candidates then go, as in-memory arrays, to (a) Tailor's pure
estimators (``experiments.ope``, no database) and (b) the Open Bandit Pipeline's
IPW/SNIPW/DM/DR with their bootstrap intervals, from a separate virtualenv
(``--obp-python``; ``pip install obp`` there, never in the project's venv).

    .venv/bin/python -m bench.ope                                  # docs/bench-ope.md
    .venv/bin/python -m bench.ope --sizes 100000 --obp-python ''  # quick, no OBP
    .venv/bin/python -m bench.ope --sizes 200000 --visits 8 --obp-python ''  # returning units
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ACTIONS = [f"a{i}" for i in range(10)]
SEGMENTS = 8
CANDIDATES = ("uniform", "fixed:a3")
BATCH = 20_000


def click_rates() -> np.ndarray:
    """(segment, action) click probabilities: action a suits segment a mod 8 best."""
    rates = np.full((SEGMENTS, len(ACTIONS)), 0.04)
    for s in range(SEGMENTS):
        rates[s, s % len(ACTIONS)] = 0.12
        rates[s, (s + 3) % len(ACTIONS)] = 0.08
    return rates


def generate(url: str, n: int, seed: int = 1, units: int = 0) -> None:
    """Create the schema, a team and the experiment, and write ``n`` closed decisions
    (from ``units`` returning units drawn at random, or without unit ids when 0)."""
    import sqlalchemy as sa

    from app.db import make_engine
    from app.migrate import upgrade
    from experiments import keys, registry
    from experiments.models import Decision, Experiment

    engine = make_engine(url, sqlite_synchronous="OFF")
    upgrade(engine)
    with sa.orm.Session(engine) as session:
        team = keys.get_or_create_team(session, "bench")
        session.commit()
        registry.create(session, team.id, {
            "key": "bench", "actions": [{"id": a, "features": {}} for a in ACTIONS],
            "reward": {"events": {"click": 1.0}, "window_seconds": 60},
            "champion": {"type": "fixed", "action_id": "a0"},
            "arms": {"champion": 0.1, "bandit": 0.9}}, "bench")
        exp_id = session.scalar(sa.select(Experiment.id))
    rng = np.random.default_rng(seed)
    rates, start = click_rates(), time.time() - 30 * 86400
    actions_json = json.dumps([{"id": a, "features": {}} for a in ACTIONS])
    table = Decision.__table__
    with engine.begin() as conn:
        for first in range(0, n, BATCH):
            rows = _rows(exp_id, first, min(BATCH, n - first), rng, rates, start, units)
            conn.execute(table.insert().values(actions=sa.literal(actions_json)), rows)
    engine.dispose()


def _rows(exp_id: int, first: int, m: int, rng: np.random.Generator, rates: np.ndarray,
          start: float, units: int = 0) -> list[dict[str, Any]]:
    k = len(ACTIONS)
    champion = rng.random(m) < 0.1
    chosen = np.where(champion, 0, rng.integers(0, k, m))
    segment = rng.integers(0, SEGMENTS, m)
    click = rng.random(m) < rates[segment, chosen]
    uniform, one_hot = [1.0 / k] * k, [1.0] + [0.0] * (k - 1)
    unit = rng.integers(0, units, m) if units else None  # no draw: same log as before
    rows = []
    for j in range(m):
        i, arm = first + j, "champion" if champion[j] else "bandit"
        created = start + i * 0.5
        rows.append(dict(
            experiment_id=exp_id, event_id=f"e{i}", request_hash="bench", arm=arm,
            policy=arm, model_version=None, experiment_version=1, phase="online",
            unit_id=None if unit is None else f"u{unit[j]}",
            context={"segment": f"s{segment[j]}", "hour": int(i % 24),
                     "device": "mobile" if i % 3 else "desktop"},
            pmf=one_hot if champion[j] else uniform, chosen_index=int(chosen[j]),
            action_id=ACTIONS[chosen[j]], propensity=1.0 if champion[j] else 1.0 / k,
            deferred=False, activated_at=created, closes_at=created + 60,
            reward=1.0 if click[j] else None, reward_count=int(click[j]),
            learned_version=None, created_at=created))
    return rows


def report(url: str, trace: bool) -> dict[str, Any]:
    """Compute and store the report; time, peak RSS and (with ``trace``) traced peak."""
    import sqlalchemy as sa

    from app.db import make_engine
    from experiments.models import Experiment
    from experiments.ope_report import build_report, parse_options

    engine = make_engine(url)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with sa.orm.Session(engine) as session:
        experiment = session.scalars(sa.select(Experiment)).one()
        options = parse_options({}, [",".join(CANDIDATES)])
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        result = build_report(session, experiment, options)
        seconds = time.perf_counter() - started
        traced = tracemalloc.get_traced_memory()[1] if trace else None
    engine.dispose()
    return {"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            / 1024, "rss_before_mb": before / 1024,
            "traced_mb": None if traced is None else traced / 2**20,
            "n": result["n_decisions"], "n_units": result["n_units"],
            "values": {name: {e: v["value"] for e, v in entry["estimators"].items()}
                       for name, entry in result["candidates"].items()}}


def arrays(url: str, path: Path) -> None:
    """Dump the log as arrays (and Tailor's cross-fitted q_hat) for the array baselines."""
    import sqlalchemy as sa

    from app.db import make_engine
    from experiments.final_decisions import count, scope_of
    from experiments.models import Experiment
    from experiments.ope_report import qmodel
    from experiments.ope_report.candidates import FixedSource, UniformSource
    from experiments.ope_report.scope import chunks

    engine = make_engine(url)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("r", "a", "p", "q", "u", "f")}
    with sa.orm.Session(engine) as session:
        experiment = session.scalars(sa.select(Experiment)).one()
        scope = scope_of(session, experiment)
        model = qmodel.fit(session, scope, count(session, scope), ignore=frozenset())
        for chunk in chunks(session, scope):
            for key, value in (("r", chunk.rewards), ("a", chunk.chosen),
                               ("p", chunk.propensity), ("q", model.q_hat(chunk)),
                               ("u", UniformSource().pmfs(chunk)),
                               ("f", FixedSource("a3").pmfs(chunk))):
                parts[key].append(value)
    np.savez(path, **{k: np.concatenate(v) for k, v in parts.items()})
    engine.dispose()


def tailor_arrays(path: Path) -> dict[str, Any]:
    """Tailor's pure estimators on the arrays (all six, analytic intervals, one pass)."""
    from experiments.ope import DM, DR, DROS, IPS, SNIPS, LoggedBatch, SwitchDR

    data = np.load(path)
    started = time.perf_counter()
    values = {}
    for name, key in (("uniform", "u"), ("fixed:a3", "f")):
        batch = LoggedBatch(data["r"], data["p"], data["a"], data[key], q_hat=data["q"])
        values[name] = {e.name: e.add(batch).get().value for e in (
            IPS(), SNIPS(), DM(), DR(), SwitchDR(tau=20.0), DROS(lam=100.0))}
    return {"seconds": time.perf_counter() - started, "values": values}


OBP_SCRIPT = r"""
import json, sys, time
import numpy as np
from obp.ope import DirectMethod, DoublyRobust, InverseProbabilityWeighting, \
    SelfNormalizedInverseProbabilityWeighting
d = np.load(sys.argv[1]); boot = int(sys.argv[2])
out = {"point_seconds": 0.0, "interval_seconds": 0.0, "values": {}}
for name, key in (("uniform", "u"), ("fixed:a3", "f")):
    kw = dict(reward=d["r"], action=d["a"], pscore=d["p"], action_dist=d[key][:, :, None],
              estimated_rewards_by_reg_model=d["q"][:, :, None])
    vals = {}
    for label, est in (("ips", InverseProbabilityWeighting()),
                       ("snips", SelfNormalizedInverseProbabilityWeighting()),
                       ("dm", DirectMethod()), ("dr", DoublyRobust())):
        t = time.perf_counter(); vals[label] = float(est.estimate_policy_value(**kw))
        out["point_seconds"] += time.perf_counter() - t
        t = time.perf_counter()
        est.estimate_interval(**kw, n_bootstrap_samples=boot, random_state=0)
        out["interval_seconds"] += time.perf_counter() - t
    out["values"][name] = vals
print(json.dumps(out))
"""


def obp(python: str, path: Path, boot: int) -> dict[str, Any] | str:
    script = path.with_suffix(".obp.py")
    script.write_text(OBP_SCRIPT)
    done = subprocess.run([python, str(script), str(path), str(boot)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        return done.stderr.strip().splitlines()[-1] if done.stderr else "failed"
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bench.ope", *args], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}


def run(sizes: list[int], obp_python: str, boot: int, trace: bool,
        visits: float = 0.0) -> None:
    rows, comparisons = [], []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="tailor-bench-ope-") as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            started = time.perf_counter()
            _child("generate", url, str(n), str(round(n / visits) if visits else 0))
            setup = time.perf_counter() - started
            timed = _child("report", url)
            traced = _child("report", url, "--trace") if trace else {}
            rows.append((n, setup, timed, traced))
            if n == sizes[-1]:
                path = Path(tmp) / "arrays.npz"
                _child("arrays", url, str(path))
                comparisons = [("Tailor experiments.ope on arrays", tailor_arrays(path))]
                if obp_python:
                    comparisons.append(("OBP 0.5 on arrays", obp(obp_python, path, boot)))
                comparisons.insert(0, ("Tailor report (database, 2 passes)", timed))
    _print(rows, comparisons, boot)


def _print(rows: list, comparisons: list, boot: int) -> None:
    print("| decisions | units with an id | write log (s) | report (s) | decisions/s | "
          "peak RSS (MB) | RSS at start (MB) | tracemalloc peak (MB) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, setup, timed, traced in rows:
        peak = traced.get("traced_mb")
        units = timed["n_units"] if timed["n_units"] < n else 0
        print(f"| {n:,} | {units:,} | {setup:.1f} | {timed['seconds']:.1f} | "
              f"{n / timed['seconds']:,.0f} "
              f"| {timed['rss_mb']:.0f} | {timed['rss_before_mb']:.0f} | "
              f"{'-' if peak is None else f'{peak:.0f}'} |")
    print()
    print("| on the largest log | time (s) | uniform IPS | uniform DR | fixed:a3 SNIPS | "
          "fixed:a3 DR |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, result in comparisons:
        if isinstance(result, str):
            print(f"| {label} | could not run: {result} | | | | |")
            continue
        seconds = result.get("seconds", result.get("point_seconds"))
        v = result["values"]
        text = f"{seconds:.2f}"
        if "interval_seconds" in result:
            text += f" (+{result['interval_seconds']:.1f} for {boot}-sample bootstrap CIs)"
        print(f"| {label} | {text} | {v['uniform']['ips']:.6f} | {v['uniform']['dr']:.6f} "
              f"| {v['fixed:a3']['snips']:.6f} | {v['fixed:a3']['dr']:.6f} |")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("generate", "report", "arrays"):
        command, url, *rest = sys.argv[1:]
        if command == "generate":
            generate(url, int(rest[0]), units=int(rest[1]) if len(rest) > 1 else 0)
        elif command == "report":
            print(json.dumps(report(url, "--trace" in rest)))
        else:
            arrays(url, Path(rest[0]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000",
                        help="comma-separated log sizes (decisions)")
    parser.add_argument("--obp-python", default=os.environ.get("OBP_PYTHON",
                                                               "/tmp/obpvenv310/bin/python"),
                        help="python of a virtualenv with obp installed ('' to skip)")
    parser.add_argument("--bootstrap", type=int, default=100,
                        help="OBP's bootstrap samples per interval (its default: 100)")
    parser.add_argument("--no-trace", action="store_true",
                        help="skip the tracemalloc run (it is slower)")
    parser.add_argument("--visits", type=float, default=0.0,
                        help="decisions per unit: give decisions unit ids of n/visits "
                             "returning units (0: no unit ids)")
    args = parser.parse_args()
    obp_python = args.obp_python if args.obp_python and Path(args.obp_python).exists() else ""
    run([int(s) for s in args.sizes.split(",")], obp_python, args.bootstrap, not args.no_trace,
        args.visits)


if __name__ == "__main__":
    main()
