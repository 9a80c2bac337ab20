"""``GET /openapi.json``: an OpenAPI 3.1 document generated from the running app, so it cannot drift from it.

Every rule of the Flask URL map becomes a path (``<any(json, csv):ext>`` an enum path parameter, ``<id>`` a string),
with one operation per method and the view's docstring as summary. The named-query route is expanded into one path
per query, whose ``#+ param`` headers become typed query parameters; term and enum parameters list the values the
graph holds now. Routes of other blueprints get their media types and parameters from ``HINTS``; an endpoint with
no hint is documented as answering ``*/*``. Every operation answers errors as ``application/problem+json``.
"""

from __future__ import annotations

import fnmatch
import inspect
import re

from flask import Blueprint, current_app

from mfmkg import __version__
from mfmkg.named_queries import NamedQuery, Param, allowed_values, load_queries
from mfmkg.service.context import ctx
from mfmkg.service.representation import MEDIA, json_response

bp = Blueprint("openapi", __name__)

JSON, PROBLEM, CSV, TSV = "application/json", "application/problem+json", "text/csv", "text/tab-separated-values"
_ARG = re.compile(r"<(?:(?P<conv>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")
_SPARQL_TYPES = ["application/sparql-results+json", "application/sparql-results+xml", CSV, TSV, JSON,
                 "text/turtle", "application/n-triples", "application/ld+json", "application/rdf+xml"]
_RDF_TYPES = ["text/turtle", "application/n-triples", "application/ld+json", "application/rdf+xml"]
_PAGING = [
    {"name": "_size", "in": "query", "required": False, "description": "rows per page (JSON default 100)",
     "schema": {"type": "integer", "minimum": 1}},
    {"name": "_next", "in": "query", "required": False, "description": "the opaque token of the next page",
     "schema": {"type": "string"}},
]


