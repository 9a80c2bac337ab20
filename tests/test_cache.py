"""The result cache (mfmkg.cache): keyed by the store's data version, which every write bumps.

Service behaviour is tested through real HTTP (a waitress server in this process); the counters come from
``/-/cache.json``.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests
from rdflib import Literal, URIRef

from conftest import TOKEN, LiveServer
from mfmkg.cache import ResultCache, cache_for, cacheable, cached_query
from mfmkg.namespaces import source_graph

MFM = "https://w3id.org/mfmkg/ont#"
RESULTS_JSON = "application/sparql-results+json"
THREAT_COUNT = "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> SELECT (COUNT(DISTINCT ?t) AS ?n) " \
               "{ ?t rdfs:subClassOf+ <https://w3id.org/mfmkg/ont#Threat> }"
RUNAWAY = "SELECT (COUNT(*) AS ?c) { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
EXTENSION = """@prefix mfm: <https://w3id.org/mfmkg/ont#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .

mfm:CacheTestThreat a owl:Class ;
    rdfs:subClassOf mfm:MisleadingThreat ;
    rdfs:label "misleading threat: cache test" ;
    skos:definition "A threat class that only exists to show that an ontology reload empties the cache." ;
    mfm:onFlow mfm:PredictionFlow ;
    mfm:onAxis mfm:Signal ;
    mfm:level mfm:ModelLevel ;
    mfm:hasGoal mfm:GoalAdversarial ;
    mfm:manipulatesModality mfm:Image .
"""


# -- fixtures -------------------------------------------------------------------------------------------------

@pytest.fixture
def make_server(tmp_path):
    """A factory of live servers with extra configuration; all are closed at the end."""
    from mfmkg.service import create_app

    servers = []

    def make(**config):
        app = create_app({"MEMORY": True, "TESTING": True, "WRITE_TOKEN": TOKEN, "QUERY_TIMEOUT": 5.0,
                          "RELOAD_INTERVAL": 0, "DATA_DIR": str(tmp_path / "data"), **config})
        srv = LiveServer(app)
        srv.store = app.extensions["mfmkg"].store
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.close()


@pytest.fixture
def srv(make_server):
    return make_server()


def stats(srv) -> dict:
    return requests.get(srv.url + "/-/cache.json", timeout=10).json()


def sparql(srv, query: str, accept: str = RESULTS_JSON) -> requests.Response:
    return requests.post(srv.url + "/sparql", data={"query": query}, headers={"Accept": accept}, timeout=30)


def evidence_of(srv, threat: str) -> int:
    rows = requests.get(srv.url + "/gaps.json", timeout=30).json()["rows"]
    return next(r["evidence"] for r in rows if r["threat"] == threat)


def publication_nt(n: int, topic: str) -> str:
    """One publication linked to ``topic`` in the loaders' shape (loaders/graph.py)."""
    pub, ev = f"https://w3id.org/mfmkg/id/pub/t-cache-test-{n}", f"https://w3id.org/mfmkg/id/evidence/t/{n}"
    return (f"<{pub}> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{MFM}Publication> .\n"
            f"<{pub}> <http://purl.org/dc/terms/title> \"Cache test paper {n}\" .\n"
            f"<{pub}> <{MFM}linkEvidence> <{ev}> .\n"
            f"<{ev}> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{MFM}LinkEvidence> .\n"
            f"<{ev}> <{MFM}topic> <{topic}> .\n"
            f"<{ev}> <{MFM}linkKind> <{MFM}Asserted> .\n")


# -- data version ---------------------------------------------------------------------------------------------

def test_every_write_bumps_the_data_version_and_reads_do_not(store):
    g = source_graph("cache-test")
    s, p, o = URIRef("urn:x:s"), URIRef("urn:x:p"), Literal("o")
    writes = [
        lambda: store.update(f"INSERT DATA {{ GRAPH <{g}> {{ <urn:x:a> <urn:x:p> 1 }} }}"),
        lambda: store.load('<urn:x:b> <urn:x:p> "2" .\n', "application/n-triples", g),
        lambda: store.add([(s, p, o)], g),
        lambda: store.replace_graph(g, [(s, p, Literal("new"))]),
        lambda: store.drop_graph(g),
        lambda: store.set_meta("cache-test", "1"),
    ]
    versions = [store.data_version()]
    for write in writes:
        write()
        versions.append(store.data_version())
        store.query("ASK { ?s ?p ?o }")
        store.stats()
        store.get_meta("cache-test")
        assert store.data_version() == versions[-1]  # reads leave it alone
    assert versions == sorted(set(versions)), versions  # strictly increasing


def test_a_failed_write_still_bumps(store):
    from mfmkg.errors import QuerySyntaxError

    before = store.data_version()
    with pytest.raises(QuerySyntaxError):
        store.update("INSERT DATA { this is not SPARQL")
    assert store.data_version() > before


def test_versions_are_unique_across_stores():
    from mfmkg.store.embedded import EmbeddedStore

    a, b = EmbeddedStore(None), EmbeddedStore(None)
    assert a.data_version() != b.data_version()
    a.update("INSERT DATA { <urn:x:a> <urn:x:b> <urn:x:c> }")
    assert a.data_version() not in (b.data_version(),)
    assert cache_for(a) is cache_for(a) and cache_for(a) is not cache_for(b)


