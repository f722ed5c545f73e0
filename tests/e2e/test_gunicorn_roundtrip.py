"""register → rank → reward over real HTTP against gunicorn, then read the decision row."""

import math

import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from app.db import make_engine
from tests.integration.helpers import experiment_body


def test_register_rank_reward_over_http(live_server, cli, database_url):
    admin = cli("keys", "create", "--team", "shop", "--scope", "admin")
    client = cli("keys", "create", "--team", "shop", "--scope", "client")
    assert admin.startswith("tlr_") and "\n" not in admin
    url = live_server.url

    created = requests.post(f"{url}/v1/experiments", json=experiment_body(),
                            headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    assert created.status_code == 201, created.text
    ranked = requests.post(f"{url}/v1/experiments/homepage-hero/rank",
                           json={"context": {"user_id": "u-7", "hour": 9}},
                           headers={"Authorization": f"Bearer {client}"}, timeout=10)
    assert ranked.status_code == 200, ranked.text
    answer = ranked.json()
    rewarded = requests.post(f"{url}/v1/events/{answer['event_id']}/rewards",
                             json={"type": "purchase", "value": 49.0, "idempotency_key": "o-1"},
                             headers={"Authorization": f"Bearer {client}"}, timeout=10)
    assert rewarded.status_code == 202, rewarded.text

    engine = make_engine(database_url)
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT pmf, propensity, chosen_index, action_id, reward FROM decisions "
            "WHERE event_id = :e"), {"e": answer["event_id"]}).one()
    engine.dispose()
    pmf = row.pmf if isinstance(row.pmf, list) else __import__("json").loads(row.pmf)
    assert math.isclose(sum(pmf), 1.0, abs_tol=1e-9)
    assert row.propensity == answer["probability"] == pmf[row.chosen_index]
    assert row.action_id == answer["action_id"]
    assert row.reward == 49.0

    # More ranks, each on a new connection so both workers serve some: one scrape of
    # /metrics adds up every worker's counters (`tailor serve`'s PROMETHEUS_MULTIPROC_DIR).
    for i in range(19):
        assert requests.post(f"{url}/v1/experiments/homepage-hero/rank",
                             json={"context": {"user_id": f"u-{i}"}},
                             headers={"Authorization": f"Bearer {client}",
                                      "Connection": "close"}, timeout=10).ok
    families = text_string_to_metric_families(requests.get(f"{url}/metrics", timeout=10).text)
    decisions = sum(s.value for f in families for s in f.samples
                    if s.name == "tailor_decisions_total")
    assert decisions == 20


def test_errors_over_http_are_json(live_server):
    response = requests.post(f"{live_server.url}/v1/experiments", data="x", timeout=10)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "unauthorized"
