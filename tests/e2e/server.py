"""Start and stop real gunicorn servers (and CLI commands) for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tailor(database_url: str, *args: str) -> str:
    """Run the `tailor` CLI against a database; its stdout."""
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run([str(BIN / "tailor"), *args], env=env, cwd=ROOT, text=True,
                          capture_output=True, timeout=120, check=True)
    return done.stdout.strip()


@dataclass
class Server:
    database_url: str
    workers: int = 2
    threads: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    _log: object = field(default_factory=lambda: tempfile.TemporaryFile("w+"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Server:
        env = {**os.environ, "DATABASE_URL": self.database_url, **self.extra_env}
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers",
             str(self.workers), "--threads", str(self.threads), "--worker-class", "gthread",
             "wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=self._log, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log()}")
            try:
                if requests.get(self.url + "/healthz", timeout=5).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not become healthy")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def log(self) -> str:
        """What gunicorn and the app wrote to stderr so far."""
        self._log.seek(0)
        return self._log.read()
