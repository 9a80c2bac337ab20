"""The public, read-only SPARQL 1.1 Protocol endpoint at ``/sparql``.

* Query by ``GET /sparql?query=``, ``POST`` form (``application/x-www-form-urlencoded``, ``query=``) or ``POST`` body
  (``application/sparql-query``); ``default-graph-uri`` / ``named-graph-uri`` (repeatable) set the dataset, and
  without them the default graph is the union of all graphs. Other parameters are ignored (SPARQLWrapper adds
  ``format``, ``output`` and ``results``, and repeats ``format``).
* Read-only: ``update=`` or an ``application/sparql-update`` body is 403; other body types are 415.
* SERVICE calls are refused (403) unless the endpoint is in the ``SERVICE_ALLOWLIST`` setting (default: none).
* ``GET /sparql`` without a query: the query page for a browser (text/html preferred), the Service Description for
  a request naming an RDF type (``mfmkg.service.graphstore``), else 400.
* Results as negotiated by ``negotiate.choose``; every response carries ``Vary: Accept``. No CORS headers here.
* At most ``MAX_ROWS`` rows (or triples); when the cap cut the result, the response has ``X-SPARQL-Truncated: true``.
* Queries run in a query process (``mfmkg.sandbox``) killed after ``QUERY_TIMEOUT`` seconds, answered by a 503
  problem "Query time limit exceeded": 503 rather than 504 because this server is the origin that gave up (504 is
  a gateway's word for an upstream that did not answer); no Retry-After, as the same query would fail again.
  ``QUERY_TIMEOUT = 0`` means no time limit, but the query still runs in a query process, never in the server's.
* A query nested more than ``MAX_NESTING`` levels deep (groups ``{}``, parentheses, blank node brackets ``[]``)
  is a 400 before it reaches the query engine, whose parser would overflow its stack on thousands of levels.
  The check runs in the query process with the SERVICE check, so its cost counts against the time limit.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from flask import Blueprint, Request, Response, current_app, request

from mfmkg import sandbox, sparql_text
from mfmkg.cache import cached_raw
from mfmkg.errors import BadRequest, QueryRefused, UnsupportedMediaType
from mfmkg.service import negotiate
from mfmkg.service.context import ctx
from mfmkg.store.base import RawResult, Store

bp = Blueprint("sparql", __name__)

FORM = "application/x-www-form-urlencoded"
QUERY_BODY = "application/sparql-query"
UPDATE_BODY = "application/sparql-update"
TRUNCATED_HEADER = "X-SPARQL-Truncated"
_ABSOLUTE_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]*\Z")


@dataclass
class ProtocolRequest:
    query: str
    default_graphs: list[str] = field(default_factory=list)
    named_graphs: list[str] = field(default_factory=list)


def read_protocol_request(req: Request) -> ProtocolRequest:
    """The query and dataset of a SPARQL Protocol request; raises the typed error for each protocol violation."""
    if req.method == "GET":
        params, body_query = req.args, None
    elif req.mimetype == FORM:
        params, body_query = req.form, None
    elif req.mimetype == QUERY_BODY:
        params, body_query = req.args, _decode_body(req)
    elif req.mimetype == UPDATE_BODY:
        raise QueryRefused("SPARQL updates are not accepted: this endpoint is read-only")
    else:
        shown = req.mimetype or "no Content-Type"
        raise UnsupportedMediaType(f"POST /sparql takes {FORM} or {QUERY_BODY}, not {shown}")
    if "update" in params:
        raise QueryRefused("SPARQL updates are not accepted: this endpoint is read-only")
    if body_query is None:
        values = set(params.getlist("query"))
        if len(values) != 1:
            raise BadRequest("give the query in exactly one 'query' parameter" if values else
                             "missing the 'query' parameter")
        body_query = values.pop()
    if not body_query.strip():
        raise BadRequest("the query is empty")
    return ProtocolRequest(body_query, _graph_iris(params, "default-graph-uri"),
                           _graph_iris(params, "named-graph-uri"))


def _decode_body(req: Request) -> str:
    charset = req.mimetype_params.get("charset", "utf-8")
    try:
        return req.get_data().decode(charset)
    except (LookupError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the query body is not valid {charset} text ({exc})") from exc


def _graph_iris(params, name: str) -> list[str]:
    iris = list(dict.fromkeys(params.getlist(name)))  # repeated values are harmless: keep one of each
    for iri in iris:
        if not _ABSOLUTE_IRI.match(iri):
            raise BadRequest(f"{name} must be an absolute IRI, not {iri!r}")
    return iris


def service_allowlist(config: dict) -> frozenset[str]:
    """SERVICE_ALLOWLIST as a set of IRIs: a list, or one string of IRIs separated by spaces or commas."""
    value = config.get("SERVICE_ALLOWLIST") or []
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return frozenset(str(v) for v in value)


#: Deepest nesting of groups, parentheses and brackets accepted. pyoxigraph's parser overflows its stack at a few
#: thousand levels (sub-selects: about 2,000 in a server thread); no real query comes near 256.
MAX_NESTING = 256
# What can hold a bracket that is not one: comments, strings (long forms first), IRIs, escapes in local names
# (``ex:a\(``); then the brackets themselves. Anything else is skipped by finditer.
_NESTING_TOKENS = re.compile(
    r"""#[^\r\n]*|'{3}(?:[^'\\]|\\.|'(?!''))*'{3}|"{3}(?:[^"\\]|\\.|"(?!""))*"{3}"""
    r"""|'(?:[^'\\\r\n]|\\.)*'|"(?:[^"\\\r\n]|\\.)*"|"""
    + sparql_text._IRI.pattern + r"|\\.|(?P<open>[{(\[])|(?P<close>[})\]])", re.S)


