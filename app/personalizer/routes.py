"""One way to declare a Personalizer-compatible view, served under every path prefix.

Microsoft's clients call the same operations under several prefixes: `/personalizer/v1.0`
(the stable API, `azure-cognitiveservices-personalizer`), `/personalizer/v1.1-preview.1`,
`.2` and `.3` (the previews and the .NET/JS SDKs of their time) and `/personalizer` with
`?api-version=2022-09-01-preview` (`azure-ai-personalizer` 1.0.0b1). A view is declared once:

    from app.personalizer.routes import route

    @route("GET", "/model/properties", scope="admin", invalid="InvalidRequest",
           summary="Properties of the model", status="200")
    def model_properties() -> Response: ...

and `init_app` serves it under each prefix of `PREFIXES` (one blueprint, registered once per
prefix). The decorator checks the key and its scope (and the rate limit of `kind`), so the
view only parses, calls the domain and serializes. Any module of the `app.personalizer`
package is imported by `init_app` (`load_views`): a new module's views need no other
registration. Errors raised in a view are rendered in Personalizer's shape
(`app.personalizer.errors`); `invalid` is the Personalizer code a validation failure of that
view answers with (e.g. `InvalidRankRequest`).

The Personalizer resource of a call is one Tailor experiment: the one named by the
`X-Tailor-Experiment` header, else the key's default experiment (`experiment()`).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Blueprint, Flask, request

from app import db
from app.auth import check_rate_limit, current_principal
from app.errors import APIError
from experiments import registry
from experiments.models import Experiment

F = TypeVar("F", bound=Callable[..., Any])

ROOT = "/personalizer"
API_BLUEPRINT = "personalizer_api"  # the blueprint of `ROOT`, the 2022-09-01-preview contract
# (path prefix, blueprint name): the versions of Personalizer's REST API that are served.
PREFIXES = (
    (f"{ROOT}/v1.0", "personalizer"),
    (f"{ROOT}/v1.1-preview.1", "personalizer_v1_1_preview_1"),
    (f"{ROOT}/v1.1-preview.2", "personalizer_v1_1_preview_2"),
    (f"{ROOT}/v1.1-preview.3", "personalizer_preview"),
    # `?api-version=2022-09-01-preview` (any api-version is accepted: same shapes; the
    # versioned prefixes differ from it in the evaluations' shapes: `legacy_contract`).
    (ROOT, API_BLUEPRINT),
)
API_VERSION = "2022-09-01-preview"
EXPERIMENT_HEADER = "X-Tailor-Experiment"

bp = Blueprint("personalizer", __name__)


@dataclass(frozen=True)
class RouteInfo:
    """What the error renderer and the OpenAPI document need to know of a view."""

    method: str
    path: str
    scope: str
    invalid: str
    kind: str | None
    summary: str
    schema: type | None  # the typed body the view reads (app.personalizer.bodies)
    status: str


# A row of `app.openapi.ENDPOINTS`: (method, path, scope or None, summary, request type or
# None, success status).
Endpoint = tuple[str, str, str | None, str, type | None, str]


ROUTES: dict[str, RouteInfo] = {}  # by view function name (the endpoint without blueprint)


def route(method: str, path: str, *, scope: str, invalid: str = "BadRequest",
          kind: str | None = None, summary: str = "", schema: type | None = None,
          status: str = "200") -> Callable[[F], F]:
    """Declare a view of the Personalizer API (see the module docstring).

    Args:
        method: the HTTP method.
        path: the path under every prefix, Flask syntax (`/events/<event_id>/reward`).
        scope: the key scope required (`client`, `analyst`, `admin`).
        invalid: Personalizer's error code for an invalid request to this view.
        kind: the rate-limit bucket (`rank`, `reward`), None for none.
        summary, schema, status: for the OpenAPI document.
    """

    def decorate(view: F) -> F:
        name = view.__name__
        if name in ROUTES:
            raise RuntimeError(f"personalizer view {name!r} declared twice")
        ROUTES[name] = RouteInfo(method, path, scope, invalid, kind, summary, schema, status)

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if not principal.allows(scope):
                raise APIError(403, "forbidden", f"this key has scope {principal.scope!r}; "
                               f"{scope!r} is required")
            if kind is not None:
                check_rate_limit(principal, kind)
            return view(*args, **kwargs)

        bp.add_url_rule(path, name, wrapper, methods=[method])
        return wrapper  # type: ignore[return-value]

    return decorate


def current_route() -> RouteInfo | None:
    """The declaration of the view serving this request (None: no view matched)."""
    endpoint = request.endpoint or ""
    return ROUTES.get(endpoint.rsplit(".", 1)[-1]) if "." in endpoint else None


def legacy_contract() -> bool:
    """True when the call came through a versioned prefix (`v1.0`, `v1.1-preview.N`), whose
    offline evaluations have another shape than 2022-09-01-preview's (`POST evaluations`,
    `policyResults`; the JavaScript client `@azure-rest/ai-personalizer` speaks it)."""
    return request.blueprint != API_BLUEPRINT


def experiment() -> Experiment:
    """The experiment this call addresses (404 if the key's team has none of that key)."""
    principal = current_principal()
    key = request.headers.get(EXPERIMENT_HEADER) or principal.default_experiment
    if not key:
        from app.personalizer.errors import PersonalizerError

        raise PersonalizerError(
            400, "MissingAppId",
            f"no experiment: send the {EXPERIMENT_HEADER} header or use a key created with "
            "a default experiment (tailor keys create ... --experiment KEY)",
            target=EXPERIMENT_HEADER)
    return registry.get(db.session(), principal.team_id, key)


def load_views() -> None:
    """Import every module of the package (each declares its views with `route`)."""
    package = importlib.import_module("app.personalizer")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"app.personalizer.{module.name}")


def register(app: Flask) -> None:
    """Serve the declared views under every prefix."""
    load_views()
    for prefix, name in PREFIXES:
        app.register_blueprint(bp, url_prefix=prefix, name=name)


def is_personalizer_path(path: str) -> bool:
    return path == ROOT or path.startswith(ROOT + "/")


def endpoints() -> list[Endpoint]:
    """The declared views under every prefix, as rows of `app.openapi.ENDPOINTS`."""
    load_views()
    rows: list[Endpoint] = []
    for prefix, _name in PREFIXES:
        for info in ROUTES.values():
            path = prefix + info.path.replace("<", "{").replace(">", "}")
            rows.append((info.method.lower(), path, info.scope, info.summary, info.schema,
                         info.status))
    return rows