def test_cached_query_sees_writes(store):
    q = "SELECT (COUNT(*) AS ?n) { GRAPH <urn:g> { ?s ?p ?o } }"
    assert int(cached_query(store, q).rows[0][0]) == 0
    hits = cache_for(store).hits
    assert int(cached_query(store, q).rows[0][0]) == 0
    assert cache_for(store).hits == hits + 1
    store.load("<urn:x:a> <urn:x:b> <urn:x:c> .\n", "application/n-triples", "urn:g")
    assert int(cached_query(store, q).rows[0][0]) == 1


# -- the cache alone ------------------------------------------------------------------------------------------

def test_lru_bound_on_entries_evicts_the_least_recently_used():
    cache = ResultCache(max_entries=2, max_bytes=10_000)
    cache.put("a", 1, "A", 10)
    cache.put("b", 1, "B", 10)
    assert cache.get("a", 1) == "A"  # a is now the most recently used
    cache.put("c", 1, "C", 10)
    assert cache.get("b", 1) is None and cache.get("a", 1) == "A" and cache.get("c", 1) == "C"
    assert cache.stats()["evictions"] == 1 and cache.stats()["entries"] == 2


def test_bound_on_bytes_evicts_and_oversized_results_are_not_kept():
    cache = ResultCache(max_entries=100, max_bytes=1000)
    for i in range(5):
        assert cache.put(i, 1, i, 240)
    st = cache.stats()
    assert st["bytes"] <= 1000 and st["entries"] == 4 and st["evictions"] == 1
    assert cache.get(0, 1) is None
    assert not cache.put("huge", 1, "x", 251)  # more than a quarter of the bound: never cached
    assert cache.get("huge", 1) is None


def test_a_newer_version_drops_older_entries_and_late_results_of_old_versions():
    cache = ResultCache()
    cache.put("q", 1, "old", 10)
    cache.put("q", 2, "new", 10)
    assert cache.stats()["entries"] == 1
    assert not cache.put("other", 1, "computed before the write", 10)
    assert cache.get("q", 2) == "new" and cache.get("q", 1) is None


def test_concurrent_misses_share_one_computation():
    cache, calls = ResultCache(), []

    def compute():
        calls.append(1)
        time.sleep(0.3)
        return "result"

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute("k", 1, compute, len)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["result"] * 8 and len(calls) == 1
    assert cache.get_or_compute("k", 1, compute, len) == "result" and len(calls) == 1


def test_a_failed_computation_is_not_cached():
    cache, calls = ResultCache(), []

    def failing():
        calls.append(1)
        raise RuntimeError("boom")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            cache.get_or_compute("k", 1, failing, len)
    assert len(calls) == 2 and cache.stats()["entries"] == 0


def test_uncacheable_queries():
    assert cacheable(THREAT_COUNT)
    for q in ("SELECT (RAND() AS ?r) {}", "SELECT (now() AS ?t) {}", "SELECT ?s { SERVICE <http://x/> { ?s ?p ?o } }",
              "SELECT (STRUUID() AS ?u) {}", "SELECT (BNODE() AS ?b) {}", "ASK { ?s ?p trueSERVICE<x:y>{} }"):
        assert not cacheable(q), q
    assert cacheable("SELECT ?known ?brand { ?known ?brand ?now }")
    assert cacheable("# a comment about a web service\nSELECT ?s { ?s ?p 'SERVICE <x:y> {}' }")


def test_zero_entries_switches_it_off(store):
    cache_for(store).configure(max_entries=0)
    cached_query(store, THREAT_COUNT)
    cached_query(store, THREAT_COUNT)
    assert cache_for(store).stats()["entries"] == 0 and cache_for(store).stats()["hits"] == 0


# -- through HTTP ---------------------------------------------------------------------------------------------

def test_repeated_gaps_request_is_a_hit(srv):
    first = requests.get(srv.url + "/gaps.json", timeout=30)
    before = stats(srv)
    second = requests.get(srv.url + "/gaps.json", timeout=30)
    after = stats(srv)
    assert first.status_code == second.status_code == 200 and first.json() == second.json()
    assert after["hits"] == before["hits"] + 1 and after["misses"] == before["misses"]
    assert after["data_version"] == before["data_version"]


def test_repeated_named_query_and_sparql_requests_are_hits(srv):
    for url, call in ((srv.url + "/queries/gaps.json", lambda: requests.get(srv.url + "/queries/gaps.json",
                                                                             timeout=30)),
                      (srv.url + "/sparql", lambda: sparql(srv, THREAT_COUNT))):
        first = call()
        before = stats(srv)
        second = call()
        after = stats(srv)
        assert first.status_code == second.status_code == 200, url
        assert first.content == second.content, url
        assert (after["hits"], after["misses"]) == (before["hits"] + 1, before["misses"]), url