def nesting_depth(text: str, limit: int | None = None) -> int:
    """How deeply groups, parentheses and brackets nest in the query (strings, comments and IRIs left out);
    stops counting once past ``limit``."""
    depth = deepest = 0
    for m in _NESTING_TOKENS.finditer(text):
        if m.group("open"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if limit is not None and deepest > limit:
                    break
        elif m.group("close"):
            depth = max(0, depth - 1)
    return deepest


def precheck(query: str, allowlist: frozenset[str]) -> bool:
    """Run in the query process before the engine sees the query: 400 when it nests too deeply, 403 for a
    SERVICE call that is not allowlisted; True when it calls an allowlisted SERVICE (it needs the network).
    A module-level function (bound with functools.partial) so that it can be sent to a reusable query process."""
    depth = nesting_depth(query, MAX_NESTING)
    if depth > MAX_NESTING:
        raise BadRequest(f"the query nests groups, parentheses or brackets more than {MAX_NESTING} levels deep; "
                         "write it flatter")
    return bool(sparql_text.check_services(query, allowlist))


def evaluate(store: Store, preq: ProtocolRequest, media_type: str, config: dict) -> RawResult:
    """Run the query under the endpoint's limits: nesting depth, SERVICE allowlist, row cap, time limit."""
    allowlist = service_allowlist(config)
    timeout = float(config.get("QUERY_TIMEOUT") or 0)  # 0: no time limit (still in a query process)
    max_rows = int(config["MAX_ROWS"]) if config.get("MAX_ROWS") else None
    # Cached per data version (mfmkg.cache): successful results only, never queries with SERVICE or RAND/NOW.
    key = (preq.query, media_type, tuple(sorted(preq.default_graphs)), tuple(sorted(preq.named_graphs)), max_rows)
    return cached_raw(store, key, preq.query, lambda: sandbox.query_raw(
        store, preq.query, media_type, timeout=timeout,
        precheck=functools.partial(precheck, allowlist=allowlist),
        default_graphs=preq.default_graphs or None, named_graphs=preq.named_graphs or None,
        max_rows=max_rows))


@bp.route("/sparql", methods=["GET", "POST"])
def sparql():
    if request.method == "GET" and "update" not in request.args:
        accept = request.headers.get("Accept")
        if "query" not in request.args and _prefers_html(accept) and "ui.sparql_page" in current_app.view_functions:
            return current_app.view_functions["ui.sparql_page"](json=None)  # a browser opening the endpoint
        if "query" not in request.args and _names_rdf(accept):
            from mfmkg.service.graphstore import service_description

            return service_description(accept)
    preq = read_protocol_request(request)
    kind = sparql_text.query_kind(preq.query)  # None: not a query; the store's parser will say why
    choice = negotiate.choose(request.headers.get("Accept"), kind)
    result = evaluate(ctx().store, preq, choice.store_type, ctx().config)
    response = Response(result.body, content_type=negotiate.content_type_header(choice.content_type))
    if result.truncated:
        response.headers[TRUNCATED_HEADER] = "true"
    return response


def _prefers_html(accept: str | None) -> bool:
    """A browser: text/html ranks above every results and RDF type we could answer with, and the request names
    none of those types itself (a client that lists a results type beside text/html wants results)."""
    ranges = negotiate.parse_accept(accept)
    html = negotiate.quality("text/html", ranges)
    offers = negotiate.RESULT_OFFERS + negotiate.GRAPH_OFFERS
    return (html > 0 and html > max(negotiate.quality(t, ranges) for t, _ in offers)
            and not _names_any(accept, offers))


def _names_rdf(accept: str | None) -> bool:
    """The request names an RDF type (not just */*): it wants the Service Description."""
    return _names_any(accept, negotiate.GRAPH_OFFERS)


def _names_any(accept: str | None, offers) -> bool:
    named = {f"{kind}/{sub}" for kind, sub, q in negotiate.parse_accept(accept) if q > 0}
    return any(t in named for t, _ in offers)


@bp.after_request
def _vary_accept(response: Response) -> Response:
    response.vary.add("Accept")  # error responses too: a 406 depends on Accept as much as a 200 does
    return response
