"""Import a VW model as a new snapshot version (admin), after checking that VW loads it.

The arguments an imported model is loaded with are restricted to the flags Tailor itself
generates (``bandits.exploration.vw_arguments``): VW arguments can name files to read or
write, so free-form ones are never passed through. ``--bit_precision`` is required, so VW
refuses a model of another size before allocating its weights.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bandits.policy import VWPolicy
from experiments import audit
from experiments.errors import Conflict, ValidationFailed
from experiments.learning import snapshots
from experiments.models import Experiment, Model

_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_SWITCHES = {"--cb_explore_adf", "--quiet", "--squarecb", "--softmax", "--regcb"}
_NUMERIC = {"--epsilon", "--gamma_scale", "--gamma_exponent", "--lambda", "--bag", "--cover",
            "--psi", "--mellowness", "--learning_rate", "--power_t", "--l2", "--bit_precision",
            "--cb_min_cost", "--cb_max_cost"}
_CHOICES = {"--cb_type": re.compile(r"^(mtr|ips|dr|dm)$"),
            "--interactions": re.compile(r"^[ca]{2,3}$")}
MAX_BITS = 28
PROBE_ACTIONS: list[tuple[str, dict[str, Any]]] = [("tailor-probe-1", {}),
                                                   ("tailor-probe-2", {})]


def _bad(message: str) -> ValidationFailed:
    return ValidationFailed.field("arguments", message)


def check_arguments(text: str) -> str:
    """Validate VW arguments against the allowed flags; returns them normalized."""
    tokens = text.split()
    index = 0
    while index < len(tokens):
        flag = tokens[index]
        if flag in _SWITCHES:
            index += 1
            continue
        if flag not in _NUMERIC and flag not in _CHOICES:
            raise _bad(f"flag {flag!r} is not allowed")
        value = tokens[index + 1] if index + 1 < len(tokens) else ""
        pattern = _CHOICES.get(flag, _NUMBER)
        if not pattern.match(value):
            raise _bad(f"{flag} has an invalid value {value!r}")
        index += 2
    if "--cb_explore_adf" not in tokens:
        raise _bad("must contain --cb_explore_adf")
    if "--bit_precision" not in tokens:
        raise _bad("must contain --bit_precision")
    bits = float(tokens[tokens.index("--bit_precision") + 1])
    if not 1 <= bits <= MAX_BITS or not bits.is_integer():
        raise _bad(f"--bit_precision must be an integer from 1 to {MAX_BITS}")
    return " ".join(tokens)


def verify_loads(data: bytes, arguments: str, actions: list[tuple[str, dict]]) -> None:
    """Load the model in VW and rank a probe example; ValidationFailed if VW refuses."""
    if not data:
        raise ValidationFailed.field("body", "the model file is empty")
    try:
        policy = VWPolicy(arguments, data)
    except Exception as exc:  # VW reports every load failure as a bare RuntimeError
        raise ValidationFailed.field("body", f"VW cannot load this model with arguments "
                                     f"{arguments!r}: {exc}") from exc
    try:
        policy.pmf({}, actions or PROBE_ACTIONS)
    except Exception as exc:
        raise ValidationFailed.field("body", f"the model loads but cannot rank: {exc}") from exc
    finally:
        policy.close()


def import_model(session: Session, experiment: Experiment, data: bytes,
                 arguments: str | None, actor: audit.Actor | audit.KeyPrincipal) -> Model:
    """Store ``data`` as the next version, record who did it, and commit.

    Without ``arguments`` the model gets the experiment's current learner arguments, so
    the bandit arm serves it and the learner continues from it.
    """
    settings = experiment.settings
    arguments = check_arguments(arguments) if arguments else settings.learner.vw_arguments
    catalog = [(a["id"], a.get("features") or {}) for a in settings.actions or ()]
    verify_loads(data, arguments, catalog)
    try:
        model = snapshots.publish(session, experiment.id, arguments=arguments, data=data,
                                  examples_learned=0, metrics=None, source="import")
    except IntegrityError as exc:
        session.rollback()
        raise Conflict("the learner published a version at the same moment; retry") from exc
    audit.record(session, actor, "model.import", experiment.key, {
        "version": model.version, "arguments": arguments, "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest()})
    session.commit()
    return model
