"""Where the CLI finds its database by default, and what `tailor serve` runs."""

from __future__ import annotations

from pathlib import Path

from app import config
from app.cli_serve import Layout, absolute_database_url, gunicorn_command

LAYOUT = Layout(host="127.0.0.1", port=8123, workers=4, threads=2, reuse_port=True,
                learner=True, learner_nice=10, access_log=False)


def test_in_a_checkout_the_database_is_the_checkouts_var_tailor_db():
    assert (config.CHECKOUT / "pyproject.toml").is_file()  # these tests run in one
    url = config.default_database_url({"XDG_DATA_HOME": "/elsewhere"})
    assert url == f"sqlite:///{config.CHECKOUT / 'var' / 'tailor.db'}"
    assert Path(url.removeprefix("sqlite:///")).is_absolute()


def test_installed_the_database_is_in_the_per_user_data_directory(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "CHECKOUT", tmp_path / "site-packages")  # no pyproject.toml
    assert config.default_database_url({"XDG_DATA_HOME": str(tmp_path / "data")}) == \
        f"sqlite:///{tmp_path / 'data' / 'tailor' / 'tailor.db'}"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config.default_database_url({}) == \
        f"sqlite:///{tmp_path / 'home' / '.local' / 'share' / 'tailor' / 'tailor.db'}"


def test_database_url_in_the_environment_wins(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    assert config.load()["DATABASE_URL"] == "postgresql://u@h/db"
    monkeypatch.delenv("DATABASE_URL")
    assert config.load()["DATABASE_URL"] == config.default_database_url()


def test_a_relative_sqlite_url_becomes_absolute_for_the_children(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_database_url("sqlite:///var/t.db") == f"sqlite:///{tmp_path}/var/t.db"
    assert absolute_database_url("sqlite:////abs/t.db") == "sqlite:////abs/t.db"
    assert absolute_database_url("postgresql://u:pw@h:5/db") == "postgresql://u:pw@h:5/db"


def test_gunicorn_runs_as_make_run_configures_it():
    command = gunicorn_command(LAYOUT)
    assert command[-1] == "app:create_app()"
    for flag in (["--bind", "127.0.0.1:8123"], ["--workers", "4"], ["--threads", "2"],
                 ["--worker-class", "gthread"], ["--config", "python:app.gunicorn_hooks"]):
        index = command.index(flag[0])
        assert command[index:index + 2] == flag
    assert {"--preload", "--reuse-port", "--no-control-socket"} <= set(command)
    assert "--access-logfile" not in command
    shared = gunicorn_command(Layout(**{**LAYOUT.__dict__, "reuse_port": False,
                                        "access_log": True}))
    assert "--reuse-port" not in shared and "--access-logfile" in shared


def test_an_ipv6_host_is_bound_and_shown_in_brackets():
    """gunicorn reads `::1:8123` as host `::1:8123` and no port ('' is not a valid port)."""
    layout = Layout(**{**LAYOUT.__dict__, "host": "::1"})
    command = gunicorn_command(layout)
    assert command[command.index("--bind") + 1] == "[::1]:8123"
    assert layout.url == "http://[::1]:8123"


def test_a_relative_xdg_data_home_is_ignored_as_the_spec_says(monkeypatch, tmp_path):
    """XDG Base Directory: a relative path in XDG_DATA_HOME is invalid and ignored. Resolved
    against the working directory, `tailor` would find another database in every directory."""
    monkeypatch.setattr(config, "CHECKOUT", tmp_path / "site-packages")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert config.default_database_url({"XDG_DATA_HOME": "data"}) == \
        f"sqlite:///{tmp_path / 'home' / '.local' / 'share' / 'tailor' / 'tailor.db'}"
