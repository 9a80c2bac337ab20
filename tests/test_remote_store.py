"""The remote store (``mfmkg.store.remote``): the Store contract on both backends, batched and failing loads, a
server that goes away and comes back, time limits, and real clients through mfmkg to an ``oxigraph serve``.

Every server here is an ``oxigraph serve`` process (or a tiny fake) on 127.0.0.1, stopped by its fixture.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from rdflib import Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.compare import isomorphic
from rdflib.namespace import XSD
from SPARQLWrapper import JSON as SW_JSON
from SPARQLWrapper import POST, SPARQLWrapper

from conftest import LiveServer, oxigraph_executable, start_serve, stop
from mfmkg.errors import QuerySyntaxError, QueryTimeout, StoreError
from mfmkg.namespaces import META_GRAPH
from mfmkg.store.base import AskResult, GraphResult, SelectResult
from mfmkg.store.remote import STAGING_PREFIX, RemoteStore, parse_store_url

EX = "http://example.org/r/"
G1, G2 = EX + "g1", EX + "g2"
P = URIRef(EX + "p")
PROBLEM = "application/problem+json"
JSON = "application/sparql-results+json"
MFM_PREFIX = "PREFIX mfm: <https://w3id.org/mfmkg/ont#>\n"

TURTLE = f"""@prefix ex: <{EX}> .
ex:a ex:p "plain", "chat"@fr, 42, "2024-01-01"^^<http://www.w3.org/2001/XMLSchema#date> ;
     ex:q [ ex:p ex:b ; ex:q [ ex:p "nested" ] ] .
