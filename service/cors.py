"""Opt-in CORS for every route: off unless ``CORS_ORIGINS`` lists origins (a list, or a comma-separated string;
``*`` allows any). Allowed requests get ``Access-Control-Allow-Origin`` (the origin itself, with ``Vary: Origin``,
unless ``*``), the headers a script may read (``Link`` for paging, ``X-SPARQL-Truncated``), and preflight answers
(``OPTIONS`` with ``Access-Control-Request-Method``) the methods and request headers allowed. Credentials are never
allowed: the read API needs none and the write endpoints take a bearer token, not cookies.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

bp = Blueprint("cors", __name__)

EXPOSED = "Link, X-SPARQL-Truncated, Content-Type"
METHODS = "GET, POST, OPTIONS"
MAX_AGE = "600"


def allowed_origins(config) -> list[str]:
    raw = config.get("CORS_ORIGINS")
    if not raw:
        return []
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return [str(o).strip().rstrip("/") for o in items if str(o).strip()]


def allow_origin(origin: str | None, allowed: list[str]) -> str | None:
    """The Access-Control-Allow-Origin value for this request's Origin, or None when it is not allowed."""
    if not origin or not allowed:
        return None
    if "*" in allowed:
        return "*"
    return origin if origin.rstrip("/") in allowed else None


@bp.after_app_request
def add_cors_headers(response: Response) -> Response:
    allowed = allowed_origins(current_app.config)
    if not allowed:
        return response
    if "*" not in allowed:
        response.vary.add("Origin")  # the answer depends on the Origin even when it is a refusal
    value = allow_origin(request.headers.get("Origin"), allowed)
    if value is None:
        return response
    response.headers["Access-Control-Allow-Origin"] = value
    response.headers["Access-Control-Expose-Headers"] = EXPOSED
    if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
        response.headers["Access-Control-Allow-Methods"] = METHODS
        requested = request.headers.get("Access-Control-Request-Headers")
        response.headers["Access-Control-Allow-Headers"] = requested or "Accept, Content-Type, Authorization"
        response.headers["Access-Control-Max-Age"] = MAX_AGE
    return response
