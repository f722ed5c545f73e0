"""Profile batch writes: POST /v1/profiles, 1000 profiles per call, through the Flask app
in process (no HTTP server: the figure is the service's own work, request parsing,
validation, PII guard, one upsert and commit per call).

    .venv/bin/python -m bench.profiles                        # SQLite
    .venv/bin/python -m bench.profiles --backend postgresql   # TAILOR_BENCH_PG_URL
    .venv/bin/python -m bench.profiles --embedding --units 2000  # the bio embedded

Each profile has 8 features (categories, numbers, a list of strings, a sentence of text).
Every unit is written twice (the second pass updates: version 2), as apps refresh them.
`--embedding`: an experiment of the team declares `profile.bio: embedding` first, so each
write also embeds the (distinct) bio and stores its vector; the update pass writes the
same bios again, and the sentence model's per-process cache answers. Without it, a run
still registers an experiment (declaring `profile.bio: text`), so both runs read the
team's declarations alike.
"""

from __future__ import annotations

import argparse
import time

from app import create_app
from app.db import dispose
from bench._servers import create_tenant, database

EXPERIMENT = {"key": "reads-profiles", "actions": [{"id": "a1"}, {"id": "a2"}],
              "profile": {"namespace": "profile", "max_age_seconds": 86400},
              "status": "running"}


def batch(start: int, size: int) -> dict:
    return {"profiles": [{"unit_id": f"u-{i}", "features": {
        "segment": f"s{i % 5}", "country": f"c{i % 20}", "orders_90d": i % 13,
        "spend": (i % 97) * 1.5, "pro": i % 2 == 0, "tags": ["a", f"t{i % 7}"],
        "bio": f"customer {i} likes trail running and city walks", "tier": "gold"}}
        for i in range(start, start + size)]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--units", type=int, default=20_000)
    parser.add_argument("--embedding", action="store_true",
                        help="an experiment declares profile.bio: embedding")
    options = parser.parse_args(argv)
    with database(options.backend) as url:
        tenant = create_tenant(url)
        app = create_app({"DATABASE_URL": url})
        client = app.test_client()
        headers = {"Authorization": f"Bearer {tenant.client}"}
        kind = "embedding" if options.embedding else "text"
        registered = client.post("/v1/experiments", json=EXPERIMENT | {"feature_types": {
            "profile.bio": kind}}, headers={"Authorization": f"Bearer {tenant.admin}"})
        assert registered.status_code == 201, registered.json
        bodies = [batch(start, 1000) for start in range(0, options.units, 1000)]
        for label in ("insert", "update"):
            started = time.perf_counter()
            for body in bodies:
                response = client.post("/v1/profiles", json=body, headers=headers)
                assert response.status_code == 200, response.json
            seconds = time.perf_counter() - started
            print(f"{options.backend} {label} (bio {kind}): {options.units} profiles in "
                  f"{seconds:.2f} s "
                  f"= {options.units / seconds:,.0f} profiles/s")
        dispose(app)


if __name__ == "__main__":
    main()