def test_loading_a_publication_through_the_store_invalidates(srv):
    threat = requests.get(srv.url + "/gaps.json", timeout=30).json()["rows"][-1]["threat"]
    base = evidence_of(srv, threat)
    assert evidence_of(srv, threat) == base and stats(srv)["hits"] >= 1
    version = stats(srv)["data_version"]
    srv.store.load(publication_nt(1, threat), "application/n-triples", source_graph("cache-test"))
    assert stats(srv)["data_version"] > version
    misses = stats(srv)["misses"]
    assert evidence_of(srv, threat) == base + 1  # the new paper is counted: not the cached answer
    assert stats(srv)["misses"] == misses + 1
    srv.store.drop_graph(source_graph("cache-test"))
    assert evidence_of(srv, threat) == base


def test_sparql_results_follow_writes(srv):
    q = f"SELECT (COUNT(*) AS ?n) {{ ?p <{MFM}linkEvidence> ?e }}"
    count = lambda: int(sparql(srv, q).json()["results"]["bindings"][0]["n"]["value"])  # noqa: E731
    assert count() == count() == 0
    srv.store.load(publication_nt(2, MFM + "MisleadingThreat"), "application/n-triples", source_graph("cache-test"))
    assert count() == 1


def test_ontology_reload_invalidates(make_server, tmp_path):
    ext = tmp_path / "ext"
    ext.mkdir()
    srv = make_server(EXTENSIONS_DIR=str(ext))
    threats = lambda: {r["threat"] for r in requests.get(srv.url + "/gaps.json", timeout=30).json()["rows"]}  # noqa
    assert MFM + "CacheTestThreat" not in threats()
    assert MFM + "CacheTestThreat" not in threats()
    (ext / "mine.ttl").write_text(EXTENSION)
    resp = requests.post(srv.url + "/-/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
    assert resp.status_code == 200 and resp.json()["outcome"] == "reloaded", resp.text
    assert MFM + "CacheTestThreat" in threats()


def test_different_bindings_are_different_entries_and_equal_bindings_share_one(srv):
    plain = requests.get(srv.url + "/queries/gaps.json", timeout=30).json()
    before = stats(srv)
    image = requests.get(srv.url + "/queries/gaps.json", params={"modality": "Image"}, timeout=30).json()
    after = stats(srv)
    assert after["misses"] == before["misses"] + 1 and after["entries"] == before["entries"] + 1
    assert image["total"] < plain["total"]
    same = requests.get(srv.url + "/queries/gaps.json", params={"modality": "mfm:Image"}, timeout=30).json()
    assert same["rows"] == image["rows"] and stats(srv)["hits"] == after["hits"] + 1


def test_different_media_types_are_different_entries(srv):
    before = stats(srv)
    as_json = sparql(srv, THREAT_COUNT, RESULTS_JSON)
    as_csv = sparql(srv, THREAT_COUNT, "text/csv")
    middle = stats(srv)
    assert middle["misses"] == before["misses"] + 2 and middle["entries"] == before["entries"] + 2
    assert as_json.headers["Content-Type"].startswith(RESULTS_JSON)
    assert as_csv.headers["Content-Type"].startswith("text/csv") and as_csv.text.startswith("n\r\n")
    again_csv = sparql(srv, THREAT_COUNT, "text/csv")
    assert again_csv.text == as_csv.text and stats(srv)["hits"] == middle["hits"] + 1


def test_errors_are_not_cached(srv):
    before = stats(srv)
    for _ in range(2):
        assert sparql(srv, "SELECT ?x WHERE { ?x").status_code == 400
        assert requests.get(srv.url + "/queries/gaps.json", params={"modality": "NoSuchModality"},
                            timeout=30).status_code == 400
    after = stats(srv)
    assert after["entries"] == before["entries"] and after["hits"] == before["hits"]


def test_timeouts_are_not_cached(make_server):
    srv = make_server(QUERY_TIMEOUT=1.0)
    before = stats(srv)
    for _ in range(2):
        started = time.monotonic()
        resp = sparql(srv, RUNAWAY)
        assert resp.status_code == 503 and time.monotonic() - started >= 0.9  # really ran (and was stopped) again
    after = stats(srv)
    assert after["entries"] == before["entries"] and after["hits"] == before["hits"]


def test_nondeterministic_queries_are_not_cached(srv):
    q = "SELECT (STRUUID() AS ?u) {}"
    first = sparql(srv, q).json()["results"]["bindings"][0]["u"]["value"]
    second = sparql(srv, q).json()["results"]["bindings"][0]["u"]["value"]
    assert first != second and stats(srv)["uncacheable"] == 2


def test_size_bound_evicts_over_http(make_server):
    srv = make_server(CACHE_ENTRIES=2)
    queries = [f"SELECT ?t {{ ?t <http://www.w3.org/2000/01/rdf-schema#subClassOf> ?x }} LIMIT {n}" for n in (1, 2, 3)]
    for q in queries:
        assert sparql(srv, q).status_code == 200
    st = stats(srv)
    assert st["entries"] == 2 and st["evictions"] == 1 and st["max_entries"] == 2
    sparql(srv, queries[0])  # evicted: computed again
    assert stats(srv)["misses"] == st["misses"] + 1
