"""Graph Store Protocol reads, whole-graph exports and the Service Description, over real HTTP on both backends."""

from __future__ import annotations

import pytest
import requests
from rdflib import Graph, Namespace, URIRef
from rdflib.namespace import RDF

from conftest import LiveServer
from mfmkg.namespaces import META_GRAPH, ONTOLOGY_GRAPH, source_graph

SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
PAPER = URIRef("https://w3id.org/mfmkg/id/pub/test-graphstore")
RDF_TYPES = {"text/turtle": "turtle", "application/n-triples": "nt", "application/ld+json": "json-ld",
             "application/rdf+xml": "xml"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, module_store_config):
    from mfmkg.service import create_app

    app = create_app({"MEMORY": True, "TESTING": True, "RELOAD_INTERVAL": 0,
                      "DATA_DIR": str(tmp_path_factory.mktemp("data")), **module_store_config})
    store = app.extensions["mfmkg"].store
    store.load(f"<{PAPER}> <http://purl.org/dc/terms/title> \"A paper\" .".encode(), "application/n-triples",
               source_graph("gsp-test"))
    srv = LiveServer(app)
    srv.store = store
    yield srv
    srv.close()


def parsed(response: requests.Response, fmt: str) -> Graph:
    assert response.status_code == 200, response.text
    return Graph().parse(data=response.content, format=fmt)


@pytest.mark.parametrize("media_type", list(RDF_TYPES))
def test_a_named_graph_in_each_rdf_format(server, media_type):
    r = requests.get(server.url + "/store", params={"graph": source_graph("gsp-test")},
                     headers={"Accept": media_type})
    assert r.headers["Content-Type"].split(";")[0] == media_type and "Accept" in r.headers["Vary"]
    g = parsed(r, RDF_TYPES[media_type])
    assert set(g) == {(PAPER, URIRef("http://purl.org/dc/terms/title"), g.value(PAPER, URIRef(
        "http://purl.org/dc/terms/title")))} and len(g) == 1


def test_ontology_graph_equals_what_the_store_holds(server):
    g = parsed(requests.get(server.url + "/store", params={"graph": ONTOLOGY_GRAPH},
                            headers={"Accept": "application/n-triples"}), "nt")
    assert len(g) == server.store.stats()[ONTOLOGY_GRAPH]


def test_default_graph_is_the_union_without_bookkeeping(server):
    g = parsed(requests.get(server.url + "/store?default", headers={"Accept": "application/n-triples"}), "nt")
    assert (PAPER, None, None) in g and len(g) > server.store.stats()[ONTOLOGY_GRAPH]
    meta = server.store.query(f"SELECT ?s ?p ?o WHERE {{ GRAPH <{META_GRAPH}> {{ ?s ?p ?o }} }}").values()
    assert meta and not any((URIRef(str(row["s"])), None, None) in g for row in meta)


@pytest.mark.parametrize("params, status", [
    ({"graph": "urn:no-such-graph"}, 404),
    ({"graph": META_GRAPH}, 404),
    ({}, 400),
    ({"graph": ONTOLOGY_GRAPH, "default": ""}, 400),
])
def test_bad_graph_requests_are_problems(server, params, status):
    r = requests.get(server.url + "/store", params=params)
    assert r.status_code == status and r.headers["Content-Type"] == "application/problem+json"


def test_graph_store_is_read_only(server):
    r = requests.put(server.url + "/store?default", data=b"<urn:a> <urn:b> <urn:c> .",
                     headers={"Content-Type": "application/n-triples"})
    assert r.status_code == 405


def test_unsatisfiable_accept_is_406(server):
    r = requests.get(server.url + "/store?default", headers={"Accept": "image/png"})
    assert r.status_code == 406 and "Accept" in r.headers["Vary"]


@pytest.mark.parametrize("ext, fmt, media_type", [
    ("ttl", "turtle", "text/turtle"), ("nt", "nt", "application/n-triples"), ("jsonld", "json-ld",
                                                                              "application/ld+json")])
def test_exports_are_the_whole_graph(server, ext, fmt, media_type):
    r = requests.get(f"{server.url}/export.{ext}")
    assert r.headers["Content-Type"].split(";")[0] == media_type
    assert f"mfmkg.{ext}" in r.headers["Content-Disposition"]
    g = parsed(r, fmt)
    whole = parsed(requests.get(server.url + "/store?default", headers={"Accept": "application/n-triples"}), "nt")
    assert len(g) == len(whole) and (PAPER, None, None) in g


@pytest.mark.parametrize("media_type", list(RDF_TYPES))
def test_service_description(server, media_type):
    r = requests.get(server.url + "/sparql", headers={"Accept": media_type})
    g = parsed(r, RDF_TYPES[media_type])
    service = URIRef(server.url + "/sparql")
    assert (service, RDF.type, SD.Service) in g
    assert (service, SD.supportedLanguage, SD.SPARQL11Query) in g
    assert (service, SD.feature, SD.UnionDefaultGraph) in g
    assert (service, SD.feature, SD.BasicFederatedQuery) not in g  # no SERVICE allowlist configured
    names = {str(o) for o in g.objects(None, SD.name)}
    assert {ONTOLOGY_GRAPH, source_graph("gsp-test")} <= names and META_GRAPH not in names


BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_a_browser_opening_the_endpoint_gets_the_query_page(server):
    r = requests.get(server.url + "/sparql", headers={"Accept": BROWSER})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html") and "<textarea" in r.text


def test_a_browser_sending_a_query_gets_results(server):
    """Strict protocol: with a query, text/html is not an offer, so the browser's */* picks SPARQL JSON."""
    r = requests.get(server.url + "/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o } LIMIT 1"},
                     headers={"Accept": BROWSER})
    assert r.status_code == 200 and len(r.json()["results"]["bindings"]) == 1


def test_a_client_without_a_query_still_gets_400(server):
    r = requests.get(server.url + "/sparql", headers={"Accept": "*/*"})
    assert r.status_code == 400 and "query" in r.json()["detail"]
