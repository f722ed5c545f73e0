"""Context and action dicts → Vowpal Wabbit text-format examples (pure functions).

Encoding rules (see ``docs/ARCHITECTURE.md``, "Learning"):

Namespaces. VW indexes a namespace by the FIRST character of its name, and ``-q``
interactions cross those first characters. Every context namespace therefore starts with
``c`` and every action namespace with ``a``, so the single default interaction ``-q ca``
crosses every context feature with every action feature (including the action id).

- top-level context scalars  → namespace ``c``
- context key ``user: {...}`` → namespace ``c_user`` (key percent-encoded, see below)
- action features            → namespace ``a``; nested object ``k: {...}`` → ``a_k``
- the action id              → namespace ``aid``, feature ``id=<action id>``, so a
  catalog with no features still learns one weight per action (and per context × action)

Namespaces that share a first character are one VW feature group, but VW hashes each
feature with the full namespace name, so ``c`` and ``c_user`` never collide by name.

Values:

- str → categorical feature ``key=value`` (weight 1)
- bool → categorical ``key=true`` / ``key=false`` (the same features as those strings)
- int/float → numeric ``key:value``. Rejected (FeatureError) if NaN, ±inf or
  ``|x| > 3.4e38`` (VW stores float32). Zero and ``|x| < 1e-28`` produce no feature:
  VW ignores zero-valued features, and its parser scales the digits by
  10^(exponent − decimals), which underflows to zero below 10^-37: 7.42825537e-30 is
  read as 0 (found by the property test). From 1e-28 up, 9 digits stay above that.
  Values are written with 9 significant digits, enough to round-trip float32.
- list of str → one categorical feature per distinct item, ``key=item`` (order kept)
- None → skipped
- dict → a namespace, only at the top level of the context or of the action features
- anything else (deeper nesting, non-string list items, other types) → FeatureError
  whose ``path`` names the offending field, e.g. ``context.user.tags[2]``.

Declared types (``FeatureTypes``, from an experiment's ``feature_types``). A field may be
declared by its path (``bio``, ``profile.bio`` for a context namespace, ``action.desc`` or
``action.meta.desc`` for action features) as

- ``text``: a string, normalized (NFKC, case-folded), split into words (``\\w+``), each
  distinct word a categorical feature ``key=word`` of the field's namespace (at most
  ``MAX_TEXT_CHARS`` characters, ``MAX_TOKENS`` distinct words of at most
  ``MAX_TOKEN_CHARS`` characters each are kept);
- ``vector``: a list of at most ``MAX_VECTOR_DIMS`` finite numbers, dense numeric features
  ``key[i]:x`` (zeros give no feature, as any number);
- ``embedding``: a string (bounded as ``text``) that Tailor embeds itself with a small
  sentence model (`bandits.embeddings`, the optional ``embeddings`` extra) into 384
  numbers, which then become dense numeric features exactly as a ``vector`` field's.
  Without the extra, declaring it raises FeatureError saying how to install it.

Undeclared fields keep the rules above (a list of numbers is refused), so the same JSON
never changes meaning without a declaration.

Escaping. Keys and string values are UTF-8 percent-encoded: every byte outside
``[A-Za-z0-9_.-]`` becomes ``%XX``. This removes everything VW treats specially
(whitespace, ``|``, ``:``, newlines) and keeps the encoding injective (``=`` in a key is
encoded, so ``key=value`` splits uniquely). An empty key is written ``%`` (never produced
otherwise); an all-digit key gets its first digit encoded, because VW would otherwise
use an all-digit feature name as a number rather than hash it.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bandits import embeddings

CONTEXT_NAMESPACE = "c"
ACTION_NAMESPACE = "a"
ACTION_ID_NAMESPACE = "aid"
DEFAULT_INTERACTION = CONTEXT_NAMESPACE + ACTION_NAMESPACE  # "ca", for -q

FLOAT32_LIMIT = 3.4e38
TINY = 1e-28
TEXT, VECTOR, EMBEDDING = "text", "vector", "embedding"
KINDS = (TEXT, VECTOR, EMBEDDING)
MAX_TEXT_CHARS = 10_000
MAX_TOKENS = 256
MAX_TOKEN_CHARS = 64
MAX_VECTOR_DIMS = 1024
_WORD = re.compile(r"\w+")

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_PLAIN = re.compile(r"[A-Za-z0-9_.\-]*")
# Each byte's encoding, computed once: the rank path escapes every feature.
_BYTE_CODES = tuple(chr(b) if b in _SAFE else f"%{b:02X}" for b in range(256))


class FeatureError(ValueError):
    """A context or action value that cannot be encoded.

    Attributes:
        path: dotted path of the offending field, e.g. ``"context.user.name"``.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message


