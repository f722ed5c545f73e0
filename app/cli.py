"""The `tailor` command line (a Flask CLI group)."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from app import db, migrate
from experiments import bootstrap, keys


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


@click.group("keys", help="API keys.")
def keys_group() -> None:
    pass


@keys_group.command("create", help="Create a key; prints the plain key once, nothing else.")
@click.option("--team", required=True, help="Team name (created if missing).")
@click.option("--scope", required=True, type=click.Choice(keys.SCOPES))
@click.option("--experiment", default=None, help="Default experiment (Personalizer API).")
@click.option("--name", default=None, help="A label for the key.")
@with_appcontext
def keys_create(team: str, scope: str, experiment: str | None, name: str | None) -> None:
    with _session() as session:
        plain, _ = keys.create_key(session, keys.get_or_create_team(session, team), scope,
                                   name=name, default_experiment=experiment)
        session.commit()
    click.echo(plain)


@keys_group.command("revoke", help="Revoke a key by its id (the part after tlr_).")
@click.option("--team", required=True)
@click.argument("key_id")
@with_appcontext
def keys_revoke(team: str, key_id: str) -> None:
    with _session() as session:
        keys.revoke_key(session, keys.get_or_create_team(session, team).id, key_id)
        session.commit()
    click.echo(f"revoked {key_id}", err=True)


def init_app(app: Flask) -> None:
    app.cli.add_command(db_group)
    app.cli.add_command(init)
    app.cli.add_command(keys_group)


def _create_app():
    from app import create_app

    return create_app()


def main() -> None:
    FlaskGroup(create_app=_create_app, add_default_commands=False,
               help="Tailor: contextual-bandit experimentation service.")()
