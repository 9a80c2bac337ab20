"""``/queries``: the named queries of ``queries/*.rq``, listed with their metadata and run with typed parameters.

``GET /queries/NAME`` (or ``NAME.json``, ``NAME.csv``, ``NAME.tsv``; otherwise ``Accept`` decides) takes the query's
parameters from the query string; a bad value is a 400 problem naming the parameter. JSON results are paged
(``_size``, default 100, at most ``MAX_ROWS``; ``_next``, an opaque token; a ``Link: rel="next"`` header) and carry
``truncated`` (true when rows follow on later pages). CSV and TSV are the W3C SPARQL result formats and hold up to
``MAX_ROWS`` rows per page, with the same ``_next`` paging.

Paging runs the whole query on every page and slices the result. Named queries are ours and cheap (class-level
work first, papers joined last), so that is simpler and safer than cursors held between requests; a query whose
full result is too big to compute per page belongs behind keyset paging instead, as ``/publications`` does.
"""

from __future__ import annotations

from flask import Blueprint, Response, url_for

from mfmkg.cache import cached_query
from mfmkg.errors import UnknownQuery
from mfmkg.named_queries import NamedQuery, allowed_values, bind_params, load_queries
from mfmkg.results import serialize
from mfmkg.service import paging
from mfmkg.service.catalog import json_rows, json_value
from mfmkg.service.context import ctx
from mfmkg.service.negotiate import content_type_header
from mfmkg.service.representation import MEDIA, choose, json_response, vary_on_accept
from mfmkg.store.base import SelectResult

bp = Blueprint("queries", __name__)
vary_on_accept(bp)
FORMATS = ("json", "csv", "tsv")


def shipped_query(name: str) -> NamedQuery:
    """A shipped query by name only (never a file path taken from a URL)."""
    queries = load_queries()
    if name not in queries:
        raise UnknownQuery(f"no named query {name!r}; known: {', '.join(sorted(queries))}")
    return queries[name]


def describe(query: NamedQuery) -> dict:
    """The query's metadata with the values its term parameters accept and the URLs it is served at."""
    meta = query.metadata()
    for p, pm in zip(query.params, meta["params"]):
        values = allowed_values(ctx().store, p)
        if values is not None:
            pm["values"] = values
    meta["href"] = url_for("queries.run_query", name=query.name)
    meta["formats"] = {f: url_for("queries.run_query", name=query.name, ext=f) for f in FORMATS}
    return meta


@bp.get("/queries")
def list_queries():
    """The named queries, with title, description, tags, typed parameters and URLs (JSON)."""
    choose(None, ("json",))
    items = [describe(q) for q in load_queries().values()]
    return json_response({"count": len(items), "queries": items}, negotiated=True)


@bp.get("/queries/<name>", defaults={"ext": None})
@bp.get("/queries/<name>.<any(json, csv, tsv):ext>")
def run_query(name: str, ext: str | None):
    """Run a named query with the parameters of the query string; JSON (paged), CSV or TSV."""
    from flask import request

    query = shipped_query(name)
    fmt = choose(ext, FORMATS)
    store = ctx().store
    bindings = bind_params(store, query, request.args.to_dict(flat=True))
    result = cached_query(store, query.sparql, bindings)
    if not isinstance(result, SelectResult):  # named queries are SELECTs; anything else is served unpaged
        raw = serialize(result, "application/sparql-results+json")
        return Response(raw.body, content_type=raw.media_type)
    size = paging.page_size(paging.DEFAULT_SIZE if fmt == "json" else int(ctx().config.get("MAX_ROWS") or 10000))
    offset = paging.decode_offset()
    page = result.rows[offset:offset + size]
    more = offset + size < len(result.rows)
    next_url = paging.next_url(paging.encode_token(offset + size)) if more else None
    if fmt == "json":
        resp = json_response({
            "query": query.name, "title": query.title,
            "params": {k: json_value(v) for k, v in bindings.items()},
            "vars": result.variables, "rows": json_rows(SelectResult(result.variables, page)),
            "count": len(page), "offset": offset, "total": len(result.rows),
            "truncated": more, "next": next_url,
        }, negotiated=ext is None)
    else:
        raw = serialize(SelectResult(result.variables, page), MEDIA[fmt])
        resp = Response(raw.body, content_type=content_type_header(MEDIA[fmt]))
        if ext is None:
            resp.vary.add("Accept")
    return paging.add_link(resp, next_url)
