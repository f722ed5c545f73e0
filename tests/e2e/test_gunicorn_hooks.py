"""gunicorn loads app/gunicorn_hooks.py as `tailor serve` passes it, and its workers start
with the preloaded heap frozen (no 40 ms full collections over it, app/gunicorn_hooks.py)."""

from __future__ import annotations

import subprocess
import time

import pytest
import requests

from bench._servers import free_port
from tests.e2e.server import BIN, ROOT

pytestmark = pytest.mark.e2e


def test_workers_start_with_the_preloaded_heap_frozen():
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "--config", "python:app.gunicorn_hooks", "--bind",
         f"127.0.0.1:{port}", "--workers", "2", "--preload", "tests.e2e.frozen_app:app"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, answer = time.monotonic() + 30, None
        while answer is None and time.monotonic() < deadline:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or a busy host
                time.sleep(0.1)
        assert answer is not None and answer.ok
        # The master imported gunicorn and the app: thousands of objects, all frozen.
        assert int(answer.text) > 10_000
    finally:
        process.terminate()
        process.wait(20)