ex:b ex:list ( ex:x ex:y "z" ) .
"""


def graph_of(store, graph: str) -> Graph:
    res = store.query(f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
    assert isinstance(res, GraphResult)
    g = Graph()
    for t in res.triples:
        g.add(t)
    return g


def staging_graphs(store) -> list[str]:
    return [g for g in store.graphs() if "staging" in g]


def remote(server, **config) -> RemoteStore:
    return RemoteStore(server.store_url, {"QUERY_TIMEOUT": 10.0, **config})


# -- the Store contract, on both backends ----------------------------------------------------------------------

def test_load_keeps_every_term_and_blank_node_structure(store):
    store.load(TURTLE, "text/turtle", G1)
    expected = Graph().parse(data=TURTLE, format="turtle")
    got = graph_of(store, G1)
    assert isomorphic(got, expected)
    assert store.stats()[G1] == len(expected) and G1 in store.graphs()
    lists = list(got.objects(URIRef(EX + "b"), URIRef(EX + "list")))
    assert [str(x) for x in Collection(got, lists[0])] == [EX + "x", EX + "y", "z"]


def test_select_terms_are_rdflib_terms_with_types(store):
    store.load(TURTLE, "text/turtle", G1)
    res = store.query(f"SELECT ?o WHERE {{ GRAPH <{G1}> {{ <{EX}a> <{EX}p> ?o }} }} ORDER BY STR(?o)")
    assert isinstance(res, SelectResult) and res.variables == ["o"]
    assert sorted(res.rows, key=lambda r: str(r[0])) == sorted([
        (Literal("2024-01-01", datatype=XSD.date),), (Literal(42),), (Literal("chat", lang="fr"),),
        (Literal("plain"),)], key=lambda r: str(r[0]))
    unbound = store.query("SELECT ?x ?y WHERE { BIND(1 AS ?x) }")
    assert unbound.rows == [(Literal(1), None)]


def test_add_replace_drop_and_stats(store):
    triples = [(URIRef(f"{EX}s{i}"), P, Literal(i)) for i in range(10)]
    assert store.add(triples, G1) == 10
    assert store.stats()[G1] == 10
    assert store.replace_graph(G1, [(URIRef(EX + "only"), P, Literal("one"))]) == 1
    assert [str(r[0]) for r in store.query(f"SELECT ?s WHERE {{ GRAPH <{G1}> {{ ?s ?p ?o }} }}").rows] == [
        EX + "only"]
    assert store.replace_graph(G1, []) == 0
    assert G1 not in store.graphs() and store.stats().get(G1, 0) == 0
    store.add(triples, G2)
    store.drop_graph(G2)
    store.drop_graph(G2)  # no error for a graph that is not there
    assert G2 not in store.graphs() and not staging_graphs(store)


def test_meta_values_round_trip(store):
    assert store.get_meta("remote-test") is None
    store.set_meta("remote-test", 'a "quoted" value\nwith a line')
    store.set_meta("remote-test", "second")
    assert store.get_meta("remote-test") == "second"
    assert store.get_meta("ontology-hash")  # written by ensure_loaded


def test_bindings_are_terms_on_every_backend(store):
    store.add([(URIRef(EX + "a"), P, Literal(2)), (URIRef(EX + "b"), P, Literal("2"))], G1)
    res = store.query(f"SELECT ?s WHERE {{ ?s <{P}> ?o }}", bindings={"o": Literal(2)})
    assert [str(r[0]) for r in res.rows] == [EX + "a"]
    res = store.query(f"SELECT (COUNT(*) AS ?n) WHERE {{ ?s <{P}> ?v FILTER(?v = ?o) }}", bindings={"o": Literal("2")})
    assert int(res.rows[0][0]) == 1
    hostile = Literal('x" } ; DROP ALL ; SELECT * { "')
    assert store.query("SELECT ?s WHERE { ?s ?p ?l }", bindings={"l": hostile}).rows == []
    assert store.stats()[G1] == 2


def test_ask_and_construct(store):
    store.add([(URIRef(EX + "a"), P, Literal(1))], G1)
    assert store.query(f"ASK {{ <{EX}a> <{P}> 1 }}") == AskResult(True)
    assert store.query(f"ASK {{ <{EX}a> <{P}> 2 }}") == AskResult(False)
    res = store.query(f"CONSTRUCT {{ ?s <{EX}q> ?o }} WHERE {{ ?s <{P}> ?o }}")
    assert isinstance(res, GraphResult) and res.triples == [(URIRef(EX + "a"), URIRef(EX + "q"), Literal(1))]


@pytest.mark.parametrize("media_type", [JSON, "application/sparql-results+xml", "text/csv",
                                        "text/tab-separated-values"])
def test_query_raw_results_and_row_cap(store, media_type):
    store.add([(URIRef(f"{EX}s{i}"), P, Literal(i)) for i in range(7)], G1)
    q = f"SELECT ?s ?o WHERE {{ GRAPH <{G1}> {{ ?s ?p ?o }} }} ORDER BY ?o"
    capped = store.query_raw(q, media_type, max_rows=3)
    assert capped.kind == "select" and capped.truncated and capped.media_type == media_type
    whole = store.query_raw(q, media_type, max_rows=7)
    assert whole.kind == "select" and not whole.truncated
    rows = {JSON: lambda b: len(json.loads(b)["results"]["bindings"]),
            "application/sparql-results+xml": lambda b: b.count(b"<result>"),
            "text/csv": lambda b: len(b.decode().splitlines()) - 1,
            "text/tab-separated-values": lambda b: len(b.decode().splitlines()) - 1}[media_type]
    assert rows(capped.body) == 3 and rows(whole.body) == 7
    ask = store.query_raw(f"ASK {{ GRAPH <{G1}> {{ ?s ?p 6 }} }}", media_type)
    assert ask.kind == "ask" and b"true" in ask.body


@pytest.mark.parametrize("media_type, fmt", [("text/turtle", "turtle"), ("application/n-triples", "nt"),
                                             ("application/ld+json", "json-ld"), ("application/rdf+xml", "xml")])
def test_query_raw_graphs_and_triple_cap(store, media_type, fmt):
    store.add([(URIRef(f"{EX}s{i}"), P, Literal(i)) for i in range(7)], G1)
    q = f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{G1}> {{ ?s ?p ?o }} }}"
    capped = store.query_raw(q, media_type, max_rows=3)
    assert capped.kind == "graph" and capped.truncated
    assert len(Graph().parse(data=capped.body, format=fmt)) == 3
    whole = store.query_raw(q, media_type, max_rows=10)
    assert not whole.truncated and len(Graph().parse(data=whole.body, format=fmt)) == 7


def test_dataset_parameters_behave_alike(store):
    store.add([(URIRef(EX + "a"), P, Literal(1))], G1)
    store.add([(URIRef(EX + "b"), P, Literal(2))], G2)
    count = "SELECT (COUNT(*) AS ?n) WHERE { ?s <%s> ?o }" % P
    named = "SELECT ?g WHERE { GRAPH ?g { ?s <%s> ?o } } ORDER BY ?g" % P
    assert int(store.query(count).rows[0][0]) == 2  # default graph: the union
    assert int(store.query(count, default_graphs=[G1]).rows[0][0]) == 1
    assert [str(r[0]) for r in store.query(named, default_graphs=[G1]).rows] == [G1, G2]  # named graphs: all
    assert [str(r[0]) for r in store.query(named, named_graphs=[G2]).rows] == [G2]
    assert int(store.query(count, named_graphs=[G2]).rows[0][0]) == 2  # default graph still the union


def test_syntax_errors_are_typed(store):
    with pytest.raises(QuerySyntaxError):
        store.query("SELEC nonsense")
    with pytest.raises(QuerySyntaxError):
        store.update("INSERT DATA { this is not SPARQL")
    with pytest.raises(QuerySyntaxError):
        store.load("<http://x> <http://y> .", "application/n-triples", G1)
    with pytest.raises(ValueError):
        store.load("x", "application/x-unknown", G1)
    assert G1 not in store.graphs()


def test_graph_writer_replaces_a_graph_whole_on_every_backend(store):
    """``Store.graph_writer``: readers see the old graph until the commit; an abort leaves it as it was."""
    store.add([(URIRef(EX + "old"), P, Literal("old"))], G1)
    lines = [f"<{EX}s{i}> <{EX}p> \"{i}\" .\n" for i in range(60)]
    with store.graph_writer(G1) as writer:
        writer.write("".join(lines[:30]).encode())
        writer.write("".join(lines[30:]).encode())
        writer.finish()
        assert [str(r[0]) for r in store.query(f"SELECT ?o WHERE {{ GRAPH <{G1}> {{ ?s ?p ?o }} }}").rows] == ["old"]
        writer.commit()
    assert store.stats()[G1] == 60 and not staging_graphs(store)
    with pytest.raises(RuntimeError, match="boom"):
        with store.graph_writer(G1) as writer:
            writer.write(lines[0].encode())
            raise RuntimeError("boom")
    assert store.stats()[G1] == 60 and not staging_graphs(store)
    with store.graph_writer(G2) as writer:  # a new graph
        writer.write("".join(lines).encode())
        writer.commit()
    assert store.stats()[G2] == 60 and not staging_graphs(store)
    with store.graph_writer(G2) as writer:  # nothing written: the graph is emptied
        writer.commit()
    assert G2 not in store.graphs()


# -- the URL scheme --------------------------------------------------------------------------------------------

def test_url_defaults_follow_oxigraph():
    ep = parse_store_url("sparql+http://db.example:7878")
    assert (ep.query, ep.update, ep.gsp, ep.union) == ("http://db.example:7878/query", "http://db.example:7878/update",
                                                       "http://db.example:7878/store", "server")
    ep = parse_store_url("sparql+https://db.example/ds/query")
    assert (ep.query, ep.update, ep.gsp) == ("https://db.example/ds/query", "https://db.example/ds/update",
                                             "https://db.example/ds/store")


def test_url_options_and_config_keys():
    ep = parse_store_url("sparql+http://h:3030/ds/sparql?update=update&gsp=/ds/data&union=oxigraph")
    assert (ep.query, ep.update, ep.gsp, ep.union) == ("http://h:3030/ds/sparql", "http://h:3030/ds/update",
                                                       "http://h:3030/ds/data", "oxigraph")
    ep = parse_store_url("sparql+http://h/sparql?gsp=none", {"STORE_UPDATE_URL": "https://w.example/update",
                                                             "STORE_USER": "u", "STORE_PASSWORD": "pw"})
    assert (ep.update, ep.gsp, ep.user, ep.password) == ("https://w.example/update", None, "u", "pw")
    ep = parse_store_url("sparql+http://alice:s%40cret@h:1/q")
    assert (ep.user, ep.password, ep.query) == ("alice", "s@cret", "http://h:1/q")


@pytest.mark.parametrize("url", ["http://h/query", "sparql+ftp://h/", "sparql+http:///query",
                                 "sparql+http://h/q?updat=/u", "sparql+http://h/q?union=maybe",
                                 "sparql+http://h/q?update=none"])
def test_bad_urls_are_clear_errors(url):
    with pytest.raises(StoreError):
        parse_store_url(url)


def test_a_password_in_the_url_is_never_shown():
    with pytest.raises(StoreError) as info:
        parse_store_url("sparql+http://alice:topsecret@h/q?bogus=1")
    assert "topsecret" not in info.value.detail
    store = RemoteStore("sparql+http://alice:topsecret@127.0.0.1:9/query")
    assert "topsecret" not in repr(store)
    with pytest.raises(StoreError) as info:
        store.query("ASK {}")
    assert "topsecret" not in info.value.detail


def test_open_store_and_the_cli_option_pick_the_remote_store(oxigraph_factory, runner):
    from mfmkg.cli import main
    from mfmkg.store import open_store

    server = oxigraph_factory()
    assert isinstance(open_store({"STORE": server.store_url, "DATA_DIR": "/nonexistent"}), RemoteStore)
    result = runner.invoke(main, ["sparql", "--store", server.store_url, "--format", "json",
                                  MFM_PREFIX + "SELECT (COUNT(*) AS ?n) WHERE { ?a a mfm:Attack }"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rows"] == [{"n": 73}]
    down = runner.invoke(main, ["sparql", "--store", "sparql+http://127.0.0.1:9/query", "ASK {}"])
    assert down.exit_code == 1 and "127.0.0.1:9" in down.output and "Traceback" not in down.output


def test_the_oxigraph_server_cli_is_installed_by_the_test_extra():
    assert oxigraph_executable(), "pip install -e '.[test]' installs the oxigraph server CLI"


# -- batches -----------------------------------------------------------------------------------------------------

def big_turtle(n: int) -> str:
    """``n`` subjects with a literal each, and every tenth one with a blank-node chain and a list."""
    lines = [f"@prefix ex: <{EX}> ."]
    for i in range(n):
        lines.append(f"ex:s{i} ex:p {i} .")
        if i % 10 == 0:
            lines.append(f"ex:s{i} ex:q [ ex:p [ ex:p \"deep {i}\" ] ] ; ex:list ( {i} {i + 1} {i + 2} ) .")
    return "\n".join(lines) + "\n"


def test_a_load_of_many_batches_arrives_whole(oxigraph_factory, monkeypatch):
    store = remote(oxigraph_factory(), STORE_BATCH=100)
    sent = []
    original = RemoteStore._send_ntriples
    monkeypatch.setattr(RemoteStore, "_send_ntriples", lambda self, body, graph, n: (sent.append((n, graph)),
                                                                                    original(self, body, graph, n)))
    data = big_turtle(1000)
    store.load(data, "text/turtle", G1)
    expected = Graph().parse(data=data, format="turtle")
    assert len(sent) > 10 and all(g.startswith(STAGING_PREFIX) for _, g in sent)
    assert max(n for n, _ in sent) <= 100  # the largest blank-node group has 10 triples
    assert store.stats()[G1] == len(expected) and isomorphic(graph_of(store, G1), expected)
    assert not staging_graphs(store)
    store.load(data, "text/turtle", G1)  # a second load adds (fresh blank nodes), like the embedded store
    assert store.stats()[G1] == 2 * len(expected) - 1000


def test_default_batch_size_is_50k_triples(oxigraph_factory, monkeypatch):
    store = remote(oxigraph_factory())
    sizes = []
    original = RemoteStore._send_ntriples
    monkeypatch.setattr(RemoteStore, "_send_ntriples", lambda self, body, graph, n: (sizes.append(n),
                                                                                    original(self, body, graph, n)))
    triples = [(URIRef(f"{EX}s{i}"), P, Literal(i)) for i in range(120_000)]
    assert store.add(triples, G1) == 120_000
    assert sizes == [50_000, 50_000, 20_000] and store.stats()[G1] == 120_000
    assert not staging_graphs(store)


def test_a_single_batch_goes_straight_to_its_graph(oxigraph_factory, monkeypatch):
    store = remote(oxigraph_factory())
    sent = []
    original = RemoteStore._send_ntriples
    monkeypatch.setattr(RemoteStore, "_send_ntriples", lambda self, body, graph, n: (sent.append(graph),
                                                                                    original(self, body, graph, n)))
    store.load(TURTLE, "text/turtle", G1)
    assert sent == [G1]


def test_a_bad_batch_mid_way_leaves_no_partial_graph(oxigraph_factory, monkeypatch):
    store = remote(oxigraph_factory(), STORE_BATCH=100)
    store.add([(URIRef(EX + "old"), P, Literal("kept"))], G2)
    calls = []
    original_post = RemoteStore._post

    def post(self, url, body, content_type, what, timeout=None):
        if content_type == "application/n-triples":
            calls.append(url)
            if len(calls) == 3:
                body = b"<http://broken> <http://x> .\n"  # the server rejects this batch: 400
        return original_post(self, url, body, content_type, what, timeout)

    monkeypatch.setattr(RemoteStore, "_post", post)
    with pytest.raises(QuerySyntaxError):
        store.load(big_turtle(1000), "text/turtle", G1)
    assert len(calls) == 3
    assert G1 not in store.graphs() and not staging_graphs(store)
    calls.clear()
    with pytest.raises(QuerySyntaxError):
        store.replace_graph(G2, [(URIRef(f"{EX}n{i}"), P, Literal(i)) for i in range(500)])
    assert [str(r[0]) for r in store.query(f"SELECT ?o WHERE {{ GRAPH <{G2}> {{ ?s ?p ?o }} }}").rows] == ["kept"]
    assert not staging_graphs(store)


def test_a_server_restart_mid_load_leaves_no_partial_graph(oxigraph_factory, monkeypatch):
    server = oxigraph_factory(persistent=True)
    store = remote(server, STORE_BATCH=100)
    batches = []
    original = RemoteStore._send_ntriples

    def send(self, body, graph, n):
        batches.append(graph)
        if len(batches) == 3:
            server.stop()  # batches 1 and 2 are on disk, in the staging graph
        return original(self, body, graph, n)

    monkeypatch.setattr(RemoteStore, "_send_ntriples", send)
    with pytest.raises(StoreError) as info:
        store.load(big_turtle(1000), "text/turtle", G1)
    assert f"127.0.0.1:{server.port}" in info.value.detail and "cannot reach" in info.value.detail
    server.start()
    monkeypatch.setattr(RemoteStore, "_send_ntriples", original)
    assert G1 not in store.graphs()
    left = [batches[0], batches[0] + "-lease"]  # the staging graph and its lease graph
    assert staging_graphs(store) == left  # left over: the server was gone when the load gave up
    # another process leaves it alone while its lease runs (the load might still be running there) ...
    assert remote(server).drop_staging_graphs() == [] and staging_graphs(store) == left
    store.add([(URIRef(EX + "a"), P, Literal(1))], G2)  # ... this process drops it with its next write
    assert not staging_graphs(store) and store.stats()[G2] == 1  # (the lease graph went with it)


def test_a_staging_graph_whose_lease_ran_out_is_dropped_by_any_process(oxigraph_factory):
    server = oxigraph_factory()
    dead = remote(server, STORE_BATCH=10)
    dead.lease_seconds = 1
    writer = dead.graph_writer(G1)
    writer.write("".join(f"<{EX}s{i}> <{EX}p> \"{i}\" .\n" for i in range(25)).encode())  # two batches sent
    assert len(staging_graphs(dead)) == 2  # with its lease graph; and then the writer's process dies
    other = remote(server)
    assert other.drop_staging_graphs() == []
    time.sleep(1.5)
    assert len(other.drop_staging_graphs()) == 1
    assert not staging_graphs(other) and G1 not in other.graphs()


@pytest.mark.parametrize("gsp", [True, False], ids=["gsp", "insert-data"])
def test_graph_writer_batches_into_staging_and_swaps_in_whole(oxigraph_factory, monkeypatch, gsp):
    server = oxigraph_factory()
    store = RemoteStore(server.store_url + ("" if gsp else "?gsp=none"), {"STORE_BATCH": 40})
    store.add([(URIRef(EX + "old"), P, Literal("old"))], G1)
    sent = []
    original = RemoteStore._send_ntriples
    monkeypatch.setattr(RemoteStore, "_send_ntriples", lambda self, body, graph, n: (sent.append((n, graph)),
                                                                                    original(self, body, graph, n)))
    lines = [f"<{EX}s{i}> <{EX}p> \"{i}\" .\n" for i in range(100)]
    with store.graph_writer(G1) as writer:
        for i in range(0, 100, 30):  # chunks of 30 lines: batches of 40 cut across them
            writer.write("".join(lines[i:i + 30]).encode())
        staged = [g for g in staging_graphs(store) if not g.endswith("-lease")]
        assert len(staged) == 1 and store.stats()[G1] == 1  # the old graph, untouched until the end
        writer.commit()
    assert [n for n, _ in sent] == [40, 40, 20] and {g for _, g in sent} == set(staged)
    assert store.stats()[G1] == 100 and not staging_graphs(store)
    with store.graph_writer(G1) as writer:  # an abort (here: an exception) leaves the graph as it was
        writer.write("".join(lines[:50]).encode())
    assert store.stats()[G1] == 100 and not staging_graphs(store)
    with store.graph_writer(G2) as writer:  # a new graph and one batch: one request, straight to the graph
        writer.write(lines[0].encode())
        writer.commit()
    assert sent[-1] == (1, G2) and store.stats()[G2] == 1


def test_a_swap_fails_whole_when_its_staging_graph_was_dropped(oxigraph_factory):
    """Another process dropped the staging graph (taking it for abandoned): the final update fails as a whole
    and the graph keeps its old content (MOVE without SILENT)."""
    server = oxigraph_factory()
    store = remote(server, STORE_BATCH=10)
    store.add([(URIRef(EX + "old"), P, Literal("old"))], G1)
    writer = store.graph_writer(G1)
    writer.write("".join(f"<{EX}s{i}> <{EX}p> \"{i}\" .\n" for i in range(25)).encode())
    remote(server).drop_staging_graphs(max_age=0)
    with pytest.raises(StoreError, match="dropped by another process"):
        writer.commit()  # (its last 5 lines re-created the staging graph, without a lease)
    assert store.stats()[G1] == 1 and not staging_graphs(store)


def test_loads_through_sparql_update_when_there_is_no_graph_store_protocol(oxigraph_factory):
    server = oxigraph_factory()
    store = RemoteStore(server.store_url + "?gsp=none", {"STORE_BATCH": 100})
    data = big_turtle(300)
    store.load(data, "text/turtle", G1)
    assert isomorphic(graph_of(store, G1), Graph().parse(data=data, format="turtle"))
    assert not staging_graphs(store)


# -- errors and time limits ----------------------------------------------------------------------------------------

def test_an_unreachable_server_is_a_store_error_naming_it():
    store = RemoteStore("sparql+http://127.0.0.1:9/query", {"QUERY_TIMEOUT": 2})
    for call in (lambda: store.query("ASK {}"), lambda: store.update("CLEAR ALL"),
                 lambda: store.add([(URIRef(EX + "a"), P, Literal(1))], G1), store.stats, store.data_version):
        with pytest.raises(StoreError) as info:
            call()
        assert "127.0.0.1:9" in info.value.detail and info.value.status == 503


def test_a_server_without_the_union_default_graph_is_refused_and_union_param_fixes_it(oxigraph_factory):
    server = oxigraph_factory(union=False)
    store = remote(server)
    store.add([(URIRef(EX + "a"), P, Literal(1))], G1)
    with pytest.raises(StoreError, match="--union-default-graph"):
        store.query("SELECT * WHERE { ?s ?p ?o }")
    fixed = RemoteStore(server.store_url + "?union=oxigraph")
    assert int(fixed.query("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }").rows[0][0]) >= 1


def test_a_runaway_query_is_stopped_by_the_http_deadline(oxigraph_factory):
    store = remote(oxigraph_factory(), QUERY_TIMEOUT=1, STORE_TIMEOUT_MARGIN=1)
    store.add([(URIRef(f"{EX}s{i}"), P, Literal(i)) for i in range(300)], G1)
    started = time.monotonic()
    with pytest.raises(QueryTimeout) as info:
        store.query("SELECT (COUNT(*) AS ?c) { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }")
    assert time.monotonic() - started < 4 and "1 s" in info.value.detail
    assert store.query("ASK { ?s ?p ?o }").value is True  # the next request works


def test_a_query_cancelled_by_the_servers_own_limit_is_a_timeout_not_a_short_result(oxigraph_factory):
    store = remote(oxigraph_factory(timeout_s=1), QUERY_TIMEOUT=20)
    store.add([(URIRef(f"{EX}s{i}"), P, Literal(i)) for i in range(300)], G1)
    slow = ("SELECT ?a WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i "
            "FILTER(STR(?c) = CONCAT(STR(?f), STR(?i), 'never')) }")
    started = time.monotonic()
    with pytest.raises(QueryTimeout):
        store.query_raw(slow, JSON, max_rows=10)
    assert time.monotonic() - started < 10


class _Fake(BaseHTTPRequestHandler):
    """A SPARQL server stand-in: records requests, answers with the status and body it is told."""

    seen: list = []
    status, body, ctype = 200, b'{"head":{},"boolean":true}', JSON

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        type(self).seen.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
        self.send_response(self.status)
        self.send_header("Content-Type", self.ctype)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def fake():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Fake.seen, _Fake.status, _Fake.body, _Fake.ctype = [], 200, b'{"head":{},"boolean":true}', JSON
    yield f"sparql+http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_credentials_go_with_every_request_and_writes_never_use_the_query_url(fake):
    store = RemoteStore(fake + "/query", {"STORE_USER": "mfm", "STORE_PASSWORD": "pw:1"})
    assert store.query("ASK {}").value is True
    _Fake.ctype, _Fake.body, _Fake.status = "text/plain", b"", 204
    store.update("CLEAR ALL")
    store.add([(URIRef(EX + "a"), P, Literal(1))], G1)
    basic = "Basic " + base64.b64encode(b"mfm:pw:1").decode()
    assert [h.get("Authorization") for _, _, h, _ in _Fake.seen] == [basic] * len(_Fake.seen)
    paths = [(method, path.split("?")[0]) for method, path, _, _ in _Fake.seen]
    assert paths[0] == ("POST", "/query") and ("POST", "/update") in paths and ("POST", "/store") in paths
    to_query = [body for _, path, _, body in _Fake.seen if path.split("?")[0] == "/query"]
    assert all(body.startswith(b"query=") for body in to_query)  # queries only (the first one and union probes)


def test_a_query_text_that_looks_like_an_update_still_goes_to_the_query_endpoint(fake):
    store = RemoteStore(fake + "/query")
    store.query("ASK { ?s ?p ?o } # DROP ALL")
    _Fake.status, _Fake.body, _Fake.ctype = 400, b"error at 1:1: expected a query", "text/plain"
    with pytest.raises(QuerySyntaxError, match="expected a query"):
        store.query("DROP ALL")
    assert {path.split("?")[0] for _, path, _, _ in _Fake.seen} == {"/query"}
    assert all(b"update=" not in body for _, _, _, body in _Fake.seen)


@pytest.mark.parametrize("status, words", [(401, "STORE_USER"), (404, "HTTP 404"), (500, "HTTP 500"),
                                           (503, "HTTP 503")])
def test_http_failures_are_store_errors(fake, status, words):
    _Fake.status, _Fake.body, _Fake.ctype = status, b"something broke", "text/plain"
    store = RemoteStore(fake + "/query")
    for call in (lambda: store.query("ASK {}"), lambda: store.update("CLEAR ALL")):
        with pytest.raises(StoreError) as info:
            call()
        assert words in info.value.detail and "something broke" in info.value.detail


def test_a_garbled_result_is_a_store_error(fake):
    _Fake.body = b'{"head":{"vars":["x"]},"results":{"bindings":[{"x":'
    with pytest.raises(StoreError, match="cannot read"):
        RemoteStore(fake + "/query").query("SELECT ?x {}")


# -- data version: writes by another process ----------------------------------------------------------------------

def test_another_writer_moves_the_data_version_and_the_cache_follows(oxigraph_factory):
    from mfmkg.cache import cached_query

    server = oxigraph_factory()
    a, b = remote(server), remote(server)
    q = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{G1}> {{ ?s ?p ?o }} }}"
    assert int(cached_query(b, q).rows[0][0]) == 0
    version = b.data_version()
    assert b.data_version() == version  # reading does not move it
    a.add([(URIRef(EX + "a"), P, Literal(1))], G1)
    assert b.data_version() > version
    assert int(cached_query(b, q).rows[0][0]) == 1
    assert [g for g in b.graphs() if g == META_GRAPH]


# -- the service on a remote store: real HTTP ----------------------------------------------------------------------

def assert_problem(resp: requests.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith(PROBLEM)
    body = resp.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_the_service_answers_503_while_the_server_is_down_and_recovers(oxigraph_factory, tmp_path):
    from mfmkg.service import create_app

    server = oxigraph_factory(persistent=True)
    app = create_app({"STORE": server.store_url, "TESTING": True, "QUERY_TIMEOUT": 5.0, "RELOAD_INTERVAL": 0,
                      "DATA_DIR": str(tmp_path / "unused")})
    live = LiveServer(app)
    count = MFM_PREFIX + "SELECT (COUNT(*) AS ?n) WHERE { ?a a mfm:Attack }"
    try:
        def sparql():
            return requests.get(live.url + "/sparql", params={"query": count}, headers={"Accept": JSON}, timeout=30)

        assert sparql().json()["results"]["bindings"][0]["n"]["value"] == "73"
        server.stop()
        for resp in (sparql(), requests.get(live.url + "/queries/sok-attack-table.json", timeout=30)):
            body = assert_problem(resp, 503)
            assert body["title"] == "Store unavailable" and f"127.0.0.1:{server.port}" in body["detail"]
        server.start()  # same port, same data: no restart of mfmkg
        again = sparql()
        assert again.status_code == 200 and again.json()["results"]["bindings"][0]["n"]["value"] == "73"
        table = requests.get(live.url + "/queries/sok-attack-table.json", timeout=30)
        assert table.status_code == 200
    finally:
        live.close()


def test_sparqlwrapper_through_mfmkg_serve_to_oxigraph_gives_the_sok_aggregates(oxigraph_server):
    """A real client, a real ``mfmkg serve --store`` process, the session's persistent ``oxigraph serve``."""
    requests.post(oxigraph_server + "/update", data="DROP ALL", headers={"Content-Type": "application/sparql-update"},
                  timeout=30).raise_for_status()
    proc, url = start_serve(["--store", f"sparql+http://{oxigraph_server.removeprefix('http://')}/query"])
    try:
        def ask(query: str) -> list[dict]:
            client = SPARQLWrapper(url + "/sparql")
            client.setMethod(POST)
            client.setReturnFormat(SW_JSON)
            client.setQuery(MFM_PREFIX + query)
            return client.queryAndConvert()["results"]["bindings"]

        assert ask("SELECT (COUNT(DISTINCT ?a) AS ?n) WHERE { ?a a mfm:Attack ; mfm:sokRow ?r }")[0]["n"]["value"] \
            == "73"
        rows = ask("SELECT ?m (COUNT(DISTINCT ?a) AS ?n) WHERE { ?a a mfm:Attack ; mfm:manipulatesModality ?m } "
                   "GROUP BY ?m")
        by_modality = {r["m"]["value"].rsplit("#", 1)[1]: int(r["n"]["value"]) for r in rows}
        assert (by_modality["Text"], by_modality["Image"], by_modality["Audio"]) == (44, 32, 2)
        rows = ask("SELECT ?x (COUNT(DISTINCT ?a) AS ?n) WHERE { ?a a mfm:Attack ; mfm:onAxis ?x } GROUP BY ?x")
        assert {r["x"]["value"].rsplit("#", 1)[1]: int(r["n"]["value"]) for r in rows} == {
            "Signal": 15, "Noise": 27, "Bandwidth": 31}
        table = requests.get(url + "/queries/sok-attack-table.json", timeout=60)
        assert table.status_code == 200 and len(table.json()["rows"]) == 73
    finally:
        stop(proc)


