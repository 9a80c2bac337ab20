"""Every error leaves the service as RFC 9457 ``application/problem+json``; this is the one place that maps them."""

from __future__ import annotations

import logging

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from mfmkg.errors import MfmkgError, NotAcceptable

PROBLEM = "application/problem+json"
log = logging.getLogger("mfmkg.service")


def problem_response(status: int, title: str, detail: str, **extra) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail,
            "instance": request.path, **extra}
    return Response(json.dumps(body), status=status, mimetype=PROBLEM)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(MfmkgError)
    def _typed(exc: MfmkgError):
        resp = problem_response(exc.status, exc.title, exc.detail)
        if isinstance(exc, NotAcceptable):
            resp.headers["Vary"] = "Accept"  # the answer depended on Accept, so caches must key on it
        return resp

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        resp = problem_response(exc.code or 500, exc.name, exc.description or exc.name)
        for key in ("Allow", "WWW-Authenticate"):
            if exc.get_response().headers.get(key):
                resp.headers[key] = exc.get_response().headers[key]
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s", request.path)
        return problem_response(500, "Internal Server Error", "an unexpected error occurred; see the server log")
