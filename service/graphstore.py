"""Read-only graph access: the Graph Store Protocol's GET side, whole-graph exports and the Service Description.

* ``GET /store?graph=IRI`` answers one named graph, ``GET /store?default`` the default graph (on this server the
  union of every graph, as at ``/sparql``), in the RDF format the ``Accept`` header asks for (Turtle when it asks
  for none); a graph that holds no triples is 404. Only GET and HEAD: the write side of the protocol is not offered.
* ``GET /export.ttl``, ``/export.nt``, ``/export.jsonld``: the whole knowledge graph as one file to download.
  Bookkeeping graphs (the meta graph, staging graphs of loads in progress) are left out of both.
* ``service_description(accept)``: the SPARQL 1.1 Service Description of ``/sparql`` (``sd:`` vocabulary), given to
  a request for ``/sparql`` that has no query and asks for RDF, so clients can discover formats and graphs.

Both exports and graph reads go through the store's own serialiser in its streaming form (no rdflib round trip),
under the same time limit as a public query.
"""

from __future__ import annotations

from flask import Blueprint, Response, request, url_for
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF

from mfmkg import sandbox
from mfmkg.errors import BadRequest, NotFound
from mfmkg.namespaces import GRAPH, META_GRAPH
from mfmkg.results import CSV, JSON, TSV, XML
from mfmkg.service import negotiate
from mfmkg.service.context import ctx

bp = Blueprint("graphstore", __name__)

SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
FORMATS_W3 = Namespace("http://www.w3.org/ns/formats/")
#: File suffix of an export -> media type the store writes.
EXPORTS = {"ttl": "text/turtle", "nt": "application/n-triples", "jsonld": "application/ld+json"}
#: Graphs that are bookkeeping, not knowledge: never exported or served.
HIDDEN_PREFIXES = (META_GRAPH, str(GRAPH["staging/"]))
RDFLIB_FORMATS = {"text/turtle": "turtle", "application/n-triples": "nt", "application/ld+json": "json-ld",
                  "application/rdf+xml": "xml"}
RESULT_FORMATS = {JSON: "SPARQL_Results_JSON", XML: "SPARQL_Results_XML", CSV: "SPARQL_Results_CSV",
                  TSV: "SPARQL_Results_TSV", "text/turtle": "Turtle", "application/n-triples": "N-Triples",
                  "application/ld+json": "JSON-LD", "application/rdf+xml": "RDF_XML"}


def visible_graphs() -> list[str]:
    """Named graphs that hold knowledge (not bookkeeping), sorted."""
    return sorted(g for g in ctx().store.graphs() if not g.startswith(HIDDEN_PREFIXES))


def _construct(graphs: list[str], media_type: str) -> Response:
    """CONSTRUCT every triple of ``graphs`` (their union, duplicates merged) in ``media_type``, time-limited."""
    if not graphs:
        raise NotFound("no graph to export: the store is empty")
    query = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"
    timeout = float(ctx().config.get("QUERY_TIMEOUT") or 0) * 6  # a dump is bigger than a query, still bounded
    result = sandbox.query_raw(ctx().store, query, media_type, timeout=timeout, default_graphs=graphs)
    return Response(result.body, content_type=negotiate.content_type_header(media_type))


@bp.route("/store", methods=["GET", "HEAD"])
def graph_store():
    """One named graph (``?graph=IRI``) or the default graph (``?default``) in the RDF format Accept asks for."""
    graph = request.args.getlist("graph")
    default = "default" in request.args
    if default == bool(graph) or len(graph) > 1:
        raise BadRequest("give exactly one of ?graph=IRI or ?default")
    choice = negotiate.choose(request.headers.get("Accept"), "graph")
    if default:
        response = _construct(visible_graphs(), choice.store_type)
    else:
        if graph[0] not in visible_graphs():
            raise NotFound(f"no graph {graph[0]} in this store (the graphs are listed in /-/version.json)")
        response = _construct(graph, choice.store_type)
    response.headers["Content-Type"] = negotiate.content_type_header(choice.content_type)
    response.vary.add("Accept")
    return response


@bp.get("/export.<any(ttl, nt, jsonld):ext>")
def export(ext: str):
    """The whole knowledge graph (every graph but bookkeeping) as Turtle, N-Triples or JSON-LD."""
    response = _construct(visible_graphs(), EXPORTS[ext])
    response.headers["Content-Disposition"] = f'attachment; filename="mfmkg.{ext}"'
    return response


def service_description(accept: str | None) -> Response:
    """The Service Description of ``/sparql`` in the RDF format ``accept`` asks for (406 if none)."""
    choice = negotiate.choose(accept, "graph")
    endpoint = URIRef(url_for("sparql.sparql", _external=True))
    g = Graph()
    g.bind("sd", SD)
    g.bind("formats", FORMATS_W3)
    g.add((endpoint, RDF.type, SD.Service))
    g.add((endpoint, SD.endpoint, endpoint))
    g.add((endpoint, SD.supportedLanguage, SD.SPARQL11Query))
    g.add((endpoint, SD.feature, SD.UnionDefaultGraph))
    if ctx().config.get("SERVICE_ALLOWLIST"):
        g.add((endpoint, SD.feature, SD.BasicFederatedQuery))  # only to the allowlisted endpoints
    for name in RESULT_FORMATS.values():
        g.add((endpoint, SD.resultFormat, FORMATS_W3[name]))
    dataset, default = BNode(), BNode()
    g.add((endpoint, SD.defaultDataset, dataset))
    g.add((dataset, RDF.type, SD.Dataset))
    g.add((dataset, SD.defaultGraph, default))
    g.add((default, RDF.type, SD.Graph))
    for iri in visible_graphs():
        named = BNode()
        g.add((dataset, SD.namedGraph, named))
        g.add((named, SD.name, URIRef(iri)))
        g.add((named, RDF.type, SD.NamedGraph))
    g.add((endpoint, URIRef("http://www.w3.org/2000/01/rdf-schema#comment"),
           Literal("Read-only SPARQL 1.1 endpoint of mfmkg; the default graph is the union of the named graphs; "
                   "SERVICE only to allowlisted endpoints.")))
    body = g.serialize(format=RDFLIB_FORMATS[choice.store_type], encoding="utf-8")
    response = Response(body, content_type=negotiate.content_type_header(choice.content_type))
    response.vary.add("Accept")
    return response