def _q(name: str, description: str, schema: dict | None = None, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


#: What the URL map cannot tell: media types, parameters, bodies, extra statuses. Keys are endpoint globs.
HINTS: dict[str, dict] = {
    "meta.health": {"media": [JSON], "statuses": {"503": [JSON]}},
    "meta.version": {"media": [JSON]},
    "gaps.gaps": {"media": [JSON, CSV], "query_params_from": ("gaps", ("modality", "flow", "axis", "level"))},
    "sparql.sparql": {
        "media": _SPARQL_TYPES + ["text/html"],
        "params": {"get": [_q("query", "a SPARQL 1.1 query; without it, an RDF Accept type gets the Service "
                                    "Description and a browser the query page"),
                           _q("default-graph-uri", "a graph of the default graph (repeatable)"),
                           _q("named-graph-uri", "a named graph of the dataset (repeatable)")]},
        "body": {"post": {"application/x-www-form-urlencoded": {
            "type": "object", "required": ["query"],
            "properties": {"query": {"type": "string"}, "default-graph-uri": {"type": "string"},
                           "named-graph-uri": {"type": "string"}}},
            "application/sparql-query": {"type": "string"}}},
    },
    "reload.*": {"media": [JSON], "statuses": {"422": [JSON]}, "security": True},
    "queries.list_queries": {"media": [JSON]},
    "queries.run_query": {"media": [JSON, CSV, TSV]},
    "openapi.*": {"media": [JSON]},
    "resources.publications_list": {"media": [JSON, CSV], "params": {"get": _PAGING}},
    "resources.*": {"media": [JSON, CSV]},
    "graphstore.graph_store": {"media": _RDF_TYPES, "statuses": {"404": [PROBLEM], "406": [PROBLEM]},
                               "params": {"get": [_q("graph", "the IRI of a named graph"),
                                                  _q("default", "present (empty) for the default graph")]}},
    "graphstore.export": {"media": _RDF_TYPES},
    "analysis.coverage": {"media": [JSON, CSV], "params": {"get": [
        _q("inferred", "include inferred coverage links", {"type": "boolean"}),
        _q("threat", "one threat class (local name, CURIE, IRI or label)"), _q("defense", "one defense class")]}},
    "analysis.dci": {"media": [JSON, CSV], "params": {"get": [
        _q("weights", "threat weights", {"type": "string", "enum": ["uniform", "evidence"]}),
        _q("inferred", "count inferred coverage links", {"type": "boolean"}),
        _q("portfolio", "comma-separated defense ids whose joint DCI to report")]}},
    "analysis.minimax": {"media": [JSON, CSV], "params": {"get": [
        _q("budget", "the budget (sum of defense costs)", {"type": "number", "minimum": 0}, required=True),
        _q("weights", "threat impacts", {"type": "string", "enum": ["uniform", "evidence"]}),
        _q("inferred", "count inferred coverage links", {"type": "boolean"}),
        _q("coverable_only", "ignore threats no defense can cover", {"type": "boolean"}),
        _q("method", "solver", {"type": "string", "enum": ["auto", "exact", "greedy"]}),
        _q("time_limit", "solver time limit in seconds", {"type": "number", "minimum": 0, "maximum": 120})]}},
    "analysis.flow": {"media": [JSON], "params": {"post": [
        _q("share", "circuit-breaker share of a channel's capacity", {"type": "number"})]},
        "body": {"post": {JSON: {"type": "object"}, "application/yaml": {"type": "string"}}}},
    "exports.stix": {"media": ["application/stix+json;version=2.1"]},
    "exports.release": {"media": ["text/turtle", "application/ld+json"]},
    "exports.*": {"media": [JSON]},
    "cachestats.*": {"media": [JSON]},
    "publications.*": {"media": [JSON], "security": True,
                       "statuses": {"401": [PROBLEM], "413": [PROBLEM], "415": [PROBLEM], "422": [JSON]}},
}


def hint(endpoint: str) -> dict:
    for pattern, h in HINTS.items():
        if fnmatch.fnmatchcase(endpoint, pattern):
            return h
    return {}


def openapi_path(rule: str) -> tuple[str, list[dict]]:
    """``/x/<any(json, csv):ext>`` -> (``/x/{ext}``, its path parameters)."""
    params = []
    for m in _ARG.finditer(rule):
        schema: dict = {"type": "string"}
        if m.group("conv") == "any":
            schema["enum"] = [a.strip().strip("'\"") for a in (m.group("args") or "").split(",") if a.strip()]
        elif m.group("conv") == "int":
            schema = {"type": "integer"}
        params.append({"name": m.group("name"), "in": "path", "required": True, "schema": schema})
    return _ARG.sub(lambda m: "{" + m.group("name") + "}", rule), params


def param_schema(p: Param) -> dict:
    if p.type == "integer":
        return {"type": "integer", "minimum": -10**18, "maximum": 10**18}
    if p.type == "boolean":
        return {"type": "boolean"}
    if p.type == "iri":
        return {"type": "string", "format": "iri"}
    values = allowed_values(ctx().store, p)
    if values is not None:
        return {"type": "string", "enum": values}
    return {"type": "string"}


def query_parameters(query: NamedQuery, names: tuple[str, ...] | None = None) -> list[dict]:
    out = []
    for p in query.params:
        if names is not None and p.name not in names:
            continue
        schema = param_schema(p)
        if p.default is not None and p.default != "-":
            schema["default"] = {"true": True, "false": False}.get(p.default, p.default) \
                if p.type == "boolean" else (int(p.default) if p.type == "integer" else p.default)
        out.append({"name": p.name, "in": "query", "required": p.required,
                    "description": p.description or p.type, "schema": schema})
    return out


def operation(endpoint: str, method: str, path: str, view, path_params: list[dict], extra_params: list[dict],
              media: list[str], summary: str | None = None) -> dict:
    h = hint(endpoint)
    doc = inspect.getdoc(view) or ""
    first, _, rest = doc.partition("\n")
    ext = next((p for p in path_params if p["name"] == "ext" and "enum" in p["schema"]), None)
    if ext:  # a suffix route answers in the formats its suffixes name
        media = [MEDIA[e] for e in ext["schema"]["enum"] if e in MEDIA] or media
    responses = {"200": {"description": "OK", "content": {m: {} for m in media}}}
    for status, types in h.get("statuses", {}).items():
        responses[status] = {"description": status, "content": {t: {} for t in types}}
    responses["default"] = {"description": "an error, as an RFC 9457 problem",
                            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    op = {"operationId": _operation_id(method, endpoint, path), "summary": summary or first or endpoint,
          "tags": [endpoint.split(".")[0]],
          "parameters": path_params + extra_params + h.get("params", {}).get(method, []),
          "responses": responses}
    if rest.strip():
        op["description"] = rest.strip()
    body = h.get("body", {}).get(method)
    if body:
        op["requestBody"] = {"required": True, "content": {t: {"schema": s} for t, s in body.items()}}
    if h.get("security"):
        op["security"] = [{"bearerAuth": []}]
    return op


def _operation_id(method: str, endpoint: str, path: str) -> str:
    """Method, endpoint and the path's distinguishing words: unique even when one view serves several rules."""
    words = re.findall(r"[A-Za-z0-9]+", path)
    return re.sub(r"\W", "_", f"{method}_{endpoint}__" + "_".join(words))


def build(app) -> dict:
    paths: dict[str, dict] = {}
    queries = load_queries()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        methods = sorted(m.lower() for m in (rule.methods or set()) - {"HEAD", "OPTIONS"})
        path, path_params = openapi_path(rule.rule)
        h = hint(rule.endpoint)
        media = h.get("media", ["*/*"])
        if rule.endpoint == "queries.run_query":
            for q in queries.values():
                qpath = path.replace("{name}", q.name)
                qparams = [p for p in path_params if p["name"] != "name"]
                extra = query_parameters(q) + _PAGING
                for m in methods:
                    op = operation(rule.endpoint, m, qpath, view, qparams, extra, media, summary=q.title or q.name)
                    op["description"] = q.description
                    op["tags"] = ["queries"] + q.tags
                    paths.setdefault(qpath, {})[m] = op
            continue
        extra = []
        if "query_params_from" in h and h["query_params_from"][0] in queries:
            name, names = h["query_params_from"]
            extra = query_parameters(queries[name], names)
        for m in methods:
            paths.setdefault(path, {})[m] = operation(rule.endpoint, m, path, view, path_params, extra, media)
    return {
        "openapi": "3.1.0",
        "info": {"title": "mfmkg", "version": __version__,
                 "description": "Knowledge graph and query service for the security and safety of multimodal "
                                "foundation models: SPARQL, named queries and REST resources."},
        "paths": paths,
        "components": {
            "schemas": {"Problem": {"type": "object", "required": ["title", "status"], "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "instance": {"type": "string"}}}},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


@bp.get("/openapi.json")
def openapi():
    """This document: every route of the service and every named query with its typed parameters."""
    return json_response(build(current_app), negotiated=False)
