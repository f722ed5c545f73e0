"""Start and stop real gunicorn servers (and CLI commands) for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._servers import Served, free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tailor(database_url: str, *args: str) -> str:
    """Run the `tailor` CLI against a database; its stdout."""
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run([str(BIN / "tailor"), *args], env=env, cwd=ROOT, text=True,
                          capture_output=True, timeout=120, check=True)
    return done.stdout.strip()


@dataclass
class Server(Served):
    """gunicorn exactly as `make run` starts it (`tailor serve`: gthread, --preload,
    metrics shared by the workers; no learner unless `learner=True`), its stderr kept for
    `log()`."""

    port: int = field(default_factory=free_port)
    _log: Any = field(default_factory=lambda: tempfile.TemporaryFile("w+"))

    def start(self, timeout: float = 30.0) -> Server:
        self.stderr = self._log
        try:
            super().start(timeout)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {self.log()}") from None
        return self

    def stop(self) -> None:
        super().stop()
        self._log.close()

    def log(self) -> str:
        """What `tailor serve`, gunicorn and the app wrote to stderr so far."""
        self._log.seek(0)
        return self._log.read()
