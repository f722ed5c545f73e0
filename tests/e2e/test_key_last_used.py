"""Through `tailor serve`: a key's use is recorded in its worker, not written on the
request path, and a worker that stops normally writes it (app/gunicorn_hooks.worker_exit,
experiments/last_used.py), long before the 60 s interval."""

from __future__ import annotations

import pytest
import requests
import sqlalchemy as sa

from app.db import make_engine
from bench._servers import Served, create_tenant, sqlite_database

pytestmark = pytest.mark.e2e


def last_use(url: str, plain: str) -> float | None:
    engine = make_engine(url)
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT last_used_at FROM api_keys WHERE key_id = :k"),
                             {"k": plain.split("_")[1]}).scalar_one()
    engine.dispose()
    return found


def test_a_stopping_worker_writes_the_uses_it_recorded():
    with sqlite_database() as url:
        tenant = create_tenant(url)
        server = Served(url, workers=1, threads=2).start()
        try:
            answer = requests.get(server.url + "/v1/experiments", timeout=30,
                                  headers={"Authorization": f"Bearer {tenant.analyst}"})
            assert answer.status_code == 200
            assert last_use(url, tenant.analyst) is None  # recorded, not written (60 s)
        finally:
            server.stop()
        assert server.process is not None and server.process.returncode == 0
        assert last_use(url, tenant.analyst) is not None
        assert last_use(url, tenant.admin) is None  # never used
