def test_register_rank_reward(client, team):
    body = {"key": "hero", "actions": [{"id": "a", "features": {"c": "x"}},
                                       {"id": "b", "features": {"c": "y"}}],
            "reward": {"events": {"click": 1.0}, "window_seconds": 60}}
    r = client.post("/v1/experiments", json=body, headers=team.auth("admin"))
    assert r.status_code == 201, r.json
    r = client.post("/v1/experiments/hero/rank", json={"context": {"u": "1"}, "event_id": "e1"},
                    headers=team.auth("client"))
    assert r.status_code == 200, r.json
    print(r.json)
    r = client.post("/v1/events/e1/rewards", json={"type": "click"}, headers=team.auth("client"))
    assert r.status_code == 202, r.json
