"""The README's first session, run as written (its first `sh` block, as a bash script with
`set -euo pipefail`), against `make run` started as a user starts it, with the keys that
`make run` printed and the port it served on; then Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from bench._servers import descendants, free_port
from tests.e2e.server import ROOT

pytestmark = pytest.mark.e2e


def first_session_script() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## A first session"):]
    return re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)


def make_run(port: int, database_url: str, log) -> subprocess.Popen:
    """`make run` with this test's venv (not reinstalled) on `port`."""
    venv = Path(sys.executable).parent.parent
    env = {**os.environ, "DATABASE_URL": database_url}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return subprocess.Popen(
        ["make", "--no-print-directory", "-o", f"{venv}/.installed-run", "run",
         f"VENV={venv}", f"PORT={port}", "WORKERS=2", "THREADS=2"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(url: str, process: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(f"{url}/healthz", timeout=2).ok:
                return
        except requests.RequestException:
            time.sleep(0.2)
    log.seek(0)
    pytest.fail(f"make run did not serve: {log.read()}")


def test_the_readme_first_session_runs_against_make_run(tmp_path):
    port = free_port()
    log = tempfile.TemporaryFile("w+")
    server = make_run(port, f"sqlite:///{tmp_path}/tailor.db", log)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server, log)
        log.seek(0)
        printed = log.read()
        keys = dict(re.findall(r"^\s*export (ADMIN|CLIENT)=(\S+)", printed, re.MULTILINE))
        assert set(keys) == {"ADMIN", "CLIENT"}, printed
        env = {**os.environ, **keys, "PORT": str(port)}
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", first_session_script()],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        logged = json.loads(done.stdout[done.stdout.rindex('{"decisions"'):])
        decision = logged["decisions"][0]
        assert decision["event_id"] == "evt-0001" and decision["reward"] == 50.0
        everything = descendants(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGINT)  # Ctrl-C in make run's terminal
        server.wait(60)
    deadline = time.monotonic() + 10
    while [p for p in everything if Path(f"/proc/{p}").exists()] and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in everything if Path(f"/proc/{p}").exists()]
    log.seek(0)
    printed = log.read()
    log.close()
    assert "Traceback" not in printed, printed
