"""What ships is what is tested: the wheel built from the committed tree (`git archive
HEAD`), installed (not editable) into a fresh virtual environment, is initialised and
served from an empty directory, learns, and answers a first session over HTTP; and
installing it pulls no dependency that runtime code does not use."""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from bench._servers import descendants, free_port
from tests.e2e.server import ROOT
from tests.integration.helpers import experiment_body

pytestmark = pytest.mark.e2e

PACKAGES = ("app", "bandits", "experiments")
# Dependencies that runtime code uses without an `import` statement, and where.
USED_WITHOUT_IMPORT = {
    "psycopg": ("app/db.py", "postgresql+psycopg://"),  # SQLAlchemy's driver for PostgreSQL
    "gunicorn": ("app/cli_serve.py", '"-m", "gunicorn"'),  # `tailor serve` runs it
}



def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                          timeout=kwargs.pop("timeout", 300), **kwargs)
    assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the fresh venv's bin/, the wheel) for the tree committed at HEAD."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing committed to build from")
    base = tmp_path_factory.mktemp("wheel")
    source, dist, venv = base / "source", base / "dist", base / "venv"
    source.mkdir()
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=ROOT,
                             capture_output=True, check=True, timeout=60).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True, timeout=60)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, source])
    wheel = next(dist.glob("tailor-*.whl"))
    # No pip inside and no byte-compiling of every file of every dependency (most of an
    # install's time): this venv's pip installs into it, and what runs compiles what it
    # imports, once (user_env allows writing the .pyc files).
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
         "--quiet", "--no-compile", wheel], timeout=600)
    return venv / "bin", wheel


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    """A user's environment: no DATABASE_URL (the default location), no path to this
    checkout, and a private per-user data directory."""
    env = {k: v for k, v in os.environ.items() if k not in {
        "DATABASE_URL", "PYTHONPATH", "PROMETHEUS_MULTIPROC_DIR", "VIRTUAL_ENV",
        "PYTHONDONTWRITEBYTECODE"}}
    return {**env, "XDG_DATA_HOME": str(tmp_path / "data")}


def test_the_installed_wheel_initialises_serves_and_learns_from_an_empty_directory(
        installed, user_env, tmp_path):
    bin_dir, wheel = installed
    empty = tmp_path / "empty"
    empty.mkdir()
    database = tmp_path / "data" / "tailor" / "tailor.db"

    def tailor(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([str(bin_dir / "tailor"), *args], cwd=empty, env=user_env,
                              capture_output=True, text=True, timeout=120)
        assert not check or done.returncode == 0, done.stderr
        return done

    version = wheel.name.split("-")[1]
    assert tailor("--version").stdout.strip() == f"tailor {version}"
    where = run([bin_dir / "python", "-c", "import app; print(app.__file__)"], cwd=empty,
                env=user_env).stdout
    assert where.startswith(str(bin_dir.parent))  # the installed copy, not this checkout
    before = tailor("keys", "list", "--team", "default", check=False)
    assert before.returncode == 2 and "run `tailor init`" in before.stderr
    assert "Traceback" not in before.stderr and not database.exists()
    keys = dict(re.findall(r"export (ADMIN|CLIENT)=(\S+)", tailor("init").stdout))
    assert database.exists() and set(keys) == {"ADMIN", "CLIENT"}
    serve_and_use(bin_dir, user_env, empty, keys)
    assert list(empty.iterdir()) == []  # nothing written to the directory it ran in


def serve_and_use(bin_dir: Path, env: dict[str, str], cwd: Path, keys: dict[str, str]):
    port = free_port()
    env = {**env, "TAILOR_LEARNER_GRACE_SECONDS": "0", "TAILOR_LEARNER_SNAPSHOT_SECONDS": "0.2",
           "TAILOR_MODEL_CHECK_SECONDS": "0.2"}
    server = subprocess.Popen([str(bin_dir / "tailor"), "serve", "--port", str(port),
                               "--workers", "1", "--threads", "2"], cwd=cwd, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: healthy(url), 60)
        first_session(url, keys)
        assert requests.get(f"{url}/static/tailor.css", timeout=10).ok  # package data
        assert "<form" in requests.get(f"{url}/login", timeout=10).text  # templates
        everything = descendants(server.pid)
        assert len(everything) >= 4  # tailor serve, gunicorn, its worker, the learner
    finally:
        os.killpg(server.pid, signal.SIGINT)  # Ctrl-C
        _, errors = server.communicate(timeout=60)
    assert server.returncode == 0, errors
    assert "Traceback" not in errors, errors
    assert f"Listening at: http://127.0.0.1:{port}" in errors


def healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=2).ok
    except requests.RequestException:
        return False


def wait_until(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail("timed out")


def first_session(url: str, keys: dict[str, str]) -> None:
    admin = {"Authorization": f"Bearer {keys['ADMIN']}"}
    client = {"Authorization": f"Bearer {keys['CLIENT']}"}
    body = experiment_body(reward={"events": {"click": 1.0}, "window_seconds": 0.5},
                           arms={"bandit": 1.0})
    created = requests.post(f"{url}/v1/experiments", json=body, headers=admin, timeout=30)
    assert created.status_code == 201, created.text
    for index in range(5):
        ranked = requests.post(f"{url}/v1/experiments/homepage-hero/rank", headers=client,
                               json={"context": {"user_id": f"u-{index}"}}, timeout=30)
        assert ranked.status_code == 200, ranked.text
        rewarded = requests.post(f"{url}/v1/events/{ranked.json()['event_id']}/rewards",
                                 json={"type": "click"}, headers=client, timeout=30)
        assert rewarded.status_code == 202, rewarded.text

    def learned() -> dict | None:
        status = requests.get(f"{url}/v1/experiments/homepage-hero/learning",
                              headers=admin, timeout=30).json()
        return status if status["examples_learned"] == 5 else None

    assert wait_until(learned, 30)["model_version"] >= 1  # the learner ran, VW included


def imported_modules(site_packages: Path) -> set[str]:
    """Top-level names of every module the installed packages import."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in (site_packages / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.split(".")[0])
    return found


DEPENDENCIES = """
import importlib.metadata as m, json, re, sysconfig
name = lambda text: re.sub(r"[-_.]+", "-", re.split(r"[\\[=<>!~; ]", text)[0].lower())
required = [name(r) for r in m.requires("tailor") if "extra ==" not in r]
modules = {}
for module, dists in m.packages_distributions().items():
    for dist in dists:
        modules.setdefault(name(dist), []).append(module)
installed = sorted({name(d.metadata["Name"]) for d in m.distributions()})
print(json.dumps({"required": required, "modules": modules, "installed": installed,
                  "site": sysconfig.get_paths()["purelib"]}))
"""


def test_every_dependency_of_the_wheel_is_used_by_runtime_code(installed):
    bin_dir, _ = installed
    found = json.loads(run([bin_dir / "python", "-c", DEPENDENCIES]).stdout)
    site = Path(found["site"])
    imported = imported_modules(site)
    unused = set()
    for dist in found["required"]:
        if dist in USED_WITHOUT_IMPORT:
            path, evidence = USED_WITHOUT_IMPORT[dist]
            assert evidence in (site / path).read_text(), (dist, path)
        elif not imported & set(found["modules"].get(dist, [])):
            unused.add(dist)
    assert unused == set(), f"nothing at runtime imports {unused}"
    # The test and development tools stay out of an install.
    assert {"pytest", "hypothesis", "requests", "scikit-learn", "ruff", "schemathesis",
            "playwright", "mypy"}.isdisjoint(found["installed"])
