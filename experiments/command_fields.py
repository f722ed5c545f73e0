"""Where the fields of a command come from, so that its request body can be derived from it.

A command is a frozen dataclass that an adapter in `app/` fills and a service in
`experiments/` executes. Most of its fields are the request body's fields, as the client
sent them (the service validates them: a 400 names the field). Two markers say otherwise:

- `context()`: not in the body; the adapter fills it from the path or the caller's key
  (the acting principal, the experiment the path names, a key id);
- `whole_body()`: this one field is the whole body (an open-ended object, typed by a
  `TypedDict`), e.g. an experiment's configuration.

`app/openapi_bodies.py` turns a command into its body's JSON Schema with these markers, so
the documented body is the command and cannot drift from it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

SOURCE = "source"
CONTEXT, WHOLE_BODY = "context", "whole_body"


def context() -> Any:
    """A field the adapter fills from the path or the caller's key, not from the body."""
    return dataclasses.field(metadata={SOURCE: CONTEXT})


def whole_body() -> Any:
    """The field that holds the whole request body."""
    return dataclasses.field(metadata={SOURCE: WHOLE_BODY})


def body_fields(command: type) -> list[dataclasses.Field[Any]]:
    """The fields of `command` that the request body carries, in declaration order."""
    return [f for f in dataclasses.fields(command) if f.metadata.get(SOURCE) is None]


def body_field_names(command: type) -> frozenset[str]:
    return frozenset(f.name for f in body_fields(command))


def whole_body_field(command: type) -> dataclasses.Field[Any] | None:
    """The field marked `whole_body()`, if any."""
    return next((f for f in dataclasses.fields(command)
                 if f.metadata.get(SOURCE) == WHOLE_BODY), None)
