"""`tailor import-log`, `export-log`, `candidates` and `ope`: logs in and out, and OPE."""

from __future__ import annotations

import getpass
import json
import sys
import time
from contextlib import contextmanager
from typing import Any

import click
import sqlalchemy as sa
from flask import current_app

from app import db
from app.cli_base import UserError, file_error, with_database
from experiments import audit, clock
from experiments.errors import DomainError, ValidationFailed
from experiments.logio import reader
from experiments.logio.export import export_dsjson
from experiments.logio.importer import ImportResult, import_records, pii_check
from experiments.logio.records import LineError
from experiments.models import Experiment, Team
from experiments.ope_report import build_report, parse_options, supplied
from experiments.ope_report.options import ESTIMATORS, INTERVALS

experiment_option = click.option("--experiment", "key", required=True, help="Experiment key.")
team_option = click.option("--team", default=None,
                           help="Team name (needed when several teams use the key).")


@contextmanager
def _session():
    """A session whose domain errors become a one-line CLI error (exit status 2)."""
    with current_app.extensions[db.EXTENSION]() as session:
        try:
            yield session
        except (DomainError, LineError) as exc:
            session.rollback()
            raise UserError(getattr(exc, "message", str(exc))) from None


def _experiment(session, key: str, team: str | None) -> Experiment:
    query = sa.select(Experiment).where(Experiment.key == key)
    if team is not None:
        query = query.join(Team, Team.id == Experiment.team_id).where(Team.name == team)
    found = list(session.scalars(query.limit(2)))
    if not found:
        raise UserError(f"no experiment {key!r}" + (f" in team {team!r}" if team else "")
                        + ": check the key (GET /v1/experiments lists them)")
    if len(found) > 1:
        raise UserError(f"several teams have an experiment {key!r}: pass --team")
    return found[0]


