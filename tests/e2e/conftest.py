"""End-to-end fixtures: a migrated database of each backend and a gunicorn serving it."""

from __future__ import annotations

import pytest

from tests.e2e.server import Server, tailor


@pytest.fixture
def live_server(database_url):
    """gunicorn (2 gthread workers) on a free port, serving a migrated, empty database."""
    server = Server(database_url).start()
    yield server
    server.stop()


@pytest.fixture
def cli(database_url):
    return lambda *args: tailor(database_url, *args)
