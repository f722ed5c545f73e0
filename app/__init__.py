"""Tailor's Flask service: `create_app` lists its parts."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

PROFILES = "tailor.profiles"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    from app import (
        api,
        auth,
        benchmark,
        cli,
        db,
        errors,
        hot,
        http,
        metrics,
        ops,
        personalizer,
        web,
    )
    from app import config as settings
    from experiments.policies import PolicyCache

    app = Flask(__name__)
    app.config.update(settings.load(config))
    app.json.sort_keys = False  # keep documented field order in responses
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    db.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    app.extensions["tailor.policies"] = PolicyCache(app.config["MODEL_CHECK_SECONDS"])
    app.register_blueprint(api.bp)
    app.register_blueprint(ops.bp)
    personalizer.init_app(app)
    web.init_app(app)  # analyst pages (HTML) and their session cookie
    benchmark.init_app(app)
    metrics.init_app(app)
    cli.init_app(app)
    app.after_request(http.no_type_on_204)
    hot.init_app(app, *services(app))
    return app


def services(app: Flask) -> tuple[Any, Any]:
    """The rank and reward services, built once: they own their caches and their writes."""
    from app import db, http
    from experiments.profiles import ProfileCache
    from experiments.services import RankService, RewardService, Settings

    def settings() -> Settings:
        profiles = app.extensions.get(PROFILES)
        if profiles is None:  # made on first use, with the configuration then
            profiles = app.extensions.setdefault(
                PROFILES, ProfileCache(app.config.get("PROFILE_CHECK_SECONDS", 1.0)))
        return Settings(app.config["MAX_ACTIONS"], http.context_limits_of(app), profiles)

    ranks = RankService(app.extensions[db.EXTENSION], app.extensions[db.DIRECT],
                        app.extensions["tailor.policies"], settings)
    return ranks, RewardService(app.extensions[db.DIRECT])
