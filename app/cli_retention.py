"""`tailor retention`: enforce each experiment's log retention now (the learner also does
it with its periodic maintenance), and the maintenance callable the learner runs."""

from __future__ import annotations

from collections.abc import Callable

import click
from flask import Flask, current_app

from app import cli_partitions, db
from app.cli_base import with_database
from experiments import clock, retention


def maintenance(app: Flask) -> Callable[[], object]:
    """Partitions (PostgreSQL), per-experiment retention and expired profiles (both
    databases)."""
    partitions = cli_partitions.scheduled(app)
    factory = app.extensions[db.EXTENSION]

    def run() -> None:
        if partitions is not None:
            partitions()
        with factory() as session:
            retention.apply(session)
            retention.purge_profiles(session)

    return run


@click.command("retention", help="Delete decisions, rewards and held Personalizer events "
               "older than each experiment's log retention (service.log_retention_days; "
               "Personalizer's logRetentionDays), and unit profiles past their TTL.")
@with_database()
def retention_command() -> None:
    with current_app.extensions[db.EXTENSION]() as session:
        done = retention.apply(session)
        purged = retention.purge_profiles(session)
    for deleted in done:
        click.echo(f"{deleted.experiment}: before {clock.iso(deleted.cutoff)}: "
                   f"{deleted.decisions} decisions, {deleted.rewards} rewards, "
                   f"{deleted.pending} held events deleted")
    if not done:
        click.echo("nothing older than any experiment's retention")
    click.echo(f"{sum(purged.values())} expired profiles deleted")


def init_app(app: Flask) -> None:
    app.cli.add_command(retention_command)
