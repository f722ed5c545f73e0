"""docs/ope.md runs as written: its tour's shell blocks, extracted from the page, run with
bash against gunicorn from the repository root (the shipped data/obd sample), and every
number the page says they print is in what they print."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.e2e.server import BIN, ROOT, Server

pytestmark = pytest.mark.e2e
DOC = ROOT / "docs" / "ope.md"


def tour() -> tuple[list[str], str]:
    """The tour section's ```bash blocks, and the text of its "prints (abridged)" block."""
    text = DOC.read_text()
    section = text[text.index("## The five-minute tour"):]
    section = section[:section.index("\n## ", 5)]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    printed = re.search(r"prints \(abridged\):\n\n```\n(.*?)```", section, re.S).group(1)
    return blocks, printed


def claims(printed: str) -> list[str]:
    """Each `; `-separated piece of the printed lines that carries no `...` elision."""
    pieces = [piece.strip() for line in printed.splitlines() for piece in line.split("; ")]
    return [p for p in pieces if p and "..." not in p]


@pytest.fixture
def served(sqlite_template, tmp_path):
    path = tmp_path / "tailor.db"
    shutil.copy(sqlite_template, path)
    server = Server(f"sqlite:///{path}").start()
    yield server
    server.stop()


def test_the_ope_tour_runs_as_written(served):
    blocks, printed = tour()
    assert len(blocks) == 2, "the tour has its commands and the JSON request"
    env = {**os.environ, "DATABASE_URL": served.database_url,
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PORT": str(served.port)}
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(blocks)], cwd=ROOT,
                         env=env, text=True, capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    output = run.stdout
    for claim in claims(printed):
        assert claim in output, f"docs/ope.md says {claim!r}; the tour printed:\n{output}"
    report = json.loads(output[output.rindex('{"experiment"'):])
    assert report["n_decisions"] == 10000 and "pmf:greedy" in report["candidates"]
