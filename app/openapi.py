"""The OpenAPI 3 description of the whole HTTP API (served at /openapi.json).

Endpoints are declared in one table; each part of the service adds its rows here, so the
document cannot silently miss a route (a test compares it with Flask's URL map). A row names
the request type its view reads the JSON body into (a command record or a typed body); the
body's schema is generated from that type (`app.openapi_bodies`), never written here, so it
cannot drift from the code. Only responses and the error shape are written by hand.
"""

from __future__ import annotations

from typing import Any

from app import openapi_bodies
from app.api import bodies
from app.personalizer import routes as personalizer_routes
from app.personalizer.routes import Endpoint
from experiments import experiment_commands, key_commands, plan, profile_commands, promotion

ERROR = {"$ref": "#/components/schemas/Error"}
OBJ: dict[str, Any] = {"type": "object"}

# Schemas that are not request bodies (those are generated: `app.openapi_bodies`).
SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message", "details"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "details": {"type": "array", "items": OBJ}}}}},
    "RankResponse": {"type": "object", "required": [
        "event_id", "action_id", "probability", "ranking", "arm", "model_version"],
        "properties": {
            "event_id": {"type": "string"}, "action_id": {"type": "string"},
            "probability": {"type": "number"}, "arm": {"type": "string"},
            "model_version": {"type": ["integer", "null"]},
            "warnings": {"type": "array", "items": {"type": "object", "properties": {
                "code": {"type": "string"}, "field": {"type": "string"},
                "message": {"type": "string"}}}},
            "ranking": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"}, "probability": {"type": "number"}}}}}},
}

# (method, path, scope or None, summary, request type or None, success status). The request
# type (a command record or a typed body) is the one the view reads the JSON body into.
ENDPOINTS: list[Endpoint] = [
    ("get", "/healthz", None, "Process is up", None, "200"),
    ("get", "/readyz", None, "Database reachable and migrated", None, "200"),
    ("get", "/openapi.json", None, "This document", None, "200"),
    ("get", "/metrics", None, "Prometheus text format (an analyst key when "
     "TAILOR_METRICS_PUBLIC is false)", None, "200"),
    ("post", "/v1/experiments", "admin", "Register an experiment",
     experiment_commands.CreateExperiment, "201"),
    ("get", "/v1/experiments", "analyst", "List the team's experiments", None, "200"),
    ("get", "/v1/experiments/{key}", "analyst", "One experiment", None, "200"),
    ("patch", "/v1/experiments/{key}", "admin", "Change status, arms, learner...",
     experiment_commands.PatchExperiment, "200"),
    ("get", "/v1/experiments/{key}/history", "analyst", "Every version of the configuration",
     None, "200"),
    ("post", "/v1/experiments/{key}/rank", "client", "Choose an action and log the decision",
     bodies.RankRequest, "200"),
    ("post", "/v1/experiments/{key}/rewards", "client", "A batch of up to 1000 rewards",
     bodies.RewardBatch, "200"),
    ("get", "/v1/experiments/{key}/decisions", "analyst", "The decision log (paged)", None,
     "200"),
    ("post", "/v1/events/{event_id}/rewards", "client", "One reward for a decision",
     bodies.Reward, "202"),
    ("post", "/v1/events/{event_id}/activate", "client", "Activate a deferred decision", None,
     "200"),
    ("post", "/v1/keys", "admin", "Create an API key (shown once)",
     key_commands.CreateKey, "201"),
    ("get", "/v1/keys", "admin", "List the team's keys", None, "200"),
    ("delete", "/v1/keys/{key_id}", "admin", "Revoke a key", None, "200"),
    ("post", "/v1/keys/{key_id}/rotate", "admin",
     "Replace a key by a new one (same scope/name); the old one is revoked", None, "201"),
    ("delete", "/v1/units/{unit_id}", "admin",
     "Erase a unit's decisions and rewards in every experiment of the team", None, "200"),
    ("get", "/v1/audit", "admin", "The team's audit log (paged)", None, "200"),
    ("put", "/v1/units/{unit_id}/profile", "client", "Store a unit's profile (a new version)",
     profile_commands.PutProfile, "200"),
    ("patch", "/v1/units/{unit_id}/profile", "client",
     "Merge features into a unit's profile", profile_commands.PatchProfile, "200"),
    ("get", "/v1/units/{unit_id}/profile", "analyst", "A unit's profile (audited)", None,
     "200"),
    ("delete", "/v1/units/{unit_id}/profile", "admin", "Delete a unit's profile", None, "200"),
    ("post", "/v1/profiles", "client", "Store up to 1000 profiles",
     profile_commands.PutProfiles, "200"),
    *personalizer_routes.endpoints(),
    ("get", "/v1/experiments/{key}/learning", "analyst",
     "Learning status: model freshness, backlog, progressive validation", None, "200"),
    ("get", "/v1/experiments/{key}/models", "analyst", "List the model snapshots", None, "200"),
    ("get", "/v1/experiments/{key}/models/{version}", "analyst",
     "Download a snapshot (application/octet-stream, `vw -i`); version may be `latest`",
     None, "200"),
    ("post", "/v1/experiments/{key}/models", "admin",
     "Import a VW model (body: the model bytes, application/octet-stream; optional "
     "?arguments=) as a new version", None, "201"),
    ("get", "/v1/experiments/{key}/reports/ab", "analyst",
     "A/B significance report (JSON, or CSV with ?format=csv)", None, "200"),
    ("get", "/v1/experiments/{key}/reports/ope", "analyst",
     "Off-policy evaluation of candidates versus the champion (computed and stored)",
     None, "200"),
    ("get", "/v1/experiments/{key}/reports/ope/{report_id}", "analyst",
     "A stored OPE report by id, or `latest`", None, "200"),
    ("get", "/v1/experiments/{key}/reports/health", "analyst",
     "Bandit health: chosen actions vs logged probabilities, reward-join rates", None, "200"),
    ("get", "/v1/experiments/{key}/reports/drift", "analyst",
     "Drift between a reference and a recent window: each context feature's PSI, reward-"
     "rate and model-quality drift, each with an alert (PSI exported in /metrics)", None,
     "200"),
    ("get", "/v1/experiments/{key}/reports/fairness", "analyst",
     "Fairness: reward and action exposure per value of a context attribute and arm, "
     "tests of disparity, counterfactual audit of the current model", None, "200"),
    ("get", "/v1/experiments/{key}/reports/features", "analyst",
     "Feature importance on the decisions of a window (computed and stored)", None, "200"),
    ("get", "/v1/experiments/{key}/candidates", "analyst",
     "Supplied candidate policies (pmf:<name>)", None, "200"),
    ("post", "/v1/experiments/{key}/promote", "admin",
     "Make a candidate the champion (needs a fresh OPE report saying better, or force)",
     promotion.Promote, "200"),
    ("post", "/v1/experiments/{key}/rollback", "admin",
     "Restore the champion before the newest promotion", None, "200"),
    ("post", "/v1/plan", "analyst",
     "Decisions and days until an A/B comparison and an OPE estimate reach a CI half-width",
     plan.PlanRequest, "200"),
]

QUERY_PARAMETERS: dict[str, list[dict[str, Any]]] = {
    "/v1/audit": [
        {"name": "action", "in": "query", "schema": {"type": "string"}},
        {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        {"name": "limit", "in": "query",
         "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
    "/v1/experiments/{key}/decisions": [
        {"name": "unit_id", "in": "query", "schema": {"type": "string"}},
        {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        {"name": "limit", "in": "query",
         "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
        {"name": "explain", "in": "query", "schema": {"type": "boolean"}}],
    "/v1/experiments/{key}/reports/ope": [
        {"name": "candidates", "in": "query", "schema": {"type": "string"},
         "description": "comma-separated: model:latest, model:<n>, uniform, fixed:<action>, "
                        "pmf:<name>, vw:<exploration>,<param>=<value>... (repeatable)"},
        {"name": "intervals", "in": "query", "schema": {
            "type": "string", "enum": ["analytic", "bootstrap", "sequence"],
            "default": "analytic"}},
        {"name": "estimator", "in": "query", "schema": {
            "type": "string", "enum": ["ips", "snips", "dm", "dr", "switch-dr", "dr-os"],
            "default": "dr"}, "description": "estimator of the verdict"},
        {"name": "level", "in": "query", "schema": {"type": "number", "default": 0.95}},
        {"name": "bootstrap_samples", "in": "query",
         "schema": {"type": "integer", "minimum": 100, "maximum": 10000, "default": 1000}},
        {"name": "seed", "in": "query", "schema": {"type": "integer", "default": 0}},
        {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}}],
    "/v1/experiments/{key}/reports/drift": [
        *({"name": name, "in": "query", "schema": {"type": "string", "format": "date-time"},
           "description": text} for name, text in (
            ("recent_since", "start of the recent window (default: recent_until - 24 h)"),
            ("recent_until", "end of the recent window, exclusive (default: now)"),
            ("reference_since", "start of the reference window (default: reference_until "
             "minus the recent window's length)"),
            ("reference_until", "end of the reference window, exclusive (default: "
             "recent_since; the windows must not overlap)"))),
        {"name": "threshold", "in": "query", "schema": {
            "type": "number", "exclusiveMinimum": 0, "maximum": 10, "default": 0.25},
         "description": "PSI above which a feature alerts (usual: 0.1 moderate, 0.25 major)"},
        {"name": "alpha", "in": "query", "schema": {
            "type": "number", "exclusiveMinimum": 0, "maximum": 0.5},
         "description": "significance level of the reward and model-quality tests "
                        "(default: the experiment's alpha)"},
        {"name": "sample", "in": "query", "schema": {
            "type": "integer", "minimum": 100, "maximum": 100000, "default": 10000},
         "description": "at most this many decisions of each window are read for the PSI"}],
    "/v1/experiments/{key}/reports/fairness": [
        {"name": "attribute", "in": "query", "required": True, "schema": {"type": "string"},
         "description": "context field to audit: `gender` or `user.gender`"},
        {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "top", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                  "maximum": 20, "default": 10}},
        {"name": "alpha", "in": "query",
         "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 0.5},
         "description": "significance level (default: the experiment's alpha)"},
        {"name": "samples", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                      "maximum": 1000, "default": 200},
         "description": "logged contexts sampled for the counterfactual audit"}],
    "/v1/experiments/{key}/reports/features": [
        {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}}],
    "/v1/experiments/{key}/reports/ab": [
        {"name": "segment", "in": "query", "schema": {"type": "string"},
         "description": "context field to break down by: `country` or `user.country`"},
        {"name": "top", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                  "maximum": 50, "default": 10}},
        {"name": "lift", "in": "query", "schema": {"type": "number", "default": 0.05},
         "description": "relative lift for the power analysis"},
        {"name": "include_open", "in": "query", "schema": {"type": "boolean", "default": True},
         "description": "count decisions whose reward window is still open"},
        {"name": "format", "in": "query",
         "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"}}],
}

