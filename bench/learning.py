"""Learning quality, model freshness and learner throughput through the real HTTP API.

`tailor serve --no-learner` (gunicorn, as `make run`) and `tailor learn` run as subprocesses
on a free port with a private database. Simulated customers with known reward probabilities call
rank, then send the reward at once (a short reward window). Two environments:

- synthetic: 10 actions; the best action depends on the segment and the country (each
  context feature × action adds to the click probability), device and hour are noise;
- digits: scikit-learn's bundled `load_digits` as a 10-action bandit: the context is the
  64 pixels, reward 1 when the chosen action is the true digit (no download);
- profiles / profiles-inline / profiles-off, text, vector (bench/learning_envs.py): the
  best action depends only on stored unit profiles (a segment and a free-text bio) that
  the app never sends at rank time, every customer a new unit; the same features sent
  inline in every rank instead (the service's own reference: same stream, same learning
  delay); the same experiment without the profile setting; a declared text field; a
  declared 16-dimension vector;
- semantic / semantic-text (bench/learning_envs.py): the best action is the category of a
  word, new words as the stream goes (sharing no word with those learned), declared
  `embedding` (needs the embeddings extra) and the same stream declared `text`;
  semantic-profile: the same words stored in unit profiles (embedded when written).

Next to the service: raw VW in-process with the same arguments on the same stream (it
learns right after each decision: progressive reward), the uniform policy and the best
fixed action (exact expectations). Rewards in the table are expected rewards of the chosen
actions (the environment's probability), which is less noisy than the 0/1 draws.

    .venv/bin/python -m bench.learning --quick                 # CI-sized, 1-3 minutes
    .venv/bin/python -m bench.learning                         # docs/bench-learning.md, 3-6 min
    .venv/bin/python -m bench.learning --backend postgresql    # TAILOR_BENCH_PG_URL
    .venv/bin/python -m bench.learning --quick --environments profiles,profiles-off,text,vector
    .venv/bin/python -m bench.learning --environments semantic,semantic-text,semantic-profile
"""

from __future__ import annotations

import argparse
import bisect
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import requests

from bandits.exploration import vw_arguments
from bandits.features import feature_types
from bandits.learner import OnlineLearner
from bandits.policy import rng_for, sample_index
from bench._servers import Served, Tenant, create_tenant, database
from experiments import clock

ROOT = Path(__file__).resolve().parents[1]
TAILOR = Path(sys.executable).parent / "tailor"
LEARNER = {"exploration": "squarecb", "params": {"gamma_scale": 10}}
ARGUMENTS = vw_arguments(LEARNER["exploration"], LEARNER["params"])
WINDOW_SECONDS = 0.5
SERVICE_ENV = {"TAILOR_MODEL_CHECK_SECONDS": "0.1", "TAILOR_LEARNER_SNAPSHOT_SECONDS": "0.1",
               "TAILOR_LEARNER_GRACE_SECONDS": "0.1",
               # WAL + NORMAL: durable across process crashes, not power loss; a learning
               # benchmark need not wait for an fsync per decision.
               "TAILOR_SQLITE_SYNCHRONOUS": "NORMAL"}
ACTION_IDS = [f"a{i}" for i in range(10)]


@dataclass(frozen=True)
class Environment:
    """A stream of contexts and, per round, each action's reward probability."""

    name: str
    contexts: list[dict[str, Any]]  # what raw VW sees (inline)
    probabilities: np.ndarray  # (rounds, 10)
    # Unit profiles: the service's experiment settings, the profiles written beforehand,
    # and per round what the app sends and for which unit (None: contexts, no unit).
    settings: dict[str, Any] | None = None
    profiles: dict[str, dict[str, Any]] | None = None
    sent: list[dict[str, Any]] | None = None
    units: list[str] | None = None

    def draw(self, index: int, action: int) -> float:
        """The customer's 0/1 reward, the same for the service and raw VW."""
        return float(np.random.default_rng([7, index]).random()
                     < self.probabilities[index, action])

    @property
    def uniform(self) -> float:
        return float(self.probabilities.mean())

    @property
    def best_fixed(self) -> float:
        return float(self.probabilities.mean(axis=0).max())


