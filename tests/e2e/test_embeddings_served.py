"""The `embedding` kind served by gunicorn as `tailor serve` runs it: each worker embeds
the catalogs before it serves (app/gunicorn_hooks.py), and rank answers over HTTP."""

from __future__ import annotations

import pytest
import requests

from bandits import embeddings
from tests.e2e.server import Server

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    not embeddings.available(),
    reason="the embeddings extra is not installed (pip install -e '.[embeddings]')")]

ACTIONS = [{"id": "boots", "features": {"description": "Waterproof boots for trails"}},
           {"id": "novel", "features": {"description": "A novel about a seaside town"}}]


def test_workers_embed_the_catalogs_before_they_serve(database_url, cli):
    if not database_url.startswith("sqlite"):
        pytest.skip("two server starts cost ~25 s; the hook's one query is the same on "
                    "PostgreSQL, where tests/integration/test_embeddings_api.py runs it")
    admin = cli("keys", "create", "--team", "shop", "--scope", "admin")
    client = cli("keys", "create", "--team", "shop", "--scope", "client")
    first = Server(database_url, workers=1).start()
    try:
        created = requests.post(f"{first.url}/v1/experiments", timeout=30, json={
            "key": "semantic", "actions": ACTIONS,
            "feature_types": {"action.description": "embedding", "query": "embedding"}},
            headers={"Authorization": f"Bearer {admin}"})
        assert created.status_code == 201, created.text
    finally:
        first.stop()
    second = Server(database_url, workers=1).start()  # finds the catalog at start
    try:
        ranked = requests.post(f"{second.url}/v1/experiments/semantic/rank", timeout=30,
                               json={"context": {"query": "hiking gear"}},
                               headers={"Authorization": f"Bearer {client}"})
        assert ranked.status_code == 200, ranked.text
        assert "embedded 2 catalog texts" in second.log(), second.log()
    finally:
        second.stop()