# Success bodies that are not JSON.
RESPONSE_CONTENT: dict[str, dict[str, Any]] = {
    "/metrics": {"text/plain": {"schema": {"type": "string"}}},
    "/v1/experiments/{key}/reports/ab": {"application/json": {"schema": OBJ},
                                         "text/csv": {"schema": {"type": "string"}}},
    # Personalizer's `model` export: the VW model file.
    **{f"{prefix}/model": {"application/octet-stream": {
        "schema": {"type": "string", "format": "binary"}}}
       for prefix, _name in personalizer_routes.PREFIXES},
}

# Statuses a route answers besides its success status and, for routes behind a key,
# ERROR_STATUSES: (method, path) -> {status: (description, schema or None for any object)}.
OTHER_RESPONSES: dict[tuple[str, str], dict[str, tuple[str, Any]]] = {
    ("post", "/v1/events/{event_id}/rewards"): {
        "200": ("Duplicate: this idempotency_key was already counted (`status: duplicate`)",
                None)},
    ("get", "/readyz"): {"503": ("Database unreachable or not migrated", ERROR)},
}

ERROR_STATUSES = {"400": "Malformed or invalid", "401": "No or bad key", "403": "Scope",
                  "404": "Not found", "409": "Conflict", "413": "Too large",
                  "415": "Not JSON", "422": "Impossible request", "429": "Rate limited",
                  "503": "Database unavailable; retry"}


