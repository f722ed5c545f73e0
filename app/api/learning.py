"""Learning status, and model snapshots: list, download (VW bytes), import."""

from __future__ import annotations

from flask import Response, current_app, jsonify, request

from app import db
from app.api import bp
from app.auth import current_principal, requires, team_experiment
from app.errors import APIError
from experiments import clock
from experiments.learning import imports, snapshots
from experiments.learning.snapshots import SnapshotInfo
from experiments.learning.status import learning_status


def _serialize(info: SnapshotInfo, serving: int | None) -> dict:
    return {"version": info.version, "arguments": info.arguments,
            "examples_learned": info.examples_learned, "source": info.source,
            "size_bytes": info.size_bytes, "created_at": clock.iso(info.created_at),
            "serving": info.version == serving}


@bp.get("/experiments/<key>/learning")
@requires("analyst")
def learning(key: str):
    return jsonify(learning_status(db.session(), team_experiment(key)))


@bp.get("/experiments/<key>/models")
@requires("analyst")
def list_models(key: str):
    session = db.session()
    experiment = team_experiment(key)
    serving = snapshots.serving_info(session, experiment)
    version = serving.version if serving else None
    return jsonify({"serving_version": version, "models": [
        _serialize(m, version) for m in snapshots.listing(session, experiment.id)]})


@bp.get("/experiments/<key>/models/<version>")
@requires("analyst")
def download_model(key: str, version: str):
    model = snapshots.find(db.session(), team_experiment(key), version)
    return Response(model.data, mimetype="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{key}-v{model.version}.vw"',
        "X-Tailor-Model-Version": str(model.version),
        "X-Tailor-Model-Arguments": model.arguments})


@bp.post("/experiments/<key>/models")
@requires("admin")
def import_model(key: str):
    # A model is bigger than a JSON request may be: raise the limit for this route only.
    request.max_content_length = current_app.config["MAX_MODEL_BYTES"]
    experiment = team_experiment(key)
    data = request.get_data(cache=False)
    if not data:
        raise APIError(400, "validation_error", "send the model file as the request body",
                       [{"field": "body", "message": "empty"}])
    model = imports.import_model(db.session(), experiment, data, request.args.get("arguments"),
                                 current_principal())
    info = snapshots.SnapshotInfo(model.version, model.arguments, model.examples_learned,
                                  model.source, len(model.data), model.created_at, None)
    serving = snapshots.serving_info(db.session(), experiment)
    return jsonify(_serialize(info, serving.version if serving else None)), 201
