"""CLI manners: a user's mistake in any `tailor` command (a missing file, a bad line, an
unknown experiment, a database that is missing, not migrated or unreachable) answers one
`Error:` line saying what and how to fix it, exit status 2, and never a traceback.

The commands run through the real entry point (`app.cli.tailor`, as the `tailor` script
calls it), against a database of each backend (`DATABASE_URL`), with their own app."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from flask.cli import ScriptInfo

from app import cli, create_app, migrate
from app.db import dispose, make_engine
from tests.integration.helpers import register

EXPERIMENT = "homepage-hero"
BAD_JSONL = '{"event_id": "e1", "context": {}, "actions": ["a"], "chosen": "a", ' \
    '"propensity": 1}\n{not json\n'


def run(args: list[str], database_url: str, env: dict[str, str] | None = None) -> Result:
    """`tailor ARGS` with DATABASE_URL (and `env`) set; every app it built is disposed of
    after."""
    apps = []

    def make():
        apps.append(create_app())
        return apps[-1]

    result = CliRunner().invoke(cli.tailor, args, env={"DATABASE_URL": database_url, **(env or {})},
                                obj=ScriptInfo(create_app=make, set_debug_flag=False))
    for app in apps:
        dispose(app)
    return result


def assert_user_error(result: Result, fragment: str) -> None:
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "Traceback" not in result.output, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    assert len(errors) == 1 and fragment in errors[0], result.output


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "bad.jsonl").write_text(BAD_JSONL)
    (tmp_path / "binary.jsonl").write_bytes(b"\xff\xfe\x00garbage\n")
    (tmp_path / "fake.jsonl.gz").write_text("not gzip at all\n")
    (tmp_path / "bad-pmf.jsonl").write_text('{"event_id": "e1"}\n')
    (tmp_path / "good-pmf.jsonl").write_text('{"event_id": "e1", "pmf": {"hero-1": 1}}\n')
    return tmp_path


# Refused by the command line itself, before any database is opened:
# (arguments, a fragment of the one Error: line); {tmp} is a directory of test files.
USAGE_MISTAKES = [
    (["import-log", "--experiment", EXPERIMENT, "{tmp}/missing.jsonl"], "does not exist"),
    (["import-log", "--experiment", EXPERIMENT, "--format", "csv", "{tmp}/bad.jsonl"],
     "'csv' is not one of"),
    (["export-log", "--experiment", EXPERIMENT, "{tmp}"], "is a directory"),
    (["candidates", "add", "--experiment", EXPERIMENT, "--name", "c", "{tmp}/missing"],
     "does not exist"),
    (["keys", "create", "--team", "team-a", "--scope", "root"], "'root' is not one of"),
    (["learn", "--batch-size", "0"], "--batch-size"),
    (["partitions", "maintain", "--ahead", "-1"], "--ahead"),
    (["serve", "--workers", "0"], "--workers"),
    (["no-such-command"], "No such command 'no-such-command'"),
]

# Found out by the command, against the database (team-a, experiment homepage-hero).
MISTAKES = [
    (["import-log", "--experiment", EXPERIMENT, "{tmp}/bad.jsonl"],
     "invalid line(s) of 2; nothing imported (fix them, or pass --skip-invalid)"),
    (["import-log", "--experiment", EXPERIMENT, "{tmp}/binary.jsonl"], "UTF-8"),
    (["import-log", "--experiment", EXPERIMENT, "{tmp}/fake.jsonl.gz"], "nothing imported"),
    (["import-log", "--experiment", "nope", "{tmp}/bad.jsonl"], "no experiment 'nope'"),
    (["export-log", "--experiment", EXPERIMENT, "{tmp}/no-such-dir/out.dsjson"],
     "No such file or directory"),
    (["export-log", "--experiment", "nope", "-"], "no experiment 'nope'"),
    (["export-log", "--experiment", EXPERIMENT, "--since", "yesterday", "-"], "ISO 8601"),
    (["candidates", "add", "--experiment", EXPERIMENT, "--name", "c", "{tmp}/bad-pmf.jsonl"],
     "line 1"),
    (["candidates", "add", "--experiment", EXPERIMENT, "--name", "c",
      "{tmp}/good-pmf.jsonl"], "'e1' is not a decision"),
    (["candidates", "add", "--experiment", EXPERIMENT, "--name", "bad name!",
      "{tmp}/good-pmf.jsonl"], "name:"),
    (["candidates", "delete", "--experiment", EXPERIMENT, "--name", "never"],
     "no candidate 'never'"),
    (["candidates", "list", "--experiment", "nope"], "no experiment 'nope'"),
    (["ope", "--experiment", "nope"], "no experiment 'nope'"),
    (["ope", "--experiment", EXPERIMENT, "--candidates", "x:y"], "unknown candidate kind"),
    (["ope", "--experiment", EXPERIMENT, "--since", "soon"], "since"),
    (["keys", "create", "--team", "team-a", "--scope", "client", "--experiment", "nope"],
     "nope"),
    (["keys", "create", "--team", "team-a", "--scope", "client", "--rank-limit", "fast"],
     "--rank-limit"),
    (["keys", "list", "--team", "nobody"], "no team 'nobody'"),
    (["learn", "--once", "--experiment", "nope"], "no experiment 'nope'"),
    (["learn", "--once", "--experiment", EXPERIMENT, "--team", "nobody"], "no team 'nobody'"),
    (["learn", "--once", "--experiment", EXPERIMENT, "--experiment", "homepage-her"],
     "no experiment 'homepage-her'"),
    (["keys", "revoke", "--team", "team-a", "0000000000000000"], "0000000000000000"),
    (["keys", "rotate", "--team", "nobody", "0000000000000000"], "no team 'nobody'"),
]


@pytest.mark.parametrize(("args", "fragment"), USAGE_MISTAKES,
                         ids=[" ".join(a[:2]) for a, _ in USAGE_MISTAKES])
def test_a_usage_mistake_is_one_line_and_exit_status_2(args, fragment, files):
    result = run([a.replace("{tmp}", str(files)) for a in args],
                 f"sqlite:///{files}/absent.db")
    assert_user_error(result, fragment)


def test_a_mistake_is_one_line_and_exit_status_2(database_url, app, client, team, files):
    """Every row of MISTAKES, on each backend (one database for all: none changes it)."""
    register(client, team)
    for args, fragment in MISTAKES:
        result = run([a.replace("{tmp}", str(files)) for a in args], database_url)
        assert_user_error(result, fragment)


def test_serve_refuses_a_port_in_use(database_url, app):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = run(["serve", "--port", str(port)], database_url)
    assert_user_error(result, f"port {port} is in use")


@pytest.mark.parametrize("host", ["192.0.2.1", "999.1.1.1"])
def test_serve_says_why_it_cannot_listen_on_a_host(host, database_url, app):
    """An address this machine does not have, or not an address: not "port in use"."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run(["serve", "--host", host, "--port", str(port)], database_url)
    assert_user_error(result, f"cannot listen on {host}:{port}")
    assert "in use" not in result.output


