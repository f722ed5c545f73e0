"""One logged decision as read from a file, and the checks every import format shares.

A :class:`LoggedRecord` is what an import line becomes before it is a ``decisions`` row:
the event id, when it happened, the context, the offered actions, which one was chosen
with what probability (the propensity), the full pmf when the file has it, and the reward
when one was observed. Errors are :class:`LineError`, which name the line.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bandits.features import FLOAT32_LIMIT, FeatureError, action_line

MAX_EVENT_ID = 128
MAX_ACTION_ID = 256
PMF_TOLERANCE = 1e-6


class LineError(ValueError):
    """A line of an import file that cannot be imported.

    Attributes:
        line: 1-based line number.
        reason: What is wrong with it.
    """

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class LoggedRecord:
    """A logged decision read from a file.

    Attributes:
        event_id: Unique within the experiment; re-importing it is skipped.
        timestamp: Epoch seconds of the decision (None: unknown, the import time is used).
        context: The context, as the rank call would send it.
        actions: Offered actions ``{"id", "features"}`` in the logged order.
        chosen_index: Position of the chosen action in ``actions``.
        propensity: Probability the logging policy gave the chosen action, in (0, 1].
        pmf: The logging policy's full distribution over ``actions``, when known.
        reward: The observed reward (None: none observed, the experiment's default applies).
    """

    event_id: str
    timestamp: float | None
    context: dict[str, Any]
    actions: list[dict[str, Any]]
    chosen_index: int
    propensity: float
    pmf: list[float] | None
    reward: float | None


def open_text(path: str | Path) -> TextIO:
    """Open a UTF-8 text file, gunzipping it when it starts with the gzip magic bytes."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")  # noqa: SIM115 - the caller closes it


def json_lines(handle: TextIO) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each non-blank line (numbers count blank lines too)."""
    for number, text in enumerate(handle, start=1):
        if text.strip():
            yield number, text


def load_line(number: int, text: str) -> Any:
    """The line's JSON value.

    Raises:
        LineError: On a line that is not JSON.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LineError(number, f"not valid JSON ({exc.msg} at column {exc.colno})") from None


def parse_timestamp(value: Any, line: int) -> float | None:
    """Epoch seconds from a number or an ISO 8601 string (any fraction digits; naive = UTC)."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if not isinstance(value, str):
        raise LineError(line, "timestamp must be epoch seconds or an ISO 8601 string")
    text = value.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Python reads at most 6 fraction digits; .NET writes 7
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise LineError(line, f"timestamp {value!r} is not ISO 8601") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def event_id(value: Any, line: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > MAX_EVENT_ID:
        raise LineError(line, f"event_id must be a non-empty string of at most {MAX_EVENT_ID}")
    return value


def probability(value: Any, line: int, name: str = "propensity") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise LineError(line, f"{name} must be a number in (0, 1], got {value!r}")
    return float(value)


def reward(value: Any, line: int) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LineError(line, f"reward must be a finite number or null, got {value!r}")
    return float(value)


def context(value: Any, line: int) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise LineError(line, "context must be an object")
    problem = context_problem(value)
    if problem is not None:
        raise LineError(line, problem)
    return dict(value)


def context_problem(values: Mapping[str, Any], path: str = "context",
                    nested: bool = False) -> str | None:
    """What keeps a context from being encoded (the rules of ``bandits.features``), or None.

    The same checks as ``bandits.features.validate_context`` without building the VW
    text, which costs a millisecond per context: imports check millions.
    """
    for key, value in values.items():
        if not isinstance(key, str):
            return f"{path}: keys must be strings"
        where = f"{path}.{key}"
        if isinstance(value, Mapping):
            if nested:
                return f"{where}: objects may be nested one level only"
            problem = context_problem(value, where, True)
            if problem is not None:
                return problem
        elif not _scalar_ok(value):
            return f"{where}: unsupported value {value!r}"
    return None


def _scalar_ok(value: Any) -> bool:
    if value is None or isinstance(value, str | bool):
        return True
    if isinstance(value, int | float):
        return math.isfinite(value) and abs(value) <= FLOAT32_LIMIT
    if isinstance(value, list | tuple):
        return all(isinstance(item, str) for item in value)
    return False


class ActionChecker:
    """Validates offered action lists, remembering lists already seen (logs repeat them)."""

    def __init__(self) -> None:
        self._seen: dict[Any, list[dict[str, Any]]] = {}

    def check(self, value: Any, line: int) -> list[dict[str, Any]]:
        """``[{"id", "features"}]`` from ids or action objects; ids unique and non-empty."""
        if not isinstance(value, list) or not value:
            raise LineError(line, "actions must be a non-empty list")
        key: Any = tuple(value) if all(type(v) is str for v in value) else \
            json.dumps(value, sort_keys=True, separators=(",", ":"))
        known = self._seen.get(key)
        if known is None:
            known = [_action(item, index, line) for index, item in enumerate(value)]
            ids = [a["id"] for a in known]
            if len(set(ids)) != len(ids):
                raise LineError(line, "actions: duplicate action id")
            if len(self._seen) < 10_000:
                self._seen[key] = known
        return known


def _action(item: Any, index: int, line: int) -> dict[str, Any]:
    if isinstance(item, str | int) and not isinstance(item, bool):
        item = {"id": str(item)}
    if not isinstance(item, Mapping):
        raise LineError(line, f"actions[{index}] must be an id or an object with an id")
    action_id = item.get("id")
    if isinstance(action_id, int) and not isinstance(action_id, bool):
        action_id = str(action_id)
    if not isinstance(action_id, str) or not action_id or len(action_id) > MAX_ACTION_ID:
        raise LineError(line, f"actions[{index}].id must be a non-empty string")
    features = item.get("features") or {}
    try:
        action_line(action_id, features, f"actions[{index}].features")
    except FeatureError as exc:
        raise LineError(line, f"{exc.path}: {exc.reason}") from None
    return {"id": action_id, "features": dict(features)}


def checked_pmf(pmf: list[float], chosen_index: int, propensity: float, line: int) -> list[float]:
    """A full logged pmf: non-negative, sums to 1, agrees with the chosen propensity."""
    if not all(isinstance(p, int | float) and not isinstance(p, bool) and 0 <= p <= 1
               for p in pmf):
        raise LineError(line, "pmf entries must be numbers in [0, 1]")
    total = math.fsum(pmf)
    if abs(total - 1.0) > PMF_TOLERANCE:
        raise LineError(line, f"pmf sums to {total:.9g}, not 1")
    if not math.isclose(pmf[chosen_index], propensity, rel_tol=1e-6, abs_tol=1e-9):
        raise LineError(line, f"pmf gives the chosen action {pmf[chosen_index]:.9g}, "
                        f"but the propensity is {propensity:.9g}")
    return [float(p) for p in pmf]
