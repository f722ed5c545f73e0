"""Export an experiment's decision log as DSJson (one line per decision, VW-readable).

The decisions are those an OPE report reads (activated, not paused, reward window closed,
so the reward is final), in time order, streamed in chunks. Each line carries the cost
(minus the final reward), the logged propensity, the ranking ``a`` and, when the full
pmf is known, ``p``; Tailor's own facts (arm, policy, phase, model version) go under
``_tailor``, which VW ignores. ``vw --cb_explore_adf --dsjson -d FILE`` (or
``vowpalwabbit.Workspace("--cb_explore_adf --dsjson")``) reads the file.
"""

from __future__ import annotations

import json
from typing import TextIO

import sqlalchemy as sa
from sqlalchemy.orm import Session

from experiments.final_decisions import scope_of
from experiments.logio import dsjson
from experiments.models import Decision, Experiment

CHUNK = 5000


def export_dsjson(session: Session, experiment: Experiment, out: TextIO, *,
                  since: float | None = None, now: float | None = None) -> int:
    """Write the decisions as DSJson lines; returns how many were written."""
    scope = scope_of(session, experiment, now=now, since=since)
    query = sa.select(
        Decision.event_id, Decision.created_at, Decision.context, Decision.actions,
        Decision.chosen_index, Decision.propensity, Decision.pmf,
        scope.reward().label("final_reward"), Decision.arm, Decision.policy,
        Decision.phase, Decision.model_version,
    ).where(*scope.conditions()).order_by(Decision.created_at, Decision.id)
    written = 0
    for rows in session.execute(query.execution_options(yield_per=CHUNK)).partitions():
        for r in rows:
            line = dsjson.render(
                event_id=r.event_id, timestamp=r.created_at, context=r.context,
                actions=r.actions, chosen_index=r.chosen_index,
                propensity=min(float(r.propensity), 1.0), pmf=r.pmf, reward=r.final_reward,
                extra={"arm": r.arm, "policy": r.policy, "phase": r.phase,
                       "model_version": r.model_version})
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
        written += len(rows)
    return written