def _actor(experiment: Experiment) -> audit.Actor:
    """`cli:<operating-system user>`: who ran the command, for the audit log."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return audit.Actor(experiment.team_id, f"cli:{user}")


@click.command("import-log", help="Import logged decisions (JSON Lines or VW/Personalizer "
               "DSJson, plain or gzipped) into an experiment. Idempotent by event id; the "
               "file is checked first and nothing is imported if a line is invalid.")
@experiment_option
@team_option
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(reader.FORMATS), default="auto",
              show_default=True)
@click.option("--policy", default="imported", show_default=True,
              help="Name of the logging policy (stored with each decision).")
@click.option("--learn", is_flag=True, help="Let the online learner train on them "
              "(default: imported decisions are only evaluated).")
@click.option("--skip-invalid", is_flag=True, help="Import the valid lines, skip the rest.")
@click.option("--batch-size", type=click.IntRange(100, 100_000), default=5000,
              show_default=True, help="Decisions per transaction.")
@with_database()
def import_log(key: str, team: str | None, path: str, fmt: str, policy: str, learn: bool,
               skip_invalid: bool, batch_size: int) -> None:
    started = time.perf_counter()
    with _session() as session:
        experiment = _experiment(session, key, team)
        found = reader.scan(path, reader.resolve_format(path, fmt),
                            pii_check(session, experiment))
        _report_scan(found, skip_invalid)
        result = import_records(session, experiment, reader.read(path, found.format,
                                                                 found.invalid),
                                policy=policy, learn=learn, batch_size=batch_size,
                                progress=_import_progress(found.lines - len(found.invalid)))
        result.invalid = len(found.invalid)
        audit.record(session, _actor(experiment), "decisions.import", experiment.key,
                     {"file": str(path)[-200:], "format": found.format, **result.to_dict()})
        session.commit()
    seconds = time.perf_counter() - started
    click.echo(f"imported {result.inserted} decisions ({found.format}) in {seconds:.1f}s; "
               f"{result.existing} already logged, {result.not_activated} never activated, "
               f"{result.invalid} invalid skipped", err=True)


def _report_scan(found: reader.Scan, skip_invalid: bool) -> None:
    if not found.invalid:
        return
    for message in found.messages:
        click.echo(message, err=True)
    more = len(found.invalid) - len(found.messages)
    if more > 0:
        click.echo(f"... and {more} more invalid line(s)", err=True)
    if not skip_invalid:
        raise UserError(f"{len(found.invalid)} invalid line(s) of {found.lines}; "
                        "nothing imported (fix them, or pass --skip-invalid)")


def _import_progress(total: int):
    def show(result: ImportResult) -> None:
        click.echo(f"  {result.lines}/{total} lines: {result.inserted} new, "
                   f"{result.existing} already logged", err=True)

    return show


@click.command("export-log", help="Write the experiment's closed decisions as DSJson that "
               "VW reads (vw --cb_explore_adf --dsjson). PATH '-' writes to stdout.")
@experiment_option
@team_option
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--since", default=None, help="Only decisions logged at or after this "
              "ISO 8601 time.")
@with_database()
def export_log(key: str, team: str | None, path: str, since: str | None) -> None:
    start = _iso(since, "--since")
    with _session() as session:
        experiment = _experiment(session, key, team)
        if path == "-":
            written = export_dsjson(session, experiment, sys.stdout, since=start)
        else:
            try:
                out = open(path, "w", encoding="utf-8")
            except OSError as exc:
                raise file_error(path, exc) from None
            with out:
                written = export_dsjson(session, experiment, out, since=start)
        audit.record_access(session, _actor(experiment), "decisions.export", experiment.key,
                            {"file": str(path)[-200:], "format": "dsjson", "since": since,
                             "decisions": written})
    click.echo(f"exported {written} decisions", err=True)


def _iso(text: str | None, name: str) -> float | None:
    if text is None:
        return None
    try:
        return clock.parse_iso(text)
    except ValueError:
        raise click.BadParameter("must be an ISO 8601 date-time", param_hint=name) from None


@click.group("candidates", help="Candidate policies supplied as probabilities per logged "
             "decision (pmf:<name> in OPE reports).")
def candidates_group() -> None:
    pass


@candidates_group.command("add", help='Store a candidate from JSON Lines {"event_id": ..., '
                          '"pmf": {action_id: probability}} (plain or gzipped).')
@experiment_option
@team_option
@click.option("--name", required=True, help="Candidate name (report it as pmf:<name>).")
@click.option("--replace", is_flag=True, help="Overwrite a candidate of that name.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@with_database()
def candidates_add(key: str, team: str | None, name: str, replace: bool, path: str) -> None:
    with _session() as session:
        experiment = _experiment(session, key, team)
        info = supplied.add(session, experiment, name, path, replace=replace)
        audit.record(session, _actor(experiment), "candidate.add", experiment.key,
                     {"name": name, "decisions": info.decisions, "replace": replace})
        session.commit()
    click.echo(f"stored pmf:{name} for {info.decisions} decisions", err=True)


@candidates_group.command("list", help="The experiment's supplied candidates.")
@experiment_option
@team_option
@with_database()
def candidates_list(key: str, team: str | None) -> None:
    with _session() as session:
        for info in supplied.listing(session, _experiment(session, key, team)):
            click.echo(json.dumps(info.to_dict()))


@candidates_group.command("delete", help="Delete a supplied candidate and its pmfs.")
@experiment_option
@team_option
@click.option("--name", required=True)
@with_database()
def candidates_delete(key: str, team: str | None, name: str) -> None:
    with _session() as session:
        experiment = _experiment(session, key, team)
        supplied.remove(session, supplied.find(session, experiment, name))
        audit.record(session, _actor(experiment), "candidate.delete", experiment.key,
                     {"name": name})
        session.commit()
    click.echo(f"deleted pmf:{name}", err=True)


@click.command("ope", help="Off-policy evaluation of candidates against the champion "
               "(the report of GET /v1/experiments/KEY/reports/ope; stored).")
@experiment_option
@team_option
@click.option("--candidates", "names", multiple=True, help="Comma-separated: model:latest, "
              "model:N, uniform, fixed:ACTION, pmf:NAME, vw:PRESET,param=value...")
@click.option("--intervals", type=click.Choice(INTERVALS), default="analytic",
              show_default=True)
@click.option("--estimator", type=click.Choice(ESTIMATORS), default="dr", show_default=True,
              help="Estimator of the verdict.")
@click.option("--since", default=None, help="Only decisions logged at or after (ISO 8601).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@with_database()
def ope(key: str, team: str | None, names: tuple[str, ...], intervals: str, estimator: str,
        since: str | None, as_json: bool) -> None:
    args = {"intervals": intervals, "estimator": estimator, "since": since}
    with _session() as session:
        experiment = _experiment(session, key, team)
        try:
            options = parse_options(args, names)
        except ValidationFailed as exc:
            raise click.UsageError(exc.message) from None
        report = build_report(session, experiment, options, progress=_ope_progress())
    click.echo(json.dumps(report, indent=2) if as_json else render_table(report))


def _ope_progress():
    shown: dict[str, int] = {}

    def show(stage: str, done: int, total: int) -> None:
        tenth = 10 * done // total if total else 10
        if shown.get(stage, -1) < tenth:
            shown[stage] = tenth
            click.echo(f"  {stage}: {done}/{total} decisions", err=True)

    return show


def _fmt(entry: dict[str, Any], key: str = "value") -> str:
    value, low, high = entry.get(key), entry.get("ci_low"), entry.get("ci_high")
    if value is None:
        return "n/a"
    bounds = "" if low is None else f" [{low:.4g}, {high:.4g}]"
    return f"{value:.4g}{bounds}"


def render_table(report: dict[str, Any]) -> str:
    """The report for people: one line per policy."""
    champion = report["champion"]
    lines = [f"{report['experiment']}: {report['n_decisions']} decisions, report "
             f"{report['report_id']}, {report['intervals']} {report['level']:.0%} intervals",
             f"champion {champion['candidate']}: on its own traffic "
             f"{_fmt(champion['on_policy'])} (n={champion['on_policy']['n']})"]
    rows = [("champion " + champion["candidate"], champion), *report["candidates"].items()]
    for name, entry in rows:
        est = entry["estimators"]
        parts = [f"{e} {_fmt(est[e])}" for e in ("ips", "snips", "dm", "dr")]
        ess = entry.get("ess")
        lines.append(f"  {name}: " + "; ".join(parts) + f"; ess {ess or 0:.0f}")
        if "vs_champion" in entry:
            vs = entry["vs_champion"]
            lines.append(f"    vs champion ({vs['estimator']}): {_fmt(vs, 'diff')} -> "
                         f"{vs['verdict']}")
    check = report.get("ab_vs_ope") or {}
    if check.get("status") in ("ok", "unsupported", "insufficient_data"):
        lines.append(f"  bandit arm, randomized {_fmt(check['ab'])} vs off-policy "
                     f"({check['estimator']}) {_fmt(check['ope'])}: difference "
                     f"{_fmt(check['difference'], 'diff')} -> "
                     + ("DISAGREE" if check["disagree"] else check["status"]))
    lines += [f"warning {w['code']}: {w['message']}" for w in report["warnings"]]
    return "\n".join(lines)


COMMANDS = (import_log, export_log, candidates_group, ope)
