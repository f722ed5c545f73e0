"""The `tailor` command line: its own click group (not Flask's), whose commands load the
app and check its database themselves (app/cli_base.py)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from importlib import metadata

import click
from flask import Flask, current_app
from flask.cli import ScriptInfo

from app import cli_demo, cli_learn, cli_ope, cli_partitions, cli_retention, cli_serve, db, migrate
from app.cli_base import UserError, shown_url, with_database
from app.ratelimit import Limit
from experiments import audit, bootstrap, clock, keys
from experiments.errors import DomainError


def _session():
    return current_app.extensions[db.EXTENSION]()


@click.group("db", help="Database schema.")
def db_group() -> None:
    pass


def _upgrade() -> None:
    engine = db.engine_of(current_app)
    migrate.upgrade(engine)
    click.echo(f"database {shown_url(engine.url)} at revision "
               + ", ".join(migrate.heads()), err=True)


@db_group.command("upgrade", help="Migrate the database to the newest schema.")
@with_database(migrated=False)
def db_upgrade() -> None:
    _upgrade()


@click.command("init", help="Create or migrate the database (DATABASE_URL, or the default "
               "location), and on an empty one create the team 'default' and print its "
               "first admin and client keys (once).")
@with_database(migrated=False)
def init() -> None:
    _upgrade()
    with _session() as session:
        created = bootstrap.first_run(session)
    if created:
        click.echo("\n".join([
            "", "=" * 72, "Tailor is set up: team 'default' was created.",
            "These keys are shown ONCE; store them now. In the shell where you call Tailor",
            "(README, A first session):", "",
            f"  export ADMIN={created['admin']}   # manage experiments and keys",
            f"  export CLIENT={created['client']}   # rank and reward",
            "=" * 72, ""]))


@click.group("keys", help="API keys: create, list, revoke, rotate (each one audited).")
def keys_group() -> None:
    pass


@contextmanager
def _keys_session():
    """A session whose domain errors become a one-line CLI error (exit status 2)."""
    with _session() as session:
        try:
            yield session
        except DomainError as exc:
            session.rollback()
            raise UserError(exc.message) from None


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
@with_database()
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
@with_database()
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
@with_database()
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
@with_database()
def keys_rotate(team: str, key_id: str) -> None:
    with _keys_session() as session:
        team_id = keys.find_team(session, team).id
        plain, new, _ = keys.rotate_key(session, team_id, key_id)
        audit.record(session, _cli_actor(team_id), "key.rotate", key_id,
                     {"new_key_id": new.key_id})
        session.commit()
    click.echo(plain)
    click.echo(f"revoked {key_id}; new key id {new.key_id}", err=True)


def commands() -> list[click.Command]:
    """Every `tailor` command (`tailor --help` lists these; a new command goes here)."""
    return [init, cli_serve.serve, db_group, keys_group, cli_learn.learn, *cli_ope.COMMANDS,
            cli_partitions.partitions_group, cli_demo.demo,
            cli_retention.retention_command]


def init_app(app: Flask) -> None:
    """The same commands on `app.cli`, for Flask's test CLI runner."""
    for command in commands():
        app.cli.add_command(command)


def _create_app():
    from app import create_app

    return create_app()


def _version() -> str:
    try:
        return metadata.version("tailor")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


@click.group("tailor", context_settings={"help_option_names": ["-h", "--help"]},
             help="Tailor: contextual-bandit experimentation service. The database is "
             "DATABASE_URL, or by default var/tailor.db in a source checkout and "
             "~/.local/share/tailor/tailor.db ($XDG_DATA_HOME) for an installed Tailor.")
@click.version_option(_version(), "--version", "-V", prog_name="tailor",
                      message="%(prog)s %(version)s")
def tailor() -> None:
    pass


for _command in commands():
    tailor.add_command(_command)


def main() -> None:
    tailor(obj=ScriptInfo(create_app=_create_app, set_debug_flag=False),
           prog_name="tailor")
