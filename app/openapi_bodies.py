"""Request-body schemas of /openapi.json, generated from the request types themselves.

A request type is what an adapter reads a JSON body into: a command record (a frozen
dataclass of `experiments`, whose fields say where each value comes from:
`experiments.command_fields`) or, for a wire format of its own (Personalizer), a `TypedDict`.
The endpoint table (`app.openapi.ENDPOINTS`) names the type; this module derives the body
from it and msgspec writes its JSON Schema (constraints from `Annotated[..., Meta(...)]`,
descriptions from docstrings). So the document cannot drift from the code: a field added to
a command is in the spec, and `app.http.command_body` accepts exactly the documented fields.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Iterator
from typing import Any, get_args, is_typeddict

import msgspec

from experiments.command_fields import body_fields, whole_body_field

REF = "#/components/schemas/{name}"

# Personalizer's bodies are read as Personalizer read them: unknown fields ignored. Every
# other typed body is Tailor's own, whose services refuse an unknown field at every level
# (a 400 naming it), so its schema says `additionalProperties: false`.
OPEN_MODULES = ("app.personalizer",)


def body_type(request: type) -> Any:
    """The type of the JSON body of `request`.

    A `TypedDict` is the body itself. A command's body is its `whole_body()` field's type,
    else a dataclass of the same name made of its body fields (context fields dropped:
    they come from the path or the caller's key).
    """
    if not dataclasses.is_dataclass(request):
        return request
    hints = typing.get_type_hints(request, include_extras=True)
    whole = whole_body_field(request)
    if whole is not None:
        return hints[whole.name]
    body = dataclasses.make_dataclass(
        request.__name__, [(f.name, hints[f.name], _same_default(f)) for f in body_fields(request)],
        frozen=True, kw_only=True)
    body.__doc__ = request.__doc__
    return body


def _same_default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return dataclasses.field(default=field.default)
    if field.default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=field.default_factory)
    return dataclasses.field()


def schemas(requests: Iterable[type]) -> tuple[dict[type, dict[str, Any]], dict[str, Any]]:
    """Per request type, the schema of its body (a `$ref`), and the components it refers to.

    Component names are the body types' names, so two request types must not share one.
    """
    unique = list(dict.fromkeys(requests))
    bodies = [body_type(r) for r in unique]
    by_name: dict[str, Any] = {}
    for body in bodies:
        if by_name.setdefault(body.__name__, body) is not body:
            raise ValueError(f"two request body types are named {body.__name__!r}")
    refs, components = msgspec.json.schema_components(bodies, ref_template=REF)
    for request, body in zip(unique, bodies, strict=True):
        if body is not request and dataclasses.is_dataclass(body):
            # `app.http.command_body` refuses any other field: say so.
            components[body.__name__]["additionalProperties"] = False
    for typed in _typed_dicts(bodies):
        if closed(typed):
            components[typed.__name__]["additionalProperties"] = False
    return dict(zip(unique, refs, strict=True)), components


def closed(body: type) -> bool:
    """Whether the server refuses fields of `body` (a `TypedDict`) that it does not name."""
    return not body.__module__.startswith(OPEN_MODULES)


def _typed_dicts(types: Iterable[Any]) -> Iterator[type]:
    """Every `TypedDict` in `types` and in their fields' types, at any depth, once."""
    seen: set[Any] = set()
    stack = list(types)
    while stack:
        kind = stack.pop()
        if kind in seen:
            continue
        seen.add(kind)
        if is_typeddict(kind):
            yield kind
            stack.extend(typing.get_type_hints(kind, include_extras=True).values())
        elif dataclasses.is_dataclass(kind):
            stack.extend(typing.get_type_hints(kind, include_extras=True).values())
        else:
            stack.extend(get_args(kind))
