"""Model and logs administration: `model` (GET export, PUT import, DELETE reset),
`model/properties`, `logs` (DELETE) and `logs/properties` (`experiments.offline.admin`);
`logs/interactions` and `logs/observations` (local inference) answer 403 `InvalidApiAccess`.

The exported file is the VW model the bandit serves: `vw -i <file>` loads it (its
arguments, which VW also reads from the file, are in `X-Tailor-Model-Arguments`). An
imported file must load in VW and rank, else 400 `InvalidModelImportFormat`.
"""

from __future__ import annotations

from typing import NoReturn

from flask import Response, current_app, jsonify, request

from app import db
from app.auth import current_principal
from app.personalizer.errors import PersonalizerError
from app.personalizer.routes import experiment, route
from experiments import clock
from experiments.offline import admin


@route("GET", "/model", scope="admin", summary="Export the served VW model", status="200")
def get_model() -> Response:
    if request.args.get("signed", "false").lower() == "true":
        raise PersonalizerError.invalid("signed", "signed model archives are Azure's; Tailor "
                                        "exports the VW model file itself: omit signed")
    target = experiment()
    exported = admin.export(db.session(), target)
    return Response(exported.data, mimetype="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{target.key}-v{exported.version}.vw"',
        "X-Tailor-Model-Version": str(exported.version),
        "X-Tailor-Model-Arguments": exported.arguments})


@route("PUT", "/model", scope="admin", invalid="InvalidModelImportFormat",
       summary="Import a VW model file", status="204")
def import_model() -> Response:
    request.max_content_length = current_app.config["MAX_MODEL_BYTES"]
    target = experiment()
    data = request.get_data(cache=False)
    if not data:
        raise PersonalizerError.invalid("body", "send the model file as the request body")
    admin.import_model(db.session(), target, data, current_principal())
    return Response(status=204)


@route("DELETE", "/model", scope="admin", summary="Reset the model", status="204")
def reset_model() -> Response:
    admin.reset(db.session(), experiment(), current_principal())
    return Response(status=204)


@route("GET", "/model/properties", scope="admin", summary="Model properties", status="200")
def model_properties() -> Response:
    created, modified = admin.properties(db.session(), experiment())
    return jsonify({"creationTime": clock.iso(created), "lastModifiedTime": clock.iso(modified)})


@route("DELETE", "/logs", scope="admin", summary="Delete the logged decisions and rewards",
       status="204")
def delete_logs() -> Response:
    admin.delete_logs(db.session(), experiment(), current_principal())
    return Response(status=204)


@route("GET", "/logs/properties", scope="admin", summary="Date range of the logs",
       status="200")
def logs_properties() -> Response:
    first, last = admin.log_range(db.session(), experiment())
    return jsonify({"dateRange": {"from": clock.iso(first), "to": clock.iso(last)}})


# The reinforcement_learning SDK's local-inference logs (flatbuffers batches; "should not be
# used by the customer", says the specification): Tailor decides on the server only, so
# these answer with Personalizer's "API disabled" code and the way to bring such data.
LOCAL_INFERENCE = ("Tailor ranks on the server and does not read the reinforcement_learning "
                   "SDK's binary {what} logs (local inference): call rank and reward instead, "
                   "or import logged decisions as DSJson with `tailor import-log`")


@route("POST", "/logs/interactions", scope="client", summary="Not served: local inference",
       status="403")
def log_interactions() -> Response:
    return _local_inference("interaction")


@route("POST", "/logs/observations", scope="client", summary="Not served: local inference",
       status="403")
def log_observations() -> Response:
    return _local_inference("observation")


def _local_inference(what: str) -> NoReturn:
    experiment()  # first: another team's resource is a 404, as everywhere
    raise PersonalizerError(403, "InvalidApiAccess", LOCAL_INFERENCE.format(what=what),
                            inner="not_supported")