# -- the same answers from both backends ----------------------------------------------------------------------------

def _canonical(result) -> list:
    """Rows (or triples) as sorted N3 tuples; blank node labels differ between stores, so they are masked."""
    def n3(term):
        return None if term is None else ("_:b" if term.__class__.__name__ == "BNode" else term.n3())

    if isinstance(result, AskResult):
        return [result.value]
    items = result.rows if isinstance(result, SelectResult) else result.triples
    return sorted((tuple(n3(t) for t in item) for item in items), key=repr)


def test_every_named_query_answers_the_same_on_both_backends(oxigraph_factory):
    """The shipped named queries (gaps, coverage matrices, SoK table, search, ...), with their default arguments and
    with each required parameter set, over the ontology and the bundled literature sample loaded by the pipeline."""
    from mfmkg.loaders.pipeline import load_paths, sample_path
    from mfmkg.named_queries import allowed_values, load_queries, run_named
    from mfmkg.onto import ensure_loaded, ontology_files
    from mfmkg.store.embedded import EmbeddedStore

    stores = [EmbeddedStore(None), remote(oxigraph_factory())]
    for s in stores:
        ensure_loaded(s, ontology_files())
        load_paths(s, [str(sample_path())], source="sample")
    stats = [{g: n for g, n in s.stats().items() if g not in ("default", META_GRAPH)} for s in stores]
    assert stats[0] == stats[1] and len(stats[0]) >= 3
    compared = 0
    for q in load_queries().values():
        required = [p for p in q.params if p.required]
        choices = [(allowed_values(stores[0], p) or ["attack", "image"])[::7][:6] for p in required]
        for i in range(max([len(c) for c in choices], default=1)):
            args = {p.name: c[i % len(c)] for p, c in zip(required, choices)}
            embedded, remote_result = (_canonical(run_named(s, q, args)) for s in stores)
            assert embedded == remote_result, (q.name, args)
            compared += bool(embedded)
    assert compared >= 8
