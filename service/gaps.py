"""``/gaps``: threat classes with their defense and attack counts, uncovered first (the ``gaps`` named query)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from mfmkg.errors import NotAcceptable
from mfmkg.cache import cached_run_named
from mfmkg.named_queries import get_query
from mfmkg.service.context import ctx
from mfmkg.tables import to_csv

bp = Blueprint("gaps", __name__)


def gaps_rows(args: dict) -> tuple[list[str], list[dict]]:
    query = get_query("gaps")
    result = cached_run_named(ctx().store, query, args)
    return result.variables, result.values()


def gap_filters() -> dict:
    """The request's values for the gaps query's parameters (modality, flow, axis, level, family, inferred)."""
    names = [p.name for p in get_query("gaps").params]
    return {k: request.args[k] for k in names if request.args.get(k)}


@bp.get("/gaps", defaults={"ext": None})
@bp.get("/gaps.<any(json, csv):ext>")
def gaps(ext: str | None):
    fmt = ext or _negotiate()
    filters = gap_filters()
    variables, rows = gaps_rows(filters)
    if fmt == "csv":
        resp = Response(to_csv(variables, rows), mimetype="text/csv")
    else:
        uncovered = sum(1 for r in rows if not r["defenses"])
        resp = jsonify({"filters": filters, "count": len(rows), "uncovered": uncovered, "rows": rows})
    if ext is None:
        resp.headers["Vary"] = "Accept"
    return resp


def _negotiate() -> str:
    """JSON unless CSV is preferred; no Accept header means JSON; an unsatisfiable Accept is 406."""
    accept = request.accept_mimetypes
    if not accept:
        return "json"
    best = accept.best_match(["application/json", "text/csv"])
    if best is None:
        raise NotAcceptable("/gaps is available as application/json or text/csv")
    return "csv" if best == "text/csv" else "json"
