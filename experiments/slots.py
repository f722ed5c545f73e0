"""Multi-slot decisions: one decision per slot, in an id space of their own.

A multi-slot rank with event id E logs one decision per slot S under the event id
``E + "\\x1f" + S``. No event id sent to rank may contain U+001F
(``rank_commands.SLOT_SEPARATOR``), so a slot's id can never equal a single-slot event id, and
``(E, S)`` is recovered by splitting at the first separator.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from experiments.models import DecisionKey
from experiments.rank_commands import SLOT_SEPARATOR


def slot_event_id(event_id: str, slot_id: str) -> str:
    """The event id of slot ``slot_id``'s decision of multi-slot event ``event_id``.

    >>> slot_event_id("e1", "Main Article")
    'e1\\x1fMain Article'
    """
    return f"{event_id}{SLOT_SEPARATOR}{slot_id}"


def activation_key(event_id: str) -> str:
    """What a multi-slot activation for an event not known yet is held under."""
    return f"{event_id}{SLOT_SEPARATOR}"


def slot_decisions(session: Session, experiment_id: int, event_id: str) -> dict[str, str]:
    """Slot id → its decision's event id, for the slots logged under ``event_id``."""
    prefix = activation_key(event_id)
    rows = session.scalars(sa.select(DecisionKey.event_id).where(
        DecisionKey.experiment_id == experiment_id,
        DecisionKey.event_id.startswith(prefix, autoescape=True)))
    return {row[len(prefix):]: row for row in rows}