def synthetic(rounds: int, seed: int = 1) -> Environment:
    rng = np.random.default_rng(seed)
    segment = rng.choice(5, size=rounds, p=[0.35, 0.25, 0.2, 0.12, 0.08])
    country = rng.choice(4, size=rounds, p=[0.4, 0.3, 0.2, 0.1])
    device, hour = rng.integers(0, 3, size=rounds), rng.integers(0, 24, size=rounds)
    probabilities = np.full((rounds, 10), 0.05)
    rows = np.arange(rounds)
    probabilities[rows, (2 * segment) % 10] += 0.5  # the segment's favourite
    probabilities[rows, (3 * country + 1) % 10] += 0.25  # the country's favourite
    contexts = [{"user": {"segment": f"s{s}", "country": f"c{c}"}, "device": f"d{d}",
                 "hour": int(h)} for s, c, d, h in zip(segment, country, device, hour,
                                                         strict=True)]
    return Environment("synthetic", contexts, probabilities)


def digits(epochs: int, seed: int = 1) -> Environment:
    from sklearn.datasets import load_digits

    pixels, labels = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(labels)) for _ in range(epochs)])
    contexts = [{"px": {f"p{j}": float(pixels[i, j]) / 16 for j in range(64) if pixels[i, j]}}
                for i in order]
    probabilities = np.zeros((len(order), 10))
    probabilities[np.arange(len(order)), labels[order]] = 1.0
    return Environment("digits", contexts, probabilities)


# --- raw VW, in process ---------------------------------------------------------------

@dataclass(frozen=True)
class RawRun:
    expected: np.ndarray  # per round, the mean over seeds
    by_seed: np.ndarray  # (seeds, rounds)
    learn_per_second: float


def raw_vw(env: Environment, seeds: int) -> RawRun:
    """VW's progressive reward on the same stream, for several exploration seeds."""
    runs = [_raw_once(env, seed) for seed in range(seeds)]
    by_seed = np.array([expected for expected, _ in runs])
    return RawRun(by_seed.mean(axis=0), by_seed, float(np.mean([rate for _, rate in runs])))


def _raw_once(env: Environment, seed: int) -> tuple[np.ndarray, float]:
    """Predict, choose, learn right away (no delay at all)."""
    types = feature_types((env.settings or {}).get("feature_types"))
    learner, actions = OnlineLearner(ARGUMENTS, types=types), [(a, {}) for a in ACTION_IDS]
    expected, busy = np.zeros(len(env.contexts)), 0.0
    for index, context in enumerate(env.contexts):
        pmf = learner.predict(context, actions)
        chosen = sample_index(pmf, rng_for(f"raw-{env.name}-{seed}-{index}"))
        expected[index] = env.probabilities[index, chosen]
        started = time.perf_counter()
        learner.learn(context, actions, chosen, env.draw(index, chosen), pmf[chosen])
        busy += time.perf_counter() - started
    learner.close()
    return expected, len(env.contexts) / busy


# --- the service, over HTTP -----------------------------------------------------------

@dataclass(frozen=True)
class Round:
    index: int
    event_id: str
    ranked_at: float
    rewarded_at: float | None
    model_version: int
    expected: float


