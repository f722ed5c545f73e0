"""The `tailor` command line (a Flask CLI group)."""

from __future__ import annotations

import json
from contextlib import contextmanager

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from app import cli_learn, cli_ope, cli_partitions, cli_retention, db, migrate
from app.ratelimit import Limit
from experiments import audit, bootstrap, clock, keys
from experiments.errors import DomainError


def _session():
    return current_app.extensions[db.EXTENSION]()


@click.group("db", help="Database schema.")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Migrate the database to the newest schema.")
@with_appcontext
def db_upgrade() -> None:
    migrate.upgrade(db.engine_of(current_app))
    click.echo("database at revision " + ", ".join(migrate.heads()), err=True)


@click.command("init", help="Migrate, and on an empty database create the default team and "
               "print its first admin and client keys (once).")
@with_appcontext
def init() -> None:
    migrate.upgrade(db.engine_of(current_app))
    with _session() as session:
        created = bootstrap.first_run(session)
    if created:
        click.echo("\n".join([
            "", "=" * 72, "Tailor is set up: team 'default' was created.",
            "These keys are shown ONCE; store them now.", "",
            f"  ADMIN key  (manage experiments and keys): {created['admin']}",
            f"  CLIENT key (rank and reward):             {created['client']}",
            "=" * 72, ""]))


@click.group("keys", help="API keys: create, list, revoke, rotate (each one audited).")
def keys_group() -> None:
    pass


@contextmanager
def _keys_session():
    """A session whose domain errors become a one-line CLI error (exit status 1)."""
    with _session() as session:
        try:
            yield session
        except DomainError as exc:
            session.rollback()
            raise click.ClickException(exc.message) from None


def _cli_actor(team_id: int) -> audit.Actor:
    return audit.Actor(team_id, "cli")


@keys_group.command("create", help="Create a key; prints the plain key once, nothing else.")
@click.option("--team", required=True, help="Team name (created if missing).")
@click.option("--scope", required=True, type=click.Choice(keys.SCOPES))
@click.option("--experiment", default=None,
              help="Default experiment (Personalizer API); must exist in the team.")
@click.option("--name", default=None, help="A label for the key.")
@click.option("--rank-limit", default=None, help="Rank rate limit: RATE or RATE/BURST per s.")
@click.option("--reward-limit", default=None, help="Reward rate limit: RATE or RATE/BURST.")
@with_appcontext
def keys_create(team: str, scope: str, experiment: str | None, name: str | None,
                rank_limit: str | None, reward_limit: str | None) -> None:
    limits = _limits_option(rank_limit, reward_limit)
    with _keys_session() as session:
        row_team = keys.get_or_create_team(session, team)
        plain, row = keys.create_key(session, row_team, scope, name=name,
                                     default_experiment=experiment, rate_limits=limits)
        audit.record(session, _cli_actor(row_team.id), "key.create", row.key_id,
                     {"scope": scope})
        session.commit()
    click.echo(plain)


def _limits_option(rank: str | None, reward: str | None) -> dict | None:
    limits = {}
    for kind, spec in (("rank", rank), ("reward", reward)):
        if spec is None:
            continue
        try:
            limit = Limit.parse(spec)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=f"--{kind}-limit") from None
        limits[kind] = {"rate": limit.rate, "burst": limit.burst} if limit else {"rate": 0}
    return limits or None


@keys_group.command("list", help="List a team's keys (never their secrets).")
@click.option("--team", required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@with_appcontext
def keys_list(team: str, as_json: bool) -> None:
    with _keys_session() as session:
        rows = keys.list_keys(session, keys.find_team(session, team).id)
    for row in rows:
        item = {"key_id": row.key_id, "scope": row.scope, "name": row.name,
                "default_experiment": row.default_experiment,
                "created_at": clock.iso(row.created_at),
                "last_used_at": clock.iso(row.last_used_at),
                "revoked_at": clock.iso(row.revoked_at)}
        click.echo(json.dumps(item) if as_json else "  ".join(
            f"{k}={'-' if v is None else v}" for k, v in item.items()))


@keys_group.command("revoke", help="Revoke a key by its id (the part after tlr_).")
@click.option("--team", required=True)
@click.argument("key_id")
@with_appcontext
def keys_revoke(team: str, key_id: str) -> None:
    with _keys_session() as session:
        team_id = keys.find_team(session, team).id
        was_active = keys.get_key(session, team_id, key_id).revoked_at is None
        keys.revoke_key(session, team_id, key_id)
        if was_active:
            audit.record(session, _cli_actor(team_id), "key.revoke", key_id)
        session.commit()
    click.echo(f"revoked {key_id}", err=True)


@keys_group.command("rotate", help="Replace a key by a new one (same scope, name, default "
                    "experiment and limits); the old one is revoked. Prints the new key.")
@click.option("--team", required=True)
@click.argument("key_id")
@with_appcontext
def keys_rotate(team: str, key_id: str) -> None:
    with _keys_session() as session:
        team_id = keys.find_team(session, team).id
        plain, new, _ = keys.rotate_key(session, team_id, key_id)
        audit.record(session, _cli_actor(team_id), "key.rotate", key_id,
                     {"new_key_id": new.key_id})
        session.commit()
    click.echo(plain)
    click.echo(f"revoked {key_id}; new key id {new.key_id}", err=True)


def init_app(app: Flask) -> None:
    app.cli.add_command(db_group)
    app.cli.add_command(init)
    app.cli.add_command(keys_group)
    app.cli.add_command(cli_learn.learn)
    cli_ope.init_app(app)  # import-log, export-log, candidates, ope
    cli_partitions.init_app(app)
    cli_retention.init_app(app)


def _create_app():
    from app import create_app

    return create_app()


def main() -> None:
    FlaskGroup(create_app=_create_app, add_default_commands=False,
               help="Tailor: contextual-bandit experimentation service.")()
