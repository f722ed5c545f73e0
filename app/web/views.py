"""The analyst pages. Thin: who is it, fetch the report, render."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Response, g, redirect, render_template, request, url_for
from markupsafe import Markup

from app import db
from app.api.reports import csv_response
from app.errors import APIError
from app.web import bp, charts, features_section, list_rows, login, ope_section, verdicts
from experiments import audit, registry
from experiments.errors import DomainError
from experiments.learning.status import learning_status
from experiments.reports import build_report, parse_options, to_csv

REPORT_ARGS = ("segment", "lift", "include_open", "top", "multiple_testing")


def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    """The page needs a signed-in analyst or admin key; otherwise go to /login."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.principal = login.page_principal(db.session())
        if g.principal is None:
            return redirect(url_for("web.login_form", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper


@bp.context_processor
def _page_context() -> dict[str, Any]:
    return {"csrf_token": login.csrf_token, "principal": g.get("principal")}


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; "
                                "frame-ancestors 'none'; form-action 'self'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.get("/")
def home():
    """A landing page: where the analyst pages, the API description and the docs are."""
    return render_template("home.html")


@bp.errorhandler(APIError)
def _api_error(exc: APIError) -> tuple[str, int]:
    return render_template("error.html", status=exc.status, message=exc.message), exc.status


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> tuple[str, int]:
    status = 404 if exc.code == "not_found" else 400
    return render_template("error.html", status=status, message=exc.message), status


@bp.get("/login")
def login_form():
    return render_template("login.html", next=request.args.get("next", ""), error=None)


@bp.post("/login")
def login_submit():
    login.check_csrf()
    target = login.safe_next(request.form.get("next"), url_for("web.experiments"))
    try:
        login.sign_in(db.session(), request.form.get("key", ""))
    except APIError as exc:
        return render_template("login.html", next=request.form.get("next", ""),
                               error=exc.message), exc.status
    return redirect(target)


@bp.post("/logout")
def logout():
    login.check_csrf()
    login.sign_out()
    return redirect(url_for("web.login_form"))


@bp.get("/experiments")
@signed_in
def experiments():
    session = db.session()
    rows = registry.list_for_team(session, g.principal.team_id)
    # Each row's verdict needs the experiment's A/B report: kept a minute (list_rows).
    cache = list_rows.of_app()
    summaries = {e.key: verdicts.list_row(cache.headline(session, e),
                                          learning_status(session, e)) for e in rows}
    return render_template("experiments.html", experiments=rows, summaries=summaries)


@bp.get("/experiments/<key>")
@signed_in
def experiment_page(key: str):
    session = db.session()
    experiment = registry.get(session, g.principal.team_id, key)
    options = parse_options(request.args)
    report = build_report(session, experiment, options)
    query = {name: request.args[name] for name in REPORT_ARGS if request.args.get(name)}
    ope = ope_section.context(session, experiment)  # the newest stored OPE report
    return render_template(
        "experiment.html", experiment=experiment, report=report, options=options,
        query=query, timeline_svg=Markup(charts.timeline_svg(report)),
        forest_svg=Markup(charts.forest_svg(report)), ci_bar=charts.ci_bar,
        **verdicts.page_verdicts(session, experiment, report, ope["ope"]), **ope,
        **features_section.context(session, experiment))  # the newest feature importance


@bp.get("/experiments/<key>/report.<any(json, csv):fmt>")
@signed_in
def report_download(key: str, fmt: str):
    session = db.session()
    experiment = registry.get(session, g.principal.team_id, key)
    report = build_report(session, experiment, parse_options(request.args))
    audit.record_access(session, g.principal, "report.export", key,
                        {"report": "ab", "format": fmt, "via": "page"})
    if fmt == "csv":
        return csv_response(to_csv(report), f"{key}-ab-report.csv")
    response = Response(_json(report), mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="{key}-ab-report.json"'
    return response


def _json(report: dict[str, Any]) -> str:
    from flask import current_app

    return current_app.json.dumps(report, indent=2)