def escape(text: str) -> str:
    """Percent-encode ``text`` so VW reads it as part of one token.

    >>> escape("a b|c:d")
    'a%20b%7Cc%3Ad'
    """
    if _PLAIN.fullmatch(text):
        return text  # the common case (ids, categories) needs no work
    data = text.encode("utf-8", "surrogatepass")
    return "".join(_BYTE_CODES[b] for b in data)


@functools.lru_cache(maxsize=4096)
def escape_key(key: str) -> str:
    """Escape a feature key (or namespace suffix); see the module docstring."""
    if key == "":
        return "%"
    if key.isascii() and key.isdigit():
        return f"%{ord(key[0]):02X}{key[1:]}"
    return escape(key)


def _format_number(value: float) -> str:
    return format(value, ".9g")


def _number(value: int | float, path: str) -> float | None:
    """Validate a number; None when it encodes to no feature (zero or tiny)."""
    try:
        number = float(value)
    except OverflowError:
        raise FeatureError(path, "number too large for float32 (|x| > 3.4e38)") from None
    if math.isnan(number) or math.isinf(number):
        raise FeatureError(path, "number must be finite (no NaN or infinity)")
    if abs(number) > FLOAT32_LIMIT:
        raise FeatureError(path, "number too large for float32 (|x| > 3.4e38)")
    if abs(number) < TINY:
        return None
    return number


def _scalar_features(key: str, value: Any, path: str) -> list[str]:
    """Features for one non-dict value (``[]`` when it encodes to nothing)."""
    name = escape_key(key)
    if value is None:
        return []
    if isinstance(value, bool):
        return [f"{name}={'true' if value else 'false'}"]
    if isinstance(value, str):
        return [f"{name}={escape(value)}"]
    if isinstance(value, int | float):
        number = _number(value, path)
        return [] if number is None else [f"{name}:{_format_number(number)}"]
    if isinstance(value, list | tuple):
        return _list_features(name, value, path)
    if isinstance(value, Mapping):
        raise FeatureError(path, "objects may be nested one level only")
    raise FeatureError(path, f"unsupported value type {type(value).__name__}")


def _typed_features(key: str, value: Any, kind: str, path: str) -> list[str]:
    """Features of a field declared `text`, `vector` or `embedding` (``[]`` for None)."""
    if value is None:
        return []
    problem = typed_value_error(value, kind)
    if problem is not None:
        raise FeatureError(*problem(path))
    name = escape_key(key)
    if kind == TEXT:
        return [f"{name}={escape(word)}" for word in words(value)]
    if kind == EMBEDDING:
        return vector_features(key, embed_text(value, path)) if value.strip() else []
    return vector_features(key, value)


def vector_features(key: str, value: Sequence[float]) -> list[str]:
    """Dense numeric features ``key[i]:x`` of a validated vector (`vector`, `embedding`)."""
    return [f"{dim}:{_format_number(x)}" for dim, x in zip(_dimension_names(key, len(value)),
                                                           value, strict=True)
            if abs(x) >= TINY]