class Api:
    def __init__(self, url: str, tenant: Tenant) -> None:
        self.url, self.tenant = url, tenant
        self._local = threading.local()

    def call(self, method: str, path: str, scope: str, **kwargs: Any) -> requests.Response:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        headers = {"Authorization": f"Bearer {getattr(self.tenant, scope)}"}
        response = session.request(method, self.url + path, headers=headers, timeout=30,
                                   **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        return response


def register(api: Api, key: str, settings: dict[str, Any] | None = None) -> None:
    api.call("POST", "/v1/experiments", "admin", json={
        "key": key, "actions": [{"id": a} for a in ACTION_IDS], "learner": LEARNER,
        "reward": {"events": {"click": 1.0}, "window_seconds": WINDOW_SECONDS,
                   "default": 0.0},
        "champion": {"type": "uniform"}, "arms": {"bandit": 1.0}, **(settings or {})})


def write_profiles(api: Api, profiles: dict[str, dict[str, Any]]) -> None:
    """POST /v1/profiles, 1000 at a time (before the customers arrive)."""
    items = [{"unit_id": unit, "features": features} for unit, features in profiles.items()]
    for start in range(0, len(items), 1000):
        api.call("POST", "/v1/profiles", "client", json={"profiles": items[start:start + 1000]})


def play(api: Api, key: str, env: Environment, index: int) -> Round:
    """One customer: rank, then the reward right away (clicks only; no click = default)."""
    event_id = f"{key}-{index}"
    body: dict[str, Any] = {"context": (env.sent or env.contexts)[index], "event_id": event_id}
    if env.units is not None:
        body["unit_id"] = env.units[index]
    answer = api.call("POST", f"/v1/experiments/{key}/rank", "client", json=body).json()
    ranked_at, chosen = time.time(), ACTION_IDS.index(answer["action_id"])
    rewarded_at = None
    if env.draw(index, chosen):
        api.call("POST", f"/v1/events/{event_id}/rewards", "client", json={"type": "click"})
        rewarded_at = time.time()
    return Round(index, event_id, ranked_at, rewarded_at, answer["model_version"] or 0,
                 float(env.probabilities[index, chosen]))


def run_stream(api: Api, key: str, env: Environment, concurrency: int) -> list[Round]:
    """Customers arrive in stream order, `concurrency` at a time."""
    rounds: list[Round] = []
    lock, cursor = threading.Lock(), iter(range(len(env.contexts)))

    def worker() -> None:
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            result = play(api, key, env, index)
            with lock:
                rounds.append(result)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(rounds, key=lambda r: r.index)


@dataclass(frozen=True)
class LogFigures:
    learned_version: dict[str, int | None]  # event id → first snapshot that included it
    late_rewards: int  # arrived after the window: stored, flagged, not learned
    reward_total: float  # sum of the decisions' joined rewards in the log
    closes_at: dict[str, float]  # event id → when its reward window closed
    snapshot_at: dict[int, float]  # version → when the snapshot was committed


def log_figures(api: Api, key: str) -> LogFigures:
    """What the decision log and model APIs say about every decision of the experiment."""
    found: dict[str, int | None] = {}
    closes: dict[str, float] = {}
    late, total = 0, 0.0
    after: int | None = 0
    while after is not None:
        page = api.call("GET", f"/v1/experiments/{key}/decisions", "analyst",
                        params={"after": after, "limit": 1000}).json()
        for decision in page["decisions"]:
            found[decision["event_id"]] = decision["learned_version"]
            closes[decision["event_id"]] = clock.parse_iso(decision["closes_at"])
            late += sum(reward["late"] for reward in decision["rewards"])
            total += decision["reward"] or 0.0
        after = page["next_after"]
    models = api.call("GET", f"/v1/experiments/{key}/models", "analyst").json()["models"]
    made = {m["version"]: clock.parse_iso(m["created_at"]) for m in models}
    return LogFigures(found, late, total, closes, made)


def wait_active(api: Api, key: str, timeout: float = 120.0) -> None:
    """Until the learner holds the experiment's lease (its process has started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = api.call("GET", f"/v1/experiments/{key}/learning", "analyst").json()
        if status["learner"]["active"]:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{key}: no learner took the experiment")


def wait_learned(api: Api, key: str, count: int, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = api.call("GET", f"/v1/experiments/{key}/learning", "analyst").json()
        if status["examples_learned"] >= count and status["pending_decisions"] == 0:
            if status["examples_learned"] != count:  # exactly once, or the bench is void
                raise RuntimeError(f"{key}: {status['examples_learned']} examples learned "
                                   f"from {count} decisions")
            return status
        time.sleep(0.2)
    raise RuntimeError(f"{key}: the learner did not catch up: {status}")


def freshness(rounds: list[Round], versions: dict[str, int | None]) -> np.ndarray:
    """Seconds from a reward sent to the first rank answer served by a snapshot with it."""
    answers, delays = Answers(rounds), []
    for r in rounds:
        version = versions.get(r.event_id)
        if r.rewarded_at is None or not version:
            continue
        served = answers.first_served(version, r.rewarded_at)
        if served is not None:
            delays.append(served - r.rewarded_at)
    return np.asarray(delays)


class Answers:
    """The rank answers in time order, with the model version that served each."""

    def __init__(self, rounds: list[Round]) -> None:
        self.answers = sorted((r.ranked_at, r.model_version) for r in rounds)
        self.times = [t for t, _ in self.answers]

    def first_served(self, version: int, after: float) -> float | None:
        """When the first answer after `after` came from `version` or a newer one."""
        for at, served in self.answers[bisect.bisect_left(self.times, after):]:
            if served >= version:
                return at
        return None


@dataclass(frozen=True)
class Lag:
    """The learner's part of freshness, per decision (medians and p90s, seconds): its
    window closed → the snapshot that learned it committed (the grace period, the
    learner's wake-up and batching, the snapshot cadence) → the first rank answer served
    by that snapshot (the workers noticing and loading it)."""

    to_snapshot: np.ndarray
    to_served: np.ndarray


def lag(rounds: list[Round], figures: LogFigures) -> Lag:
    snapshot, served, answers = [], [], Answers(rounds)
    first: dict[int, float | None] = {}
    for r in rounds:
        version = figures.learned_version.get(r.event_id) or 0
        made = figures.snapshot_at.get(version)
        if made is None:
            continue  # not learned, or its snapshot pruned
        snapshot.append(made - figures.closes_at[r.event_id])
        if version not in first:
            first[version] = answers.first_served(version, made)
        at = first[version]
        if at is not None:
            served.append(at - made)
    return Lag(np.asarray(snapshot), np.asarray(served))


# --- processes ------------------------------------------------------------------------

@contextmanager
def learner_process(url: str, keys: list[str],
                    env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """`tailor learn` for these experiments; SIGTERM at the end must exit 0."""
    args = [str(TAILOR), "learn"] + [f"--experiment={k}" for k in keys]
    log = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or SERVICE_ENV),
                                                    "DATABASE_URL": url}, stderr=log)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
        log.seek(0)
        if code != 0:
            raise RuntimeError(f"tailor learn exited {code}: {log.read()[-2000:]}")
        log.close()


def drain_once(url: str, key: str) -> tuple[int, float]:
    """`tailor learn --once` on a backlog: (decisions, learner-reported seconds)."""
    # Default snapshot settings (1000 examples or 1 s), as `make run` uses them.
    done = subprocess.run([str(TAILOR), "learn", "--once", f"--experiment={key}"], cwd=ROOT,
                          capture_output=True, text=True, check=True, timeout=600,
                          env={**os.environ, "DATABASE_URL": url})
    match = re.search(r"learned (\d+) decisions .* in ([\d.]+)s", done.stderr)
    if match is None:
        raise RuntimeError(done.stderr)
    return int(match.group(1)), float(match.group(2))


# --- the report -----------------------------------------------------------------------

@dataclass(frozen=True)
class ServiceRun:
    expected: np.ndarray  # per round
    seconds: float
    freshness: np.ndarray
    status: dict[str, Any]
    late_rewards: int
    missed_reward: float  # reward in the log that the learner did not learn
    lag: Lag


@dataclass(frozen=True)
class Throughput:
    decisions: int
    seconds: float
    raw_per_second: float


def quality_table(env: Environment, service: ServiceRun, raw: RawRun,
                  checkpoints: int) -> list[str]:
    rounds = len(service.expected)
    lines = [f"### {env.name}: {rounds} customers ({rounds / service.seconds:.0f} rank+reward "
             f"per s over HTTP)", "",
             f"| customers | service (bandit arm) | raw VW (mean of {len(raw.by_seed)} seeds) "
             "| raw VW seed range | service / raw VW | uniform | best fixed |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    bounds = np.linspace(0, rounds, checkpoints + 1).astype(int)
    for low, high in zip(bounds[:-1], bounds[1:], strict=True):
        lines.append(_quality_row(f"{low + 1}–{high}", service.expected[low:high],
                                  raw.by_seed[:, low:high], env))
    lines.append(_quality_row("**all**", service.expected, raw.by_seed, env))
    return lines


def _quality_row(label: str, service: np.ndarray, by_seed: np.ndarray,
                 env: Environment) -> str:
    raw, seeds = by_seed.mean(), by_seed.mean(axis=1)
    ratio = service.mean() / raw if raw > 0 else float("nan")
    return (f"| {label} | {service.mean():.3f} | {raw:.3f} | {seeds.min():.3f}–"
            f"{seeds.max():.3f} | {ratio:.1%} | {env.uniform:.3f} | {env.best_fixed:.3f} |")


def freshness_table(envs: list[Environment], runs: list[ServiceRun]) -> list[str]:
    lines = ["| environment | rewards measured | median s | p90 s | max s | window closed → "
             "snapshot committed, median / p90 ms | snapshot → first served, median / p90 ms "
             "| snapshots | late rewards | reward in the log not learned |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for env, run in zip(envs, runs, strict=True):
        f = run.freshness
        stats = (f"{np.median(f):.2f} | {np.percentile(f, 90):.2f} | {f.max():.2f}"
                 if len(f) else "– | – | –")
        lines.append(f"| {env.name} | {len(f)} | {stats} | {_ms(run.lag.to_snapshot)} | "
                     f"{_ms(run.lag.to_served)} | {run.status['learner']['snapshots']} "
                     f"| {run.late_rewards} | {run.missed_reward:.1f} |")
    return lines


def _ms(values: np.ndarray) -> str:
    if not len(values):
        return "–"
    return f"{1e3 * np.median(values):.0f} / {1e3 * np.percentile(values, 90):.0f}"


def throughput_table(result: Throughput) -> list[str]:
    return ["| learner | decisions | examples/s |", "| --- | ---: | ---: |",
            f"| `tailor learn --once` (read, join, learn, snapshot, commit) "
            f"| {result.decisions} | {result.decisions / result.seconds:.0f} |",
            f"| raw VW `learn` in process, same contexts | {result.decisions} "
            f"| {result.raw_per_second:.0f} |"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized run")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=3, help="raw VW runs per environment")
    parser.add_argument("--environments", default=",".join(ENVIRONMENTS),
                        help="comma-separated, from " + ", ".join(ENVIRONMENTS))
    options = parser.parse_args(argv)
    envs = environments(options.environments.split(","), options.quick)
    backlog = 1000 if options.quick else 1500
    started = time.perf_counter()
    with database(options.backend) as url:
        runs, throughput = _service_runs(url, envs, options.concurrency, backlog)
    report = [f"## Learning: {options.backend}, {options.concurrency} concurrent customers, "
              f"reward window {WINDOW_SECONDS} s", "", f"VW arguments: `{ARGUMENTS}`", ""]
    for env, run in zip(envs, runs, strict=True):
        raw = raw_vw(env, options.seeds)
        report += quality_table(env, run, raw, checkpoints=3 if options.quick else 5) + [""]
    report += ["### Model freshness: reward sent → first rank answer served by a snapshot "
               "that learned it", "", f"The window ({WINDOW_SECONDS} s) and the grace period "
               f"({SERVICE_ENV['TAILOR_LEARNER_GRACE_SECONDS']} s) come first: no decision "
               "can be learned sooner. The two middle columns split the rest.", ""]
    report += freshness_table(envs, runs) + [""]
    if throughput is not None:
        report += ["### Learner throughput (a backlog of digits decisions)", ""]
        report += throughput_table(throughput)
    report += ["", f"(total {time.perf_counter() - started:.0f} s)"]
    print("\n".join(report))


ENVIRONMENTS = ("synthetic", "digits", "profiles", "profiles-inline", "profiles-off", "text",
                "vector",
                "semantic", "semantic-text", "semantic-profile")


def environments(names: list[str], quick: bool) -> list[Environment]:
    from bench import learning_envs

    unknown = sorted(set(names) - set(ENVIRONMENTS))
    if unknown:
        raise SystemExit(f"unknown environment {unknown[0]!r}; from {', '.join(ENVIRONMENTS)}")
    rounds = 1500 if quick else 3000
    made = {"synthetic": lambda: synthetic(rounds), "digits": lambda: digits(1 if quick else 2),
            "profiles": lambda: learning_envs.profiles(rounds),
            "profiles-off": lambda: learning_envs.profiles(rounds, merged=False),
            "profiles-inline": lambda: learning_envs.profiles(rounds, sent_inline=True),
            "text": lambda: learning_envs.text(rounds),
            "vector": lambda: learning_envs.vector(rounds),
            "semantic": lambda: learning_envs.semantic(rounds),
            "semantic-text": lambda: learning_envs.semantic(rounds, kind="text"),
            "semantic-profile": lambda: learning_envs.semantic_profile(rounds)}
    return [made[name]() for name in names]


def _service_runs(url: str, envs: list[Environment], concurrency: int,
                  backlog: int) -> tuple[list[ServiceRun], Throughput | None]:
    tenant = create_tenant(url)
    # The learner runs apart (`--experiment` selection, its exit checked) but beside the
    # workers, as under `tailor serve`: they share the directory of its snapshot signal.
    with tempfile.TemporaryDirectory(prefix="tailor-signal.") as signals, \
            Served(url, learner=False, extra_env=(served_env := {
                **SERVICE_ENV, "TAILOR_SIGNAL_DIR": signals})) as served:
        api = Api(served.url, tenant)
        for env in envs:
            register(api, env.name, env.settings)
            if env.profiles:
                write_profiles(api, env.profiles)
        runs = []
        with learner_process(url, [env.name for env in envs], served_env):
            for env in envs:
                runs.append(_stream(api, env, concurrency))
        digits_env = next((env for env in envs if env.name == "digits"), None)
        throughput = None if digits_env is None else _backlog_drain(
            api, url, digits_env, backlog, concurrency)
    return runs, throughput


def _stream(api: Api, env: Environment, concurrency: int) -> ServiceRun:
    wait_active(api, env.name)
    began = time.perf_counter()
    rounds = run_stream(api, env.name, env, concurrency)
    elapsed = time.perf_counter() - began
    status = wait_learned(api, env.name, len(rounds))
    figures = log_figures(api, env.name)
    learned = status["all_time"]
    learned_total = learned["bandit_mean_reward"] * learned["bandit_decisions"]
    return ServiceRun(np.array([r.expected for r in rounds]), elapsed,
                      freshness(rounds, figures.learned_version), status, figures.late_rewards,
                      figures.reward_total - learned_total, lag(rounds, figures))


def _backlog_drain(api: Api, url: str, env: Environment, count: int,
                   concurrency: int) -> Throughput:
    """Decisions logged with no learner running, then one `tailor learn --once`."""
    backlog = Environment("throughput", env.contexts[:count], env.probabilities[:count])
    register(api, backlog.name)
    run_stream(api, backlog.name, backlog, concurrency)
    time.sleep(WINDOW_SECONDS + 0.5)
    decisions, seconds = drain_once(url, backlog.name)
    _, raw_rate = _raw_once(backlog, 0)
    return Throughput(decisions, seconds, raw_rate)


if __name__ == "__main__":
    main()
