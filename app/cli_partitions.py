"""`tailor partitions`: time partitions of decisions and reward events (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import click
import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.exc import OperationalError

from app import db
from app.cli_base import with_database
from experiments import clock, partitioning
from experiments.partitions import TABLES

ONLY_POSTGRESQL = "partitioning applies to PostgreSQL only; nothing to do on {}"


def settings(config: Mapping[str, Any], ahead: int | None = None,
             retention_days: int | None = None) -> partitioning.Settings:
    """From TAILOR_PARTITION_* (app config), the options overriding them; a retention of
    0 days means none."""
    retention = config["PARTITION_RETENTION_DAYS"] if retention_days is None \
        else retention_days
    return partitioning.Settings(
        period_days=config["PARTITION_PERIOD_DAYS"],
        ahead_days=config["PARTITION_AHEAD_DAYS"] if ahead is None else ahead,
        retention_days=retention or None)


def scheduled(app: Flask) -> Callable[[], object] | None:
    """The maintenance the learner loop runs periodically; None where there is nothing
    to maintain (SQLite)."""
    engine = db.engine_of(app)
    if engine.dialect.name != "postgresql":
        return None
    configured = settings(app.config)
    return lambda: partitioning.maintain(engine, configured)


@click.group("partitions", help="Time partitions of decisions and reward events "
             "(PostgreSQL; the learner also maintains them hourly).")
def partitions_group() -> None:
    pass


def _postgresql() -> sa.Engine | None:
    engine = db.engine_of(current_app)
    if engine.dialect.name == "postgresql":
        return engine
    click.echo(ONLY_POSTGRESQL.format(engine.dialect.name), err=True)
    return None


@partitions_group.command("maintain", help="Create partitions ahead (idempotent), move "
                          "rows out of the DEFAULT partitions into their new partitions "
                          "and, only with a retention, drop partitions entirely older than "
                          "it together with their idempotency keys.")
@click.option("--ahead", type=click.IntRange(0), default=None, metavar="DAYS",
              help="Days of partitions to have ahead [default: TAILOR_PARTITION_AHEAD_DAYS].")
@click.option("--retention-days", type=click.IntRange(0), default=None, metavar="N",
              help="Drop data older than N days; 0 keeps everything "
              "[default: TAILOR_PARTITION_RETENTION_DAYS, 0].")
@with_database()
def maintain(ahead: int | None, retention_days: int | None) -> None:
    engine = _postgresql()
    if engine is None:
        return
    try:
        report = partitioning.maintain(engine, settings(current_app.config, ahead,
                                                        retention_days))
    except OperationalError as exc:  # e.g. the lock timeout behind a long query
        raise click.ClickException(f"maintenance stopped, run it again: {exc.orig}") from None
    click.echo(f"created {len(report.created)} partition(s), moved {report.moved_rows} "
               f"row(s) out of default partitions, dropped {len(report.dropped)} "
               f"partition(s) ({report.deleted_rows} row(s), {report.deleted_keys} key(s))",
               err=True)
    for name in report.created:
        click.echo(f"created {name}")
    for name in report.dropped:
        click.echo(f"dropped {name}")


@partitions_group.command("list", help="Every partition: its range (UTC) and estimated rows.")
@with_database()
def list_partitions() -> None:
    engine = _postgresql()
    if engine is None:
        return
    with engine.connect() as connection:
        for table in TABLES:
            for found in partitioning.partitions(connection, table.name):
                span = "DEFAULT" if found.span is None else \
                    f"{clock.iso(found.span.start)} {clock.iso(found.span.end)}"
                click.echo(f"{table.name}  {found.name}  {span}  ~{found.estimated_rows}")
