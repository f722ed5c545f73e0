"""A learning policy given as VW arguments (Personalizer's `configurations/policy`), read
through an allow-list of learning options into an exploration preset and its parameters.

The string is untrusted input: it never reaches VW. Each option is looked up in
``OPTIONS`` (exploration algorithm, its parameters, learning rate, regularization, bits,
cb_type, interactions); anything else (a file, port, data or daemon option such as ``-f``,
``-d``, ``-i``, ``--daemon``, ``--cache_file``, ``--readable_model``, ``--invert_hash``,
``-p``, ``--port``, or any option not listed) is refused. The preset and parameters are then
validated by ``exploration.validate_learner`` and VW's command line is built again by
``exploration.vw_arguments``, which writes only options of its own.
"""

from __future__ import annotations

import math
from typing import Any

from bandits.exploration import ExplorationError, validate_learner

MAX_LENGTH = 1024  # Personalizer's PolicyContract.arguments
FIELD = "arguments"

# option → (parameter name, kind); kind: "number", "integer", "word", "flag", "term".
OPTIONS: dict[str, tuple[str, str]] = {
    "--cb_explore_adf": ("", "flag"), "--quiet": ("", "flag"),
    "--epsilon": ("epsilon", "number"),
    "--squarecb": ("squarecb", "flag"), "--gamma_scale": ("gamma_scale", "number"),
    "--gamma_exponent": ("gamma_exponent", "number"),
    "--softmax": ("softmax", "flag"), "--lambda": ("lambda", "number"),
    "--bag": ("bag", "integer"), "--cover": ("cover", "integer"), "--psi": ("psi", "number"),
    "--regcb": ("regcb", "flag"), "--mellowness": ("mellowness", "number"),
    "-l": ("learning_rate", "number"), "--learning_rate": ("learning_rate", "number"),
    "--power_t": ("power_t", "number"), "--l2": ("l2", "number"),
    "-b": ("bits", "integer"), "--bit_precision": ("bits", "integer"),
    "--cb_type": ("cb_type", "word"), "--random_seed": ("random_seed", "integer"),
    "-q": ("interactions", "term"), "--quadratic": ("interactions", "term"),
    "--interactions": ("interactions", "term"), "--cubic": ("interactions", "term"),
}
ALGORITHMS = ("squarecb", "softmax", "regcb", "bag", "cover")
WILDCARD = ":"


def _fail(message: str) -> ExplorationError:
    return ExplorationError(FIELD, message)


def _tokens(arguments: Any) -> list[tuple[str, str | None]]:
    """(option, value) pairs; `--opt=value` and `--opt value` both read."""
    if not isinstance(arguments, str) or len(arguments) > MAX_LENGTH:
        raise _fail(f"must be a string of at most {MAX_LENGTH} characters")
    words, pairs = arguments.split(), []
    index = 0
    while index < len(words):
        option, _, inline = words[index].partition("=")
        if option not in OPTIONS:
            raise _fail(f"{option!r} is not an allowed learning option (allowed: "
                        f"{', '.join(sorted(OPTIONS))})")
        kind = OPTIONS[option][1]
        value: str | None = inline or None
        if kind != "flag" and value is None:
            index += 1
            if index >= len(words):
                raise _fail(f"{option} needs a value")
            value = words[index]
        elif kind == "flag" and inline:
            raise _fail(f"{option} takes no value")
        pairs.append((option, value))
        index += 1
    return pairs


def _number(option: str, value: str, integer: bool) -> float | int:
    try:
        number = float(value)
    except ValueError:
        raise _fail(f"{option} needs a number, not {value!r}") from None
    if not math.isfinite(number) or (integer and not number.is_integer()):
        raise _fail(f"{option} needs a finite {'integer' if integer else 'number'}")
    return int(number) if integer else number


def _term(option: str, value: str) -> str:
    """An interaction in Tailor's namespace letters: c (context), a (action), ':' (all)."""
    size = 3 if option == "--cubic" else len(value)
    if len(value) != size or size not in (2, 3) or not set(value) <= {"c", "a", WILDCARD}:
        raise _fail(f"{option} {value}: interactions are 2 or 3 letters of c (context), "
                    "a (action) and ':' (every namespace)")
    if WILDCARD in value:
        return "ca" if size == 2 else "cca"
    return value


def parse_policy(arguments: Any) -> tuple[str, dict[str, Any]]:
    """An exploration preset and its parameters from VW arguments.

    Args:
        arguments: e.g. Personalizer's default
            ``"--cb_explore_adf --epsilon 0.2 --power_t 0 -l 0.001 --cb_type mtr -q ::"``.

    Returns:
        ``(exploration, params)``: the parameters given (checked by
        ``exploration.validate_learner``; its defaults are left to the caller).

    Raises:
        ExplorationError: an option outside the allow-list, a bad value, or settings the
            preset refuses.

    >>> parse_policy("--cb_explore_adf --epsilon 0.2 --power_t 0 -l 0.001 -q ::")[0]
    'epsilon'
    """
    params: dict[str, Any] = {}
    algorithms: list[str] = []
    for option, value in _tokens(arguments):
        name, kind = OPTIONS[option]
        if kind == "flag":
            if name:
                algorithms.append(name)
        elif kind == "term":
            terms = params.setdefault("interactions", [])
            terms.append(_term(option, value or ""))
        elif kind == "word":
            params[name] = value
        else:
            params[name] = _number(option, value or "", kind == "integer")
            if name in ("bag", "cover"):
                algorithms.append(name)
    chosen = sorted(set(algorithms) & set(ALGORITHMS))
    if len(chosen) > 1:
        raise _fail(f"choose one exploration algorithm, not {' and '.join(chosen)}")
    exploration = chosen[0] if chosen else "epsilon"
    try:
        validate_learner(exploration, params)
    except ExplorationError as exc:
        raise _fail(exc.reason if exc.field == "learner.params" else
                    f"{exc.field.removeprefix('learner.params.')}: {exc.reason}") from exc
    return exploration, params
