"""`tailor learn`: the online learner process (beside gunicorn in `make run`)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

import click
import sqlalchemy as sa
from flask import current_app

from app import cli_retention, db, snapshot_signal
from app.cli_base import UserError, with_database
from experiments.keys import find_team
from experiments.learning.learner import LearnerSettings
from experiments.learning.loop import LearnerLoop, Selection
from experiments.models import Experiment, Team

FORCE_AFTER_SECONDS = 2.0  # a second signal this long after the first forces an exit


def _setting(name: str, kind: type, default: Any, help_text: str):
    """An option read from --flag, TAILOR_LEARNER_<NAME>, app config LEARNER_<NAME>."""
    flag = "--" + name.replace("_", "-")
    env = f"TAILOR_LEARNER_{name.upper()}"
    return click.option(flag, name, type=kind, default=None, envvar=env, show_envvar=True,
                        help=f"{help_text} [default: {default}]")


def _settings(options: dict[str, Any]) -> LearnerSettings:
    defaults = LearnerSettings()
    values = {}
    for name in LearnerSettings.__dataclass_fields__:
        value = options.get(name)
        if value is None:
            value = current_app.config.get(f"LEARNER_{name.upper()}", getattr(defaults, name))
        values[name] = value
    return LearnerSettings(**values)


def check_environment() -> None:
    """Read the learner's TAILOR_LEARNER_* settings now, as `tailor learn` will: `tailor
    serve` calls it so that a bad one stops it before gunicorn starts, not the learner after."""
    try:
        learn.make_context("tailor learn", [])
    except click.BadParameter as exc:
        raise UserError(exc.format_message()) from None


def _check_selection(selection: Selection) -> None:
    """A mistyped --experiment or --team is an error, not a learner that learns nothing."""
    with current_app.extensions[db.EXTENSION]() as session:
        query = sa.select(Experiment.key).join(Team, Team.id == Experiment.team_id)
        if selection.team is not None:
            find_team(session, selection.team)
            query = query.where(Team.name == selection.team)
        known = set(session.scalars(query.where(Experiment.key.in_(selection.keys))))
    for key in selection.keys:
        if key not in known:
            in_team = f" in team {selection.team!r}" if selection.team else ""
            raise UserError(f"no experiment {key!r}{in_team}: check the key "
                            "(GET /v1/experiments lists them)")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    first: list[float] = []

    def handle(signum: int, _frame: Any) -> None:
        if first and time.monotonic() - first[0] > FORCE_AFTER_SECONDS:
            raise SystemExit(1)  # asked twice: stop now; uncommitted work is re-learned
        first.append(time.monotonic())
        logging.getLogger("tailor.learner").info("signal %s: finishing the batch", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


@click.command("learn", help="Run the online learner: learn from decisions whose reward "
               "window closed and publish model snapshots. Stops cleanly on SIGTERM/SIGINT.")
@click.option("--experiment", "keys", multiple=True, help="Only this experiment key "
              "(repeatable; default: every running or paused experiment).")
@click.option("--team", default=None, help="Only experiments of this team.")
@click.option("--once", is_flag=True, help="Learn what is closed now, snapshot, and exit.")
@_setting("snapshot_examples", click.IntRange(1), 1000, "Snapshot every N examples...")
@_setting("snapshot_seconds", click.FloatRange(0), 1.0, "...or T seconds after the first "
          "example not yet in a snapshot.")
@_setting("snapshot_fraction", click.FloatRange(0, 1), 0.05, "...or, once caught up, "
          "when the examples pending are this share of all the model learned (a young "
          "model is published after every round; 0: off).")
@_setting("grace_seconds", click.FloatRange(0), 0.5, "Learn decisions closed at least this "
          "long ago (tolerates commit delays).")
@_setting("batch_size", click.IntRange(1, 100000), 500, "Decisions read per query.")
@_setting("lease_seconds", click.FloatRange(0.1), 15.0, "Lease length; a crashed learner's "
          "experiments are taken over after it.")
@_setting("keep_snapshots", click.IntRange(0), 100, "Newest learner snapshots kept (plus one "
          "per hour, imports and referenced ones); 0 keeps all.")
@_setting("window", click.IntRange(10), 5000, "Decisions in the progressive-validation window.")
@_setting("pace_seconds", click.FloatRange(0.001, 0.1), 0.05, "While decisions close in a "
          "stream, take them this many seconds at a time (fewer rounds, less CPU; a "
          "decision waits at most this much longer).")
@with_database()
def learn(keys: tuple[str, ...], team: str | None, once: bool, **options: Any) -> None:
    settings = _settings(options)
    selection = Selection(tuple(keys), team)
    _check_selection(selection)
    factory = current_app.extensions[db.EXTENSION]
    # Partitions are kept ahead, and each experiment's log retention enforced, by the
    # learner too, so a plain `make run` needs no cron.
    signal_dir = os.environ.get(snapshot_signal.ENV)  # set by `tailor serve`
    loop = LearnerLoop(factory, settings, selection,
                       maintenance=cli_retention.maintenance(current_app),
                       maintenance_seconds=current_app.config["PARTITION_MAINTAIN_SECONDS"],
                       on_publish=lambda: snapshot_signal.notify(signal_dir))
    if once:
        report = loop.drain()
        rate = report.processed / report.seconds if report.seconds > 0 else 0.0
        click.echo(f"learned {report.processed} decisions of {report.experiments} "
                   f"experiment(s) in {report.seconds:.2f}s ({rate:.0f}/s)", err=True)
        if report.busy:
            click.echo("held by another learner: " + ", ".join(report.busy), err=True)
        return
    loop.run(_stop_on_signals())