def embed_text(text: str, path: str) -> tuple[float, ...]:
    """An `embedding` field's vector: stored with the text when it is `Embedded` (a
    profile's), else the model's (cached per worker); FeatureError without the extra."""
    if isinstance(text, embeddings.Embedded):
        return text.vector
    try:
        return embeddings.embed(text)
    except embeddings.EmbeddingsUnavailable as exc:
        raise FeatureError(path, str(exc)) from None


def words(text: str) -> list[str]:
    """A text field's distinct words in order: NFKC, case-folded, ``\\w+``, bounded.

    >>> words("Likes TRAIL running; likes hills")
    ['likes', 'trail', 'running', 'hills']
    """
    seen: dict[str, None] = {}
    for match in _WORD.finditer(unicodedata.normalize("NFKC", text).casefold()):
        seen.setdefault(match.group()[:MAX_TOKEN_CHARS], None)
        if len(seen) >= MAX_TOKENS:
            break
    return list(seen)


@functools.lru_cache(maxsize=256)
def _dimension_names(key: str, dims: int) -> tuple[str, ...]:
    return tuple(escape_key(f"{key}[{i}]") for i in range(dims))


def typed_value_error(value: Any, kind: str | None) -> Any:
    """None when `value` is acceptable as a field of `kind` (None: undeclared, only the
    list rule is checked here), else a function path → (path, message) for FeatureError."""
    if kind in (TEXT, EMBEDDING):
        if not isinstance(value, str):
            return lambda p: (p, f"declared {kind} in feature_types: must be a string")
        if len(value) > MAX_TEXT_CHARS:
            return lambda p: (p, f"text longer than {MAX_TEXT_CHARS} characters")
        return None
    if kind == VECTOR:
        return _vector_error(value)
    if isinstance(value, list | tuple) and not all(isinstance(i, str) for i in value):
        return lambda p: (p, "list items must be strings (declare a list of numbers as "
                             "\"vector\" in the experiment's feature_types)")
    return None


def _vector_error(value: Any) -> Any:
    if not isinstance(value, list | tuple):
        return lambda p: (p, "declared vector in feature_types: must be a list of numbers")
    if len(value) > MAX_VECTOR_DIMS:
        return lambda p: (p, f"a vector has at most {MAX_VECTOR_DIMS} numbers, "
                             f"got {len(value)}")
    for index, item in enumerate(value):
        if (isinstance(item, bool) or not isinstance(item, int | float)
                or not math.isfinite(item) or abs(item) > FLOAT32_LIMIT):
            return lambda p, i=index: (f"{p}[{i}]", "vector items must be finite numbers "
                                                    "(|x| <= 3.4e38)")
    return None


def _list_features(name: str, items: Sequence[Any], path: str) -> list[str]:
    seen: dict[str, None] = {}
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise FeatureError(f"{path}[{index}]", "list items must be strings")
        seen.setdefault(f"{name}={escape(item)}", None)
    return list(seen)


def _check_key(key: Any, path: str) -> str:
    if not isinstance(key, str):
        raise FeatureError(path, f"keys must be strings, got {type(key).__name__}")
    return key


Kinds = Mapping[tuple[str | None, str], str]


def namespaces(values: Mapping[str, Any], prefix: str, path: str,
               kinds: Kinds | None = None) -> list[tuple[str, list[str]]]:
    """Group ``values`` into ``(namespace name, features)`` pairs, default namespace first.

    Args:
        values: a context or an action's features.
        prefix: ``"c"`` for context, ``"a"`` for action features.
        path: path of ``values`` for error messages, e.g. ``"context"``.
        kinds: declared kinds by ``(namespace or None, key)`` (``FeatureTypes``).

    Raises:
        FeatureError: for anything that cannot be encoded.
    """
    if not isinstance(values, Mapping):
        raise FeatureError(path, "must be an object")
    default: list[str] = []
    nested: list[tuple[str, list[str]]] = []
    for key, value in values.items():
        child = f"{path}.{_check_key(key, path)}"
        if isinstance(value, Mapping):
            nested.append((f"{prefix}_{escape_key(key)}", _flat(value, child, kinds, key)))
        elif kinds and (kind := kinds.get((None, key))) is not None:
            default.extend(_typed_features(key, value, kind, child))
        else:
            default.extend(_scalar_features(key, value, child))
    return [(prefix, default), *nested]


