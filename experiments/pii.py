"""Keep personal data out of the decision log and the model.

Which fields are personal:

- the experiment's `pii_fields`, plus a service-wide default list (`DEFAULT_FIELDS`,
  configurable with `TAILOR_PII_DEFAULT_FIELDS`);
- a bare name (`email`) matches that key at the top level of the context and inside every
  namespace (`user.email` too); a dotted path (`user.email`) matches only there; a name
  that matches a whole namespace (`address: {...}`) makes every value in it personal;
- names compare case- and punctuation-insensitively (`E-Mail`, `e_mail` and `email` are
  one name), so camelCase contexts (Personalizer's) are covered as well.

What happens to them (the experiment's `pii_mode`):

- `hash`: the value becomes a keyed hash (HMAC-SHA256 with the team's salt, prefix
  `pii:`), so the same person still joins across decisions of the team, never across teams;
- `reject`: the rank call is refused with 422 naming the field.

Undeclared values that look like an e-mail address or a payment card number (13 to 19
digits passing the Luhn check) are treated the same way, and in `hash` mode each one adds
a warning (`pii_detected`, naming the field, never the value) to the rank answer.
The unit id is hashed whenever the unit field is personal or the id looks like one of
those values; it is never rejected, because assignment needs it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from experiments.config import PIIRules
from experiments.errors import Unprocessable

HASH_PREFIX = "pii:"
_HASH_LENGTH = len(HASH_PREFIX) + 32
DEFAULT_FIELDS: tuple[str, ...] = (
    "email", "phone", "phone_number", "mobile", "name", "first_name", "last_name",
    "full_name", "address", "street_address", "card_number", "credit_card", "iban", "ssn",
    "passport", "date_of_birth", "ip_address")

_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# 13 to 19 digits, optionally grouped by single spaces or dashes, not inside a longer number.
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_CARD_SEPARATORS = str.maketrans("", "", " -")
_NOT_ALNUM = re.compile(r"[\W_]+")
_KIND_TEXT = {"email": "an e-mail address", "card_number": "a payment card number"}

# The service-wide default list for the current request. The web layer sets it from its
# configuration per request (`use_default_fields`); code outside a request sees the
# built-in list.
_default_fields: ContextVar[frozenset[str]] = ContextVar(
    "tailor_pii_default_fields", default=frozenset(DEFAULT_FIELDS))


@functools.lru_cache(maxsize=8192)
def normalize(name: str) -> str:
    """A field name compared without case or punctuation: `E-Mail` → `email`."""
    return _NOT_ALNUM.sub("", name.lower())


def parse_field_list(spec: str | Iterable[str] | None) -> frozenset[str]:
    """`"email, phone"` or `["email", "phone"]` → the set of names (empty for None/"")."""
    if spec is None:
        return frozenset()
    items = spec.split(",") if isinstance(spec, str) else spec
    return frozenset(item.strip() for item in items if item and item.strip())


def use_default_fields(fields: frozenset[str]) -> Any:
    """Set the default list for this request/thread; returns a token for `reset_default_fields`."""
    return _default_fields.set(fields)


def reset_default_fields(token: Any) -> None:
    _default_fields.reset(token)


def default_fields() -> frozenset[str]:
    return _default_fields.get()


def keyed_hash(salt: str, value: Any) -> str:
    """`pii:` + HMAC-SHA256(team salt, value), 128 bits in hex. Idempotent: a value that is
    already such a hash is returned unchanged, so hashing twice cannot happen."""
    if is_hashed(value):
        return value
    text = value if isinstance(value, str) else repr(value)
    return HASH_PREFIX + hmac.new(salt.encode(), text.encode(), hashlib.sha256).hexdigest()[:32]


def is_hashed(value: Any) -> bool:
    return (isinstance(value, str) and len(value) == _HASH_LENGTH
            and value.startswith(HASH_PREFIX))


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string (payment card numbers pass it)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def looks_personal(value: Any) -> str | None:
    """`"email"` or `"card_number"` when the value looks like one, else None."""
    # Cheap tests first: this runs on every string of every rank call.
    if type(value) is str:
        if is_hashed(value):
            return None
        if "@" in value and _EMAIL.search(value):
            return "email"
        if len(value) < 13:
            return None
        text = value
    elif type(value) is int:
        if not 10**12 <= abs(value) < 10**19:
            return None
        text = str(abs(value))
    else:
        return None
    if any(_card_like(match.translate(_CARD_SEPARATORS)) for match in _CARD.findall(text)):
        return "card_number"
    return None


def _card_like(digits: str) -> bool:
    """Luhn-valid, with a card network's leading digits (Amex/Diners/JCB 3, Visa 4,
    Mastercard 5 and 2221-2720, Discover/UnionPay/Maestro 6). The prefix test keeps
    millisecond timestamps and snowflake ids (which start with 1) from looking like cards."""
    first = digits[0]
    if first == "2":
        if not 2221 <= int(digits[:4]) <= 2720:
            return False
    elif first not in "3456":
        return False
    return luhn_valid(digits)


@dataclass(frozen=True)
class Matcher:
    """Which (namespace, key) pairs are declared personal."""

    names: frozenset[str]
    paths: frozenset[tuple[str, str]]

    @classmethod
    def build(cls, fields: Iterable[str]) -> Matcher:
        names, paths = set(), set()
        for path in fields:
            head, _, tail = path.partition(".")
            if tail:
                paths.add((normalize(head), normalize(tail)))
            else:
                names.add(normalize(head))
        return cls(frozenset(names), frozenset(paths))

    def matches(self, namespace: str | None, key: str) -> bool:
        name = normalize(key)
        if name in self.names:
            return True
        return namespace is not None and (normalize(namespace), name) in self.paths


@dataclass(frozen=True)
class Guarded:
    """The context and unit id as they may be logged, and what the guard noticed."""

    context: dict[str, Any]
    unit: str | None
    warnings: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Walk:
    matcher: Matcher
    mode: str
    salt: str
    warnings: list[dict[str, Any]]

    def declared(self, path: str) -> None:
        if self.mode == "reject":
            raise Unprocessable(
                f"context.{path} is a personal data field (pii_fields or the service "
                "default list) and may not be sent to this experiment",
                [{"field": f"context.{path}", "message": "personal data field"}])

    def detected(self, path: str, kind: str) -> None:
        where = f"context.{path}"
        if self.mode == "reject":
            raise Unprocessable(
                f"{where} looks like {_KIND_TEXT[kind]}; personal data may not be sent to "
                "this experiment", [{"field": where, "message": f"looks like {kind}"}])
        self.warnings.append({"code": "pii_detected", "field": where, "kind": kind,
                              "message": f"{where} looks like {_KIND_TEXT[kind]}; it was "
                                         "hashed. Declare it in pii_fields, or stop sending it."})

    def hashed(self, value: Any) -> Any:
        if isinstance(value, list):
            return [keyed_hash(self.salt, item) for item in value]
        return keyed_hash(self.salt, value)

    # Paths are built only when something is found: this runs on every rank call.
    def key(self, key: str, namespace: str | None) -> str:
        kind = looks_personal(key)
        if kind is None:
            return key
        self.detected(_path(namespace, key), kind)
        return keyed_hash(self.salt, key)

    def value(self, namespace: str | None, key: str, value: Any, personal: bool) -> Any:
        if value is None:
            return None
        if personal or self.matcher.matches(namespace, key):
            self.declared(_path(namespace, key))
            return self.hashed(value)
        if type(value) is list:
            return [self._scanned(item, namespace, key, i) for i, item in enumerate(value)]
        return self._scanned(value, namespace, key)

    def _scanned(self, value: Any, namespace: str | None, key: str,
                 index: int | None = None) -> Any:
        kind = looks_personal(value)
        if kind is None:
            return value
        where = _path(namespace, key)
        self.detected(where if index is None else f"{where}[{index}]", kind)
        return keyed_hash(self.salt, value)

    def context(self, context: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in context.items():
            if isinstance(value, Mapping):
                whole = self.matcher.matches(None, key)
                result[self.key(key, None)] = {
                    self.key(inner, key): self.value(key, inner, v, whole)
                    for inner, v in value.items()}
            else:
                result[self.key(key, None)] = self.value(None, key, value, False)
        return result


def _path(namespace: str | None, key: str) -> str:
    return key if namespace is None else f"{namespace}.{key}"


def matcher_for(declared: Iterable[str], defaults: Iterable[str] | None = None) -> Matcher:
    return _matcher(tuple(declared), frozenset(default_fields() if defaults is None
                                               else defaults))


@functools.lru_cache(maxsize=1024)
def _matcher(declared: tuple[str, ...], defaults: frozenset[str]) -> Matcher:
    # Built once per (experiment fields, default list), not per rank call.
    return Matcher.build([*declared, *sorted(defaults)])


def guard(context: Mapping[str, Any], unit: str | None, config: PIIRules | Mapping[str, Any],
          salt: str, defaults: Iterable[str] | None = None) -> Guarded:
    """Apply the experiment's PII rules to a rank call's context and unit id.

    Args:
        context: the context as sent (not modified).
        unit: the unit id as derived from the call (clear), or None.
        config: the experiment's PII rules (`ExperimentConfig.pii`), or a stored
            configuration (`rules_of`).
        salt: the team's PII salt.
        defaults: the service-wide default field list; None means the current one.

    Raises:
        Unprocessable: in `reject` mode, naming the first personal field.
    """
    rules = rules_of(config)
    matcher = matcher_for(rules.fields, defaults)
    walk = _Walk(matcher, rules.mode, salt, [])
    protected = walk.context(context)
    return Guarded(protected, _unit(matcher, rules, salt, unit), walk.warnings)


def rules_of(config: PIIRules | Mapping[str, Any]) -> PIIRules:
    """The PII rules given, or those of a stored (possibly partial: tests, benches)
    configuration."""
    return config if isinstance(config, PIIRules) else PIIRules.parse(config)


def _unit(matcher: Matcher, rules: PIIRules, salt: str, unit: str | None) -> str | None:
    if unit is None:
        return None
    personal = rules.unit_field is not None and matcher.matches(None, rules.unit_field)
    return keyed_hash(salt, unit) if personal or looks_personal(unit) else unit


def stored_unit(config: PIIRules | Mapping[str, Any], salt: str, unit: str,
                defaults: Iterable[str] | None = None) -> str:
    """The unit id as rank stores it for this experiment (to look a clear id up)."""
    rules = rules_of(config)
    return _unit(matcher_for(rules.fields, defaults), rules, salt, unit) or unit

