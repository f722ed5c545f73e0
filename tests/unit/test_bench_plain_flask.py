"""The plain-Flask baseline of the benchmarks (bench/plain_flask.py) does the no-op's
work: it parses the rank body and answers with its event id, as Tailor's no-op does, and
it is Flask alone (nothing of Tailor's registered on it)."""

from __future__ import annotations

import json

from bench import plain_flask
from bench._servers import PLAIN_APP, PlainServed
from bench.rank_cpu import body


def test_it_echoes_each_bodys_event_id_and_counts_its_fields():
    client = plain_flask.create_app().test_client()
    for i in (3, 41):
        sent = body("plain", i)
        answer = client.post("/bench/noop", data=sent, content_type="application/json")
        assert answer.status_code == 200
        assert answer.json == {"ok": True, "event_id": f"plain-{i}",
                               "fields": len(json.loads(sent))}


def test_it_answers_what_tailors_noop_answers():
    from app import create_app

    tailor = create_app({"DATABASE_URL": "sqlite://", "TESTING": True,
                         "BENCH_NOOP": True}).test_client()
    plain = plain_flask.create_app().test_client()
    sent = body("same", 7)
    answers = [c.post("/bench/noop", data=sent, content_type="application/json").json
               for c in (tailor, plain)]
    assert answers[0] == answers[1]


def test_it_parses_the_body_and_has_nothing_of_tailors():
    app = plain_flask.create_app()
    answer = app.test_client().post("/bench/noop", data=b"{not json",
                                    content_type="application/json")
    assert answer.status_code == 400
    assert sorted(r.rule for r in app.url_map.iter_rules()) == [
        "/bench/noop", "/healthz", "/static/<path:filename>"]
    assert not app.before_request_funcs and not app.after_request_funcs
    assert not app.teardown_request_funcs and not app.extensions


def test_it_is_served_with_tailor_serves_gunicorn_command_line():
    from app.cli_serve import Layout, gunicorn_command

    served = PlainServed("sqlite://", workers=4, threads=2, port=8123)
    tailor = gunicorn_command(Layout("127.0.0.1", 8123, 4, 2, True, False, 0, False))
    assert served.command() == [*tailor[:-1], PLAIN_APP]