def _flat(values: Mapping[str, Any], path: str, kinds: Kinds | None = None,
          namespace: str | None = None) -> list[str]:
    features: list[str] = []
    for key, value in values.items():
        child = f"{path}.{_check_key(key, path)}"
        if kinds and (kind := kinds.get((namespace, key))) is not None:
            features.extend(_typed_features(key, value, kind, child))
        else:
            features.extend(_scalar_features(key, value, child))
    return features


@dataclass(frozen=True, eq=False)
class FeatureTypes:
    """An experiment's declared field kinds (``feature_types``), by side. Compared and
    hashed by identity: ``feature_types`` returns one object per declaration.

    Attributes:
        context: ``(namespace or None, key)`` → kind, for contexts (and profiles, which
            rank merges into a context namespace).
        action: the same for action features (declared as ``action.<key>`` or
            ``action.<namespace>.<key>``).
    """

    context: Mapping[tuple[str | None, str], str] = field(default_factory=dict)
    action: Mapping[tuple[str | None, str], str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.context or self.action)

    def declared(self) -> dict[str, str]:
        """Back to the ``feature_types`` object."""
        def path(prefix: str, where: tuple[str | None, str]) -> str:
            return prefix + ".".join(p for p in where if p is not None)
        return {**{path("", k): v for k, v in self.context.items()},
                **{path("action.", k): v for k, v in self.action.items()}}


NO_TYPES = FeatureTypes()


def feature_types(declared: Mapping[str, Any] | None) -> FeatureTypes:
    """Parse ``{"profile.bio": "text", "action.desc": "vector"}`` (memoized).

    Raises:
        FeatureError: with the path ``feature_types.<declared path>``.
    """
    if not declared:
        return NO_TYPES
    if not isinstance(declared, Mapping):
        raise FeatureError("feature_types", "must be an object of path: kind")
    return _feature_types(tuple(declared.items()))


@functools.lru_cache(maxsize=1024)
def _feature_types(items: tuple[tuple[Any, Any], ...]) -> FeatureTypes:
    context: dict[tuple[str | None, str], str] = {}
    action: dict[tuple[str | None, str], str] = {}
    for path, kind in items:
        where = f"feature_types.{path}"
        if kind not in KINDS:
            raise FeatureError(where, f"must be one of {', '.join(KINDS)}")
        if kind == EMBEDDING and not embeddings.available():
            raise FeatureError(where, embeddings.INSTALL_HINT)
        parts = path.split(".") if isinstance(path, str) else []
        side, parts = (action, parts[1:]) if parts[:1] == ["action"] else (context, parts)
        if not 1 <= len(parts) <= 2 or not all(parts):
            raise FeatureError(where, "a path is key or namespace.key, for actions "
                                      "action.key or action.namespace.key")
        side[(None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])] = kind
    return FeatureTypes(context, action)


def _render(groups: list[tuple[str, list[str]]]) -> str:
    return " ".join(f"|{name} {' '.join(feats)}".rstrip() for name, feats in groups)


def validate_context(context: Any, types: FeatureTypes = NO_TYPES) -> None:
    """Raise FeatureError if ``context`` cannot be encoded (the service answers 400)."""
    namespaces(context, CONTEXT_NAMESPACE, "context", types.context)