def test_serve_reads_the_learners_settings_before_it_starts_anything(database_url, app):
    """A bad TAILOR_LEARNER_* value stopped the learner after gunicorn had started (and the
    error named `--grace-seconds`, a flag the user never gave)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run(["serve", "--port", str(port)], database_url,
                 env={"TAILOR_LEARNER_GRACE_SECONDS": "abc"})
    assert_user_error(result, "'TAILOR_LEARNER_GRACE_SECONDS'")
    assert "Tailor serving" not in result.output


def unreachable_postgresql() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    return f"postgresql://root:secret@127.0.0.1:{port}/tailor"


DATABASE_MISTAKES = [
    ("missing", ["keys", "list", "--team", "default"], "no database at"),
    ("missing", ["serve"], "run `tailor init` to create it"),
    ("missing", ["export-log", "--experiment", EXPERIMENT, "-"], "no database at"),
    ("empty", ["keys", "list", "--team", "default"], "has no Tailor schema: run `tailor init`"),
    ("empty", ["learn", "--once"], "has no Tailor schema"),
    ("unreachable", ["keys", "list", "--team", "default"], "cannot reach the database"),
    ("unreachable", ["init"], "is it running, and is DATABASE_URL right?"),
    ("not a url", ["keys", "list", "--team", "default"], "DATABASE_URL is not a database"),
    ("mysql", ["init"], "give a SQLite or PostgreSQL URL"),
    # init "succeeded" and printed keys of a database gone when it exited; serve then said
    # "run `tailor init`", forever.
    ("in memory", ["init"], "in-memory SQLite database"),
    ("in memory", ["serve"], "in-memory SQLite database"),
]


@pytest.mark.parametrize(("kind", "args", "fragment"), DATABASE_MISTAKES,
                         ids=[f"{k}: {a[0]}" for k, a, _ in DATABASE_MISTAKES])
def test_a_database_that_is_not_there_is_said_plainly(kind, args, fragment, tmp_path):
    url = {"missing": f"sqlite:///{tmp_path}/absent.db",
           "empty": f"sqlite:///{tmp_path}/empty.db",
           "unreachable": unreachable_postgresql(),
           "not a url": "tailor.db",
           "mysql": "mysql://root@127.0.0.1/tailor", "in memory": "sqlite://"}[kind]
    if kind == "empty":
        (tmp_path / "empty.db").touch()
    result = run(args, url)
    assert_user_error(result, fragment)
    assert "secret" not in result.output  # the password is not printed
    if kind == "missing":
        assert not (tmp_path / "absent.db").exists()  # not created empty


def test_version_and_help_are_tailors(tmp_path):
    version = run(["--version"], f"sqlite:///{tmp_path}/absent.db")
    assert version.exit_code == 0 and version.output.startswith("tailor ")
    assert "Flask" not in version.output and "Python" not in version.output
    shown = run(["--help"], f"sqlite:///{tmp_path}/absent.db")
    assert shown.exit_code == 0 and "--env-file" not in shown.output
    assert "--app" not in shown.output and "--debug" not in shown.output


def test_help_lists_every_command_of_the_app(tmp_path):
    """A command added to `app.cli` only would be missing from `tailor` (app/cli.py)."""
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/absent.db"})
    listed = run(["--help"], f"sqlite:///{tmp_path}/absent.db").output
    dispose(app)
    assert len(app.cli.commands) >= 10
    for name in app.cli.commands:
        assert f"  {name} " in listed, name


# A TAILOR_* setting with a value it cannot take (README, Configuration): one line naming
# the variable and what it takes, before anything is opened or made.
SETTING_MISTAKES = [
    ("TAILOR_MAX_ACTIONS", "lots", "a whole number"),
    ("TAILOR_MODEL_CHECK_SECONDS", "1s", "a number"),
    ("TAILOR_MODEL_CHECK_SECONDS", "nan", "at least 0"),
    ("TAILOR_STATEMENT_TIMEOUT_MS", "-5", "at least 0"),
    ("TAILOR_MAX_ACTIONS", "0", "at least 1"),
    ("TAILOR_DB_POOL_SIZE", "-1", "at least 1"),
    ("TAILOR_SESSION_COOKIE_SECURE", "ture", "true or false"),
    ("TAILOR_METRICS_PUBLIC", "flase", "true or false"),
    ("TAILOR_SQLITE_SYNCHRONOUS", "fast", "NORMAL"),
    ("TAILOR_RATE_LIMIT_RANK", "fast", "RATE or RATE/BURST"),
    ("TAILOR_RATE_LIMIT_REWARD", "10/0.5", "burst"),
]


@pytest.mark.parametrize(("name", "value", "fragment"), SETTING_MISTAKES,
                         ids=[name for name, _, _ in SETTING_MISTAKES])
@pytest.mark.parametrize("args", [["init"], ["keys", "list", "--team", "default"], ["serve"]],
                         ids=lambda args: args[0])
def test_a_setting_with_a_wrong_value_is_one_line_naming_it(name, value, fragment, args,
                                                             tmp_path):
    result = run(args, f"sqlite:///{tmp_path}/absent.db", env={name: value})
    assert_user_error(result, f"{name}={value!r}")
    assert fragment in result.output
    assert list(tmp_path.iterdir()) == []  # init made no database


def test_settings_take_every_spelling_of_true_and_false(tmp_path):
    for value in ("1", "true", "TRUE", "yes", "on", "0", "false", "No", "off", " true "):
        result = run(["keys", "list", "--team", "default"], f"sqlite:///{tmp_path}/a.db",
                     env={"TAILOR_METRICS_PUBLIC": value})
        assert_user_error(result, "no database at")  # got past the settings


# A file or directory where the database should be, and a data directory that cannot be
# made: said in one line, and nothing made (README, "Installed as a package").
PLACE_MISTAKES = [
    ("a text file", ["keys", "list", "--team", "default"], "is not a SQLite database"),
    ("a text file", ["init"], "is not a SQLite database"),
    ("a directory", ["keys", "list", "--team", "default"], "is a directory"),
    ("a directory", ["init"], "is a directory"),
    ("no parent", ["keys", "list", "--team", "default"], "no database at"),
    ("no parent", ["serve"], "no database at"),
    ("unmakeable parent", ["init"], "cannot create the directory /proc/tailor-data"),
]


@pytest.mark.parametrize(("kind", "args", "fragment"), PLACE_MISTAKES,
                         ids=[f"{k}: {a[0]}" for k, a, _ in PLACE_MISTAKES])
def test_a_database_path_that_cannot_be_a_database_is_said_plainly(kind, args, fragment,
                                                                   tmp_path):
    path = {"a text file": tmp_path / "notes.txt", "a directory": tmp_path,
            "no parent": tmp_path / "data" / "tailor.db",
            "unmakeable parent": Path("/proc/tailor-data/tailor.db")}[kind]
    if kind == "a text file":
        path.write_text("not a database\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(args, f"sqlite:///{path}")
    assert_user_error(result, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing made beside it
    if kind == "a text file":
        assert path.read_text() == "not a database\n"


def _set_revision(url: str, revision: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()


@pytest.mark.parametrize("args", [["init"], ["db", "upgrade"], ["keys", "list", "--team", "x"]],
                         ids=lambda args: " ".join(args[:2]))
def test_a_database_newer_than_this_tailor_is_refused_and_left_alone(args, database_url, app):
    """Going back to an older Tailor (a rollback) must not try to migrate the database."""
    engine = make_engine(database_url)
    current = migrate.current_revision(engine)
    engine.dispose()
    _set_revision(database_url, "0999")
    try:
        result = run(args, database_url)
        assert_user_error(result, "at revision 0999, which this Tailor")
        assert "upgrade Tailor" in result.output
        engine = make_engine(database_url)
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0999"
        engine.dispose()
    finally:  # the session's database is shared by the tests that follow
        _set_revision(database_url, current)


def test_init_refuses_a_database_that_holds_another_applications_tables(empty_url):
    """`init` on the wrong database (another application's, with a table named like one of
    Tailor's) says so and changes nothing, rather than failing half-way through the first
    migration (on SQLite, DDL is not transactional: half a schema would stay)."""
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE teams (name TEXT)"))
        conn.execute(sa.text("CREATE TABLE invoices (id INTEGER)"))
    before = set(sa.inspect(engine).get_table_names())
    result = run(["init"], empty_url)
    assert_user_error(result, "teams")
    assert "not Tailor's" in result.output
    assert set(sa.inspect(engine).get_table_names()) == before
    engine.dispose()
