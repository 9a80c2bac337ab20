"""The server-rendered web UI for analysts, under ``/ui`` (and the dashboard at ``/``).

Pages (every one also as ``.json``: the same URL plus ``.json`` returns the dict the page was rendered from):

* ``/`` and ``/ui/dashboard``: the gap list and two coverage heatmaps (inline SVG, ``service/svg.py``); each cell
  links to the threats behind it. The heatmaps alone: ``/ui/heatmaps/modality-family.svg``, ``flow-axis.svg``.
* ``/ui/threats`` (filters ``modality``, ``flow``, ``axis``, ``level``, ``family``, ``inferred``, ``families``),
  ``/ui/defenses``, ``/ui/attacks`` (``threat``), ``/ui/publications`` (``q``, ``page``).
* ``/ui/threats/<id>``, ``/ui/defenses/<id>``, ``/ui/attacks/<id>``, ``/ui/publications/<id>`` (id = the IRI's
  local name; for a publication everything after ``.../id/pub/``): links with their provenance (coverage links
  asserted or inferred, degree, rule, source paper, graph; literature links with kind, confidence, evidence and
  source). An unknown id is a 404 problem.
* ``/ui/queries`` and ``/ui/queries/<name>``: a form per named query, its results, CSV and JSON downloads
  (``/ui/queries/<name>.csv``).
* ``/ui/sparql``: an editor that runs queries against ``/sparql`` with fetch() (``static/ui.js``).
* ``/ui/resolve?iri=``: redirects to the page of an IRI.

Templates are autoescaped Jinja; the pages load only their own CSS and JS (Content-Security-Policy 'self').
"""

from __future__ import annotations

import json
from urllib.parse import quote

from flask import Blueprint, Response, redirect, render_template, request, url_for

from mfmkg.errors import BadRequest, MfmkgError, NotFound
from mfmkg.named_queries import NamedQuery, allowed_values, bind_params, load_queries, local_name, term_members
from mfmkg.namespaces import MFM, PREFIXES
from mfmkg.results import serialize
from mfmkg.service import svg, ui_data
from mfmkg.service.context import ctx
from mfmkg.store.base import SelectResult, to_python

bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static",
               static_url_path="/ui/static")