# Success bodies with a schema of their own (others: any JSON object).
RESPONSE_SCHEMAS = {
    "/v1/experiments/{key}/rank": {"$ref": "#/components/schemas/RankResponse"},
    # The versioned Personalizer prefixes list evaluations as a bare array (GET) and answer
    # one evaluation (POST) on the same path.
    **{f"{prefix}/evaluations": {"type": ["array", "object"]}
       for prefix, name in personalizer_routes.PREFIXES
       if name != personalizer_routes.API_BLUEPRINT},
}


def _operation(method: str, path: str, scope: str | None, summary: str,
               request: dict[str, Any] | None, status: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary + (f" (scope: {scope})" if scope else ""),
        "responses": {status: {"description": "OK", "content": RESPONSE_CONTENT.get(
            path, {"application/json": {"schema": RESPONSE_SCHEMAS.get(path, OBJ)}})}},
    }
    for code, (text, schema) in OTHER_RESPONSES.get((method, path), {}).items():
        operation["responses"][code] = {"description": text, "content": {
            "application/json": {"schema": schema or OBJ}}}
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in _path_names(path)]
    parameters += QUERY_PARAMETERS.get(path, [])
    if status == "204":  # no body, so no content type
        operation["responses"][status] = {"description": "No Content"}
    if parameters:
        operation["parameters"] = parameters
    if request:
        operation["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": request}}}
    if scope:
        operation["security"] = [{"bearer": []}]
        for code, text in ERROR_STATUSES.items():
            operation["responses"][code] = {"description": text, "content": {
                "application/json": {"schema": ERROR}}}
    return operation


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def spec(endpoints: list[Endpoint] | None = None) -> dict[str, Any]:
    """The document for `endpoints` (default: every endpoint of the service)."""
    rows = ENDPOINTS if endpoints is None else endpoints
    bodies, generated = openapi_bodies.schemas(r[4] for r in rows if r[4] is not None)
    if set(generated) & set(SCHEMAS):
        raise ValueError(f"body schemas named like fixed ones: {set(generated) & set(SCHEMAS)}")
    paths: dict[str, dict[str, Any]] = {}
    for method, path, scope, summary, request, status in rows:
        paths.setdefault(path, {})[method] = _operation(
            method, path, scope, summary, None if request is None else bodies[request], status)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tailor", "version": "1",
                 "description": "Self-hosted contextual-bandit experimentation service."},
        "paths": paths,
        "components": {"schemas": {**SCHEMAS, **generated}, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"}}},
    }