def shared_line(context: Mapping[str, Any], types: FeatureTypes = NO_TYPES) -> str:
    """The ``shared`` line of an ADF example.

    >>> shared_line({"hour": 14, "user": {"segment": "new"}})
    'shared |c hour:14 |c_user segment=new'
    """
    return "shared " + _render(namespaces(context, CONTEXT_NAMESPACE, "context",
                                          types.context))


def action_line(action_id: str, features: Mapping[str, Any] | None, path: str = "features",
                types: FeatureTypes = NO_TYPES) -> str:
    """One action line (without label).

    >>> action_line("hero-1", {"category": "shoes", "price": 49.0})
    '|aid id=hero-1 |a category=shoes price:49'
    """
    if not isinstance(action_id, str):
        id_path = path.rpartition(".")[0] + ".id" if "." in path else "id"
        raise FeatureError(id_path, "action id must be a string")
    groups = namespaces(features or {}, ACTION_NAMESPACE, path, types.action)
    return _render([(ACTION_ID_NAMESPACE, [f"id={escape(action_id)}"]), *groups])


def format_label(cost: float, probability: float) -> str:
    """The ADF label ``0:cost:probability`` (the action index part is ignored by VW)."""
    if not (math.isfinite(cost) and abs(cost) <= FLOAT32_LIMIT):
        raise ValueError(f"cost must be a finite float32, got {cost!r}")
    if not (0.0 < probability <= 1.0):
        raise ValueError(f"probability must be in (0, 1], got {probability!r}")
    return f"0:{format(cost, '.9g')}:{format(probability, '.9g')}"


class ActionLines:
    """`action_line` remembered per features object, for callers that offer the same
    (read-only) action objects again and again: rank serves validated actions from a
    cache and catalog actions from the experiment's configuration, and encoding ten
    actions cost more than VW's prediction.

    Entries are keyed by object identity and hold a reference to the object, so an id
    cannot be reused by another object while its entry exists; the objects must not be
    changed after they were first encoded. Bounded: cleared when full.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._lines: dict[int, tuple[str, Mapping[str, Any] | None, FeatureTypes, str]] = {}

    def line(self, action_id: str, features: Mapping[str, Any] | None, path: str,
             types: FeatureTypes = NO_TYPES) -> str:
        found = self._lines.get(id(features))
        if (found is not None and found[1] is features and found[0] == action_id
                and found[2] is types):
            return found[3]
        line = action_line(action_id, features, path, types)
        if features is not None:
            if len(self._lines) >= self.size:
                self._lines.clear()
            self._lines[id(features)] = (action_id, features, types, line)
        return line


def build_example(
    context: Mapping[str, Any],
    actions: Sequence[tuple[str, Mapping[str, Any]]],
    label: tuple[int, float, float] | None = None,
    lines: ActionLines | None = None,
    types: FeatureTypes = NO_TYPES,
    shared: str | None = None,
) -> list[str]:
    """The lines of one multi-line (ADF) example: shared line, then one line per action.

    Args:
        context: the decision context.
        actions: ``(action id, features)`` in the order offered.
        label: ``(chosen index, cost, probability)`` puts ``0:cost:probability`` on the
            chosen action's line (for learning).
        lines: encode actions through this memo (see `ActionLines`).
        types: the experiment's declared field kinds (`feature_types`).
        shared: ``shared_line(context, types)`` when the caller has it already.

    Raises:
        FeatureError: for input that cannot be encoded.
        ValueError: for an empty action list or a bad label.
    """
    if not actions:
        raise ValueError("at least one action is required")
    encode = action_line if lines is None else lines.line
    example = [shared if shared is not None else shared_line(context, types)]
    for index, (action_id, features) in enumerate(actions):
        example.append(encode(action_id, features, f"actions[{index}].features", types))
    if label is not None:
        chosen, cost, probability = label
        if not 0 <= chosen < len(actions):
            raise ValueError(f"chosen index {chosen} out of range for {len(actions)} actions")
        example[chosen + 1] = f"{format_label(cost, probability)} {example[chosen + 1]}"
    return example