KIND_RULE = "any(threats, defenses, attacks, publications)"
TITLES = {"threats": "Threats", "defenses": "Defenses", "attacks": "Attacks", "publications": "Publications"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def page(template: str, data: dict, as_json: bool, status: int = 200, json_url: str | None = None,
         **extra) -> Response:
    """The page, or its ``.json`` twin: the same ``data``."""
    if as_json:
        return Response(json.dumps(data, ensure_ascii=False, default=str), status=status,
                        mimetype="application/json")
    json_url = json_url or quote(request.path) + ".json"  # re-encoded: an id may hold an escaped "/" (%2F)
    if request.query_string:
        json_url += "?" + request.query_string.decode("latin-1")
    return Response(render_template(template, data=data, json_url=json_url, **extra), status=status,
                    mimetype="text/html")


@bp.after_request
def _headers(resp: Response) -> Response:
    if resp.mimetype == "text/html" or resp.mimetype == "image/svg+xml":
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
    return resp


# --- dashboard ------------------------------------------------------------------------------------------------

def heatmap_svg(name: str, matrix: dict) -> str:
    cells = {}
    rows = {r["id"]: r["label"] for r in matrix["rows"]}
    cols = {c["id"]: c["label"] for c in matrix["cols"]}
    for c in matrix["cells"]:
        n, cov = c["threats"], c["covered"]
        where = f"{rows[c['row']]} × {cols[c['col']]}"
        if n:
            tip = (f"{where}: {cov} of {n} threat class{'es' if n != 1 else ''} covered by a defense, "
                   f"{c['uncovered']} uncovered")
            sub = "all covered" if not c["uncovered"] else f"{c['uncovered']} uncovered"
        else:
            tip, sub = f"{where}: no threat classes", "no threats"
        if c.get("attacks") is not None:
            tip += f"; {c['attacks']} SoK attack{'s' if c['attacks'] != 1 else ''}"
        cells[(c["row"], c["col"])] = svg.Cell(
            share=(cov / n) if n else None, text=f"{cov}/{n}" if n else "–", subtext=sub,
            tooltip=tip + ". Opens the list of these threats.", href=c["href"])
    return svg.heatmap(ident=f"heatmap-{name}", title=matrix["title"], description=matrix["description"],
                       row_title=matrix["row_title"], col_title=matrix["col_title"],
                       rows=list(rows.items()), cols=list(cols.items()), cells=cells)


@bp.get("/", defaults={"json": None})
@bp.get("/ui/dashboard.<any(json):json>")
def dashboard(json: str | None):
    data = ui_data.dashboard(request.args)
    svgs = {name: heatmap_svg(name, m) for name, m in data["heatmaps"].items()}
    return page("dashboard.html", data, bool(json), svgs=svgs, json_url=url_for("ui.dashboard", json="json"))


@bp.get("/ui/")
@bp.get("/ui/dashboard")
def dashboard_alias():
    return dashboard(None)


@bp.get("/ui/heatmaps/<any('modality-family', 'flow-axis'):name>.svg")
def heatmap(name: str):
    inferred = ui_data._flag(request.args.get("inferred"))
    matrix = (ui_data.matrix_modality_family if name == "modality-family" else ui_data.matrix_flow_axis)(inferred)
    body = '<?xml version="1.0" encoding="UTF-8"?>\n' + heatmap_svg(name, matrix)
    return Response(body, mimetype="image/svg+xml")


# --- lists and entity pages -----------------------------------------------------------------------------------

@bp.get("/ui/threats", defaults={"json": None})
@bp.get("/ui/threats.<any(json):json>")
def threats(json: str | None):
    data = ui_data.threat_list(request.args)
    return page("threats.html", data, bool(json), options=ui_data.filter_options())


@bp.get(f"/ui/<{KIND_RULE}:kind>", defaults={"json": None})
@bp.get(f"/ui/<{KIND_RULE}:kind>.<any(json):json>")
def listing(kind: str, json: str | None):
    if kind == "threats":
        return threats(json)
    data = {"defenses": lambda: ui_data.defense_list(), "attacks": lambda: ui_data.attack_list(request.args),
            "publications": lambda: ui_data.publication_list(request.args)}[kind]()
    return page(f"{kind}.html", data, bool(json))


@bp.get(f"/ui/<{KIND_RULE}:kind>/<path:ident>")
def entity(kind: str, ident: str):
    as_json = False
    if ident.endswith(".json"):
        try:
            ui_data.lookup(kind, ident)  # an id that itself ends in .json is a page, not a twin
        except NotFound:
            as_json, ident = True, ident[:-5]
    iri = ui_data.lookup(kind, ident)
    data = ui_data.PAGES[kind](iri)
    return page(f"{ui_data.SINGULAR[kind]}.html", data, as_json)


@bp.get("/ui/resolve")
def resolve():
    """Redirect to the UI page of ``iri`` (the SPARQL page links result IRIs here)."""
    iri = request.args.get("iri", "")
    if not ui_data.valid_iri(iri):
        raise NotFound(f"the UI has no page for {iri!r}")
    kind = ui_data.kind_of(iri)
    if kind:
        return redirect(ui_data.page_url(kind, iri))
    for filter_name, cls in (("modality", "Modality"), ("flow", "InformationFlow"), ("axis", "ChannelAxis"),
                             ("level", "Level")):
        if ui_data.select("SELECT ?x WHERE { ?x a ?c }", x=iri, c=str(MFM[cls])):
            return redirect(url_for("ui.threats", **{filter_name: local_name(iri)}))
    raise NotFound(f"the UI has no page for {iri!r}")


# --- named queries --------------------------------------------------------------------------------------------

def shipped(name: str) -> NamedQuery:
    queries = load_queries()
    if name not in queries:
        raise NotFound(f"no named query {name!r}")
    return queries[name]


def query_index() -> dict:
    items = [{"name": q.name, "title": q.title or q.name, "description": q.description, "tags": q.tags,
              "params": [p.name for p in q.params], "href": url_for("ui.named_query", name=q.name)}
             for q in load_queries().values()]
    return {"count": len(items), "queries": items}


@bp.get("/ui/queries", defaults={"json": None})
@bp.get("/ui/queries.<any(json):json>")
def queries(json: str | None):
    return page("queries.html", query_index(), bool(json))


def _control(store, p) -> dict:
    values = allowed_values(store, p)
    value = request.args.get(p.name)
    entry = {"name": p.name, "type": p.type, "required": p.required, "default": p.default,
             "description": p.description, "value": value if value is not None else (p.default or ""),
             "typeLabel": p.type}
    if values is not None:
        iris = p.enum_terms if p.enum_terms is not None else list(term_members(store, p.term_class))
        labels = {}
        for iri in iris:
            rows = ui_data.select("SELECT ?l WHERE { ?x rdfs:label ?l } LIMIT 1", x=iri)
            if rows:
                labels[local_name(iri)] = str(rows[0]["l"])
        entry["typeLabel"] = (f"one of {len(values)} terms" if p.enum_terms is not None
                              else f"a {ui_data.compact(p.term_class)}")
        entry["control"] = "select"
        entry["options"] = [{"value": v, "label": labels.get(v, v)} for v in values]
    elif p.type == "boolean":
        entry["control"] = "select"
        entry["options"] = [{"value": "false", "label": "false"}, {"value": "true", "label": "true"}]
    elif p.type == "integer":
        entry["control"] = "number"
    else:
        entry["control"] = "text"
    return entry


def named_query_data(name: str) -> tuple[dict, SelectResult | None]:
    q = shipped(name)
    store = ctx().store
    params = [_control(store, p) for p in q.params]
    args = {k: v for k, v in request.args.items() if not k.startswith("_")}
    data = {"name": q.name, "title": q.title or q.name, "description": q.description, "tags": q.tags,
            "params": params, "sparql": q.sparql, "error": None, "vars": [], "rows": [], "count": 0, "links": {},
            "downloads": {fmt: url_for("ui.named_query", name=name, fmt=fmt, **args) for fmt in ("csv", "json")}}
    missing = [p.name for p in q.params if p.required and not args.get(p.name)]
    if missing:
        data["error"] = "Give a value for " + ", ".join(missing) + " to run the query."
        return data, None
    try:
        result = store.query(q.sparql, bindings=bind_params(store, q, args))
    except MfmkgError as exc:
        data["error"] = exc.detail
        data["status"] = exc.status
        return data, None
    if not isinstance(result, SelectResult):
        raise BadRequest(f"named query {name!r} is not a SELECT query")
    data["vars"] = result.variables
    data["rows"] = result.values()
    data["count"] = len(result.rows)
    index = ui_data.kind_index()["_kind"]
    for row in data["rows"]:
        for value in row.values():
            if not isinstance(value, str) or value in data["links"]:
                continue
            kind = index.get(value) or ("publications" if value.startswith(ui_data.PUB_NS) else None)
            if kind:
                data["links"][value] = ui_data.page_url(kind, value)
    return data, result


@bp.get("/ui/queries/<name>", defaults={"fmt": None})
@bp.get("/ui/queries/<name>.<any(json, csv):fmt>")
def named_query(name: str, fmt: str | None):
    data, result = named_query_data(name)
    if fmt and data["error"]:
        raise BadRequest(data["error"])
    if fmt == "csv":
        raw = serialize(result, "text/csv")
        resp = Response(raw.body, mimetype="text/csv")
        resp.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return resp
    return page("query.html", data, fmt == "json", status=data.get("status", 200) if data["error"] else 200)


# --- SPARQL editor --------------------------------------------------------------------------------------------

@bp.get("/ui/sparql", defaults={"json": None})
@bp.get("/ui/sparql.<any(json):json>")
def sparql_page(json: str | None):
    examples = [{"name": q.name, "title": q.title or q.name, "sparql": q.sparql} for q in load_queries().values()]
    default = ("PREFIX mfm: <https://w3id.org/mfmkg/ont#>\nPREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n\n"
               "SELECT ?threat ?label WHERE {\n  ?threat rdfs:subClassOf mfm:MisleadingThreat ;\n"
               "          rdfs:label ?label .\n} ORDER BY ?label")
    data = {"endpoint": url_for("sparql.sparql") if _has_endpoint("sparql.sparql") else "/sparql",
            "query": request.args.get("query") or default, "examples": examples, "prefixes": PREFIXES,
            "resolve": url_for("ui.resolve")}
    return page("sparql.html", data, bool(json))


def _has_endpoint(name: str) -> bool:
    from flask import current_app

    return name in current_app.view_functions


@bp.app_template_filter("compact")
def _compact(iri: str) -> str:
    return ui_data.compact(str(iri))


@bp.app_template_filter("cell")
def _cell(value) -> str:
    value = to_python(value) if not isinstance(value, (str, int, float, bool, type(None))) else value
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
