"""`tailor init`'s first run: keys once, and two first starts at once do not crash."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from app.db import make_engine
from experiments.bootstrap import first_run
from experiments.models import ApiKey, Team


def test_init_prints_keys_once(runner, app):
    first = runner.invoke(args=["init"])
    assert first.exit_code == 0 and "tlr_" in first.output
    again = runner.invoke(args=["init"])
    assert again.exit_code == 0 and "tlr_" not in again.output


def test_two_first_runs_at_once_make_one_team_and_no_error(database_url):
    engine = make_engine(database_url)
    sessions = sa.orm.sessionmaker(engine)
    racer, rival = sessions(), sessions()
    # The rival has created the team but not committed: the racer sees no team yet, and
    # its insert waits for the rival's transaction, then finds the name taken.
    rival.add(Team(name="default", pii_salt="x" * 64, created_at=0.0))
    rival.flush()
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(first_run(racer)))
    thread.start()
    time.sleep(0.5)
    rival.commit()
    thread.join(30)
    assert outcome == [None]
    with sessions() as check:
        assert check.scalar(sa.select(sa.func.count()).select_from(Team)) == 1
        assert check.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 0
    racer.close()
    rival.close()
    engine.dispose()
