"""docs/personalizer-migration.md: every sample marked `<!-- sample: name -->` runs, in
order, against gunicorn serving a fresh SQLite database, with the environment the guide
sets up (TAILOR, ADMIN, then the keys its `keys` sample prints)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.db import make_engine
from app.migrate import upgrade
from experiments import keys
from tests.e2e.server import BIN, ROOT, Server

pytestmark = pytest.mark.e2e
GUIDE = ROOT / "docs" / "personalizer-migration.md"
SAMPLE = re.compile(r"<!-- sample: ([\w-]+) -->\n```(bash|python)\n(.*?)```", re.S)
ORDER = ["create-experiment", "keys", "rest", "python-new", "python-old", "python-admin",
         "vw-load", "move-logs"]


def samples() -> dict[str, tuple[str, str]]:
    return {name: (kind, code) for name, kind, code in SAMPLE.findall(GUIDE.read_text())}


def dsjson_lines(n: int = 5) -> str:
    """A Personalizer log export of n decisions (DSJson)."""
    lines = []
    for i in range(n):
        lines.append(json.dumps({
            "_label_cost": -1.0 if i % 2 else 0.0, "_label_probability": 0.8,
            "_label_Action": 2, "_labelIndex": 1, "Timestamp": f"2026-01-0{i + 1}T10:00:00Z",
            "Version": "1", "EventId": f"pz-{i}", "a": [2, 1], "p": [0.8, 0.2],
            "c": {"User": {"tier": "pro"}, "_multi": [{"_tag": "NewsArticle",
                                                       "type": "News"},
                                                      {"_tag": "SportsArticle",
                                                       "type": "Sports"}]}}))
    return "\n".join(lines) + "\n"


def run(kind: str, code: str, env: dict[str, str], cwd: Path) -> str:
    command = ["bash", "-euo", "pipefail", "-c", code] if kind == "bash" \
        else [sys.executable, "-c", code]
    done = subprocess.run(command, env=env, cwd=cwd, text=True, capture_output=True,
                          timeout=300)
    assert done.returncode == 0, f"{kind} sample failed:\n{code}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_every_sample_of_the_migration_guide_runs(tmp_path):
    found = samples()
    assert list(found) == ORDER  # a sample added to the guide must be added here too
    url = f"sqlite:///{tmp_path}/tailor.db"
    engine = make_engine(url)
    with Session(engine) as session:
        upgrade(session.get_bind())
        admin, _ = keys.create_key(session, keys.get_or_create_team(session, "default"),
                                   "admin")
        session.commit()
    engine.dispose()
    (tmp_path / "personalizer-log.json").write_text(dsjson_lines())
    server = Server(url, workers=1).start()
    env = {**os.environ, "TAILOR": server.url, "ADMIN": admin, "DATABASE_URL": url,
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    try:
        outputs = {}
        for name in ORDER:
            outputs[name] = run(*found[name], env, tmp_path)
            if name == "keys":
                client_key, admin_key = re.findall(r"tlr_\S+", outputs[name])
                env.update(TAILOR_KEY=client_key, TAILOR_ADMIN_KEY=admin_key)
    finally:
        server.stop()
    assert '"rewardActionId"' in outputs["rest"]
    assert outputs["python-new"].split()[0] in ("NewsArticle", "SportsArticle")
    assert "optimal: Online" in outputs["python-admin"]
    probabilities = eval(outputs["vw-load"].strip())  # noqa: S307 - VW's printed pmf
    assert len(probabilities) == 2
    exported = [json.loads(line) for line in
                (tmp_path / "tailor-log.json").read_text().splitlines()]
    # The imported decisions (the live ones' 600 s reward windows are still open).
    assert sorted(line["EventId"] for line in exported) == [f"pz-{i}" for i in range(5)]
