"""Typed errors of the core. The service maps each to an RFC 9457 problem response in one place."""

from __future__ import annotations


class MfmkgError(Exception):
    """Base class. ``status`` is the HTTP status the service answers with; ``title`` its short name."""

    status = 500
    title = "Internal error"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail

    def problem(self) -> dict:
        """The RFC 9457 body (without ``instance``)."""
        return {"type": "about:blank", "title": self.title, "status": self.status, "detail": self.detail}


class QuerySyntaxError(MfmkgError):
    """A SPARQL query or update that does not parse; ``detail`` is the parser's message."""

    status = 400
    title = "SPARQL syntax error"


class QueryRefused(MfmkgError):
    """A request the read-only endpoint will not run (updates, SERVICE/LOAD to non-allowlisted URLs)."""

    status = 403
    title = "Forbidden"


class QueryTimeout(MfmkgError):
    """A query stopped because it ran past the configured time limit."""

    status = 503
    title = "Query time limit exceeded"


class NotAcceptable(MfmkgError):
    """No representation satisfies the request's Accept header."""

    status = 406
    title = "Not Acceptable"


class UnsupportedMediaType(MfmkgError):
    """The request body has a content type this endpoint does not read."""

    status = 415
    title = "Unsupported Media Type"


class BadRequest(MfmkgError):
    """A request whose parameters are missing or malformed; ``detail`` names the parameter."""

    status = 400
    title = "Bad Request"


class NotFound(MfmkgError):
    status = 404
    title = "Not Found"


class UnknownQuery(NotFound):
    """A named query that does not exist."""

    title = "Unknown query"


class StoreError(MfmkgError):
    """The store could not be opened, read or written (locked, read-only, unreachable)."""

    status = 503
    title = "Store unavailable"


class OntologyError(MfmkgError):
    """An ontology file that does not parse; carries the file and line."""

    status = 500
    title = "Ontology error"

    def __init__(self, path: str, line: int | None, message: str):
        self.path, self.line, self.message = path, line, message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")


class LoadError(MfmkgError):
    """One bad literature entry or file: names the file, line and field."""

    status = 400
    title = "Invalid input"

    def __init__(self, path: str, line: int | None, field: str | None, reason: str):
        self.path, self.line, self.field, self.reason = path, line, field, reason
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {field}: {reason}" if field else f"{where}: {reason}")
