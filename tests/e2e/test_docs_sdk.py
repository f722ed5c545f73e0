"""The SDK's README sample (sdk/python/README.md) and docs/sdk.md's run as written against
gunicorn, on the experiment the README's first session registers (its JSON, extracted)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import requests

from bench._servers import count_rows, create_tenant
from tests.e2e.server import ROOT, Server

pytestmark = pytest.mark.e2e


def readme_experiment() -> dict:
    """The body of the README's `# register an experiment` curl."""
    text = (ROOT / "README.md").read_text()
    command = text[text.index("# register an experiment"):]
    return json.loads(re.search(r"-d '(.*?)'", command, re.S).group(1))


def python_block(path, heading: str) -> str:
    text = (ROOT / path).read_text()
    return re.search(r"```python\n(.*?)```", text[text.index(heading):], re.S).group(1)


@pytest.fixture
def served(sqlite_template, tmp_path):
    path = tmp_path / "tailor.db"
    shutil.copy(sqlite_template, path)
    server = Server(f"sqlite:///{path}", workers=1).start()
    tenant = create_tenant(server.database_url, "default")
    made = requests.post(f"{server.url}/v1/experiments", json=readme_experiment(),
                         headers={"Authorization": f"Bearer {tenant.admin}"}, timeout=10)
    assert made.status_code == 201, made.text
    yield server, tenant
    server.stop()


@pytest.mark.parametrize("path, heading, decisions, rewards", [
    ("sdk/python/README.md", "## Use", 2, 2),
    ("docs/sdk.md", "# Python SDK", 1, 1),
])
def test_the_sdk_sample_runs_as_written(served, path, heading, decisions, rewards):
    server, tenant = served
    env = {**os.environ, "TAILOR": server.url, "CLIENT": tenant.client,
           "PYTHONPATH": str(ROOT / "sdk" / "python")}
    run = subprocess.run([sys.executable, "-c", python_block(path, heading)], env=env,
                         cwd=ROOT, text=True, capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert re.match(r"hero-[123]\b", run.stdout), run.stdout
    assert count_rows(server.database_url, "decisions") == decisions
    assert count_rows(server.database_url, "reward_events") == rewards
