"""The SPARQL 1.1 Protocol endpoint, through real HTTP: requests, and SPARQLWrapper as a real client."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyoxigraph
import pytest
import requests
from rdflib import Graph, Literal, Namespace
from rdflib.namespace import RDF, XSD
from SPARQLWrapper import CSV, JSON, POST, POSTDIRECTLY, RDFXML, TSV, TURTLE, XML, SPARQLWrapper

from conftest import LiveServer

EX = Namespace("http://example.org/t/")
G_DATA = "http://example.org/graph/data"
G_FILL = "http://example.org/graph/fill"
PREFIX = f"PREFIX ex: <{EX}>\n"
SELECT = PREFIX + "SELECT ?s ?name ?age WHERE { ?s ex:name ?name ; ex:age ?age } ORDER BY ?name"
ASK_TRUE = PREFIX + 'ASK { ex:alice ex:name "Alice" }'
ASK_FALSE = PREFIX + 'ASK { ex:alice ex:name "Nobody" }'
CONSTRUCT = PREFIX + "CONSTRUCT { ?s ex:name ?n } WHERE { ?s ex:name ?n }"
RUNAWAY = "SELECT (COUNT(*) AS ?c) { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
RESULTS_JSON = "application/sparql-results+json"
PROBLEM = "application/problem+json"
SR = "{http://www.w3.org/2005/sparql-results#}"
DATA = [
    (EX.alice, RDF.type, EX.Person), (EX.alice, EX.name, Literal("Alice")), (EX.alice, EX.age, Literal(42)),
    (EX.bob, RDF.type, EX.Person), (EX.bob, EX.name, Literal("Bob")), (EX.bob, EX.age, Literal(7)),
]
FILL = [(EX[f"f{i}"], EX[f"p{i % 7}"], Literal(i)) for i in range(300)]


def load_test_data(app) -> None:
    store = app.extensions["mfmkg"].store
    store.add(DATA, G_DATA)
    store.add(FILL, G_FILL)  # makes the 4-way cross join a runaway whatever the ontology's size


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    """One live server (waitress in a thread, as the ``live_server`` fixture) for the read-only tests of this
    module: building the app runs the ontology checks, about 1.5 s, too slow to repeat for each of ~100 tests."""
    from mfmkg.service import create_app

    application = create_app({"MEMORY": True, "TESTING": True, "QUERY_TIMEOUT": 20.0, "MAX_ROWS": 1000,
                              "DATA_DIR": str(tmp_path_factory.mktemp("data"))})
    load_test_data(application)
    srv = LiveServer(application)
    yield srv.url + "/sparql"
    srv.close()


@pytest.fixture
def make_endpoint(app_config):
    """Start another live server with configuration overrides; returns its /sparql URL."""
    from mfmkg.service import create_app

    servers = []

    def make(**overrides) -> str:
        application = create_app({**app_config, **overrides})
        load_test_data(application)
        servers.append(LiveServer(application))
        return servers[-1].url + "/sparql"

    yield make
    for srv in servers:
        srv.close()


def get(endpoint, query, accept=None, **params):
    headers = {"Accept": accept} if accept else {}
    return requests.get(endpoint, params={"query": query, **params}, headers=headers, timeout=30)


def assert_problem(resp, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith(PROBLEM)
    body = resp.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def child_pids() -> set[int]:
    """Processes (zombies included) whose parent is this test process: the server runs in one of its threads."""
    me, found = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                status = fh.read()
        except OSError:
            continue
        if re.search(rf"^PPid:\s+{me}$", status, re.M):
            found.add(int(entry))
    return found


# -- SELECT and ASK results formats ----------------------------------------------------------------

def _parse_json(text):
    rows = json.loads(text)["results"]["bindings"]
    return [(r["s"]["value"], r["name"]["value"], r["age"]["value"], r["age"]["datatype"]) for r in rows]


def _parse_xml(text):
    root = ET.fromstring(text)
    assert [v.get("name") for v in root.iter(SR + "variable")] == ["s", "name", "age"]
    rows = []
    for result in root.iter(SR + "result"):
        cells = {b.get("name"): b[0] for b in result.iter(SR + "binding")}
        assert cells["s"].tag == SR + "uri" and cells["name"].tag == SR + "literal"
        rows.append((cells["s"].text, cells["name"].text, cells["age"].text, cells["age"].get("datatype")))
    return rows


def _parse_csv(text):
    assert "\r\n" in text  # the SPARQL CSV format uses CRLF line ends
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["s", "name", "age"]
    return [(s, n, a, None) for s, n, a in table[1:]]


def _parse_tsv(text):
    lines = text.rstrip("\n").split("\n")
    assert lines[0].split("\t") == ["?s", "?name", "?age"]
    rows = [line.split("\t") for line in lines[1:]]
    assert rows[0][0] == f"<{EX.alice}>" and rows[0][1] == '"Alice"'  # terms in N-Triples syntax
    assert rows[0][2] in ("42", f'"42"^^<{XSD.integer}>')
    return [(s.strip("<>"), n.strip('"'), re.match(r'"?(\d+)', a).group(1), None) for s, n, a in rows]


@pytest.mark.parametrize("accept, parse", [
    (RESULTS_JSON, _parse_json), ("application/sparql-results+xml", _parse_xml),
    ("text/csv", _parse_csv), ("text/tab-separated-values", _parse_tsv),
])
def test_select_in_each_results_format(endpoint, accept, parse):
    resp = get(endpoint, SELECT, accept)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].split(";")[0] == accept
    rows = parse(resp.text)
    assert [(s, n, a) for s, n, a, _ in rows] == [(str(EX.alice), "Alice", "42"), (str(EX.bob), "Bob", "7")]
    if parse in (_parse_json, _parse_xml):
        assert rows[0][3] == str(XSD.integer)


@pytest.mark.parametrize("accept, read", [
    (RESULTS_JSON, lambda t: json.loads(t)["boolean"]),
    ("application/sparql-results+xml", lambda t: ET.fromstring(t).find(SR + "boolean").text == "true"),
    ("text/csv", lambda t: t.splitlines()[1] == "true"),
    ("text/tab-separated-values", lambda t: t.splitlines()[1] == "true"),
])
@pytest.mark.parametrize("query, expected", [(ASK_TRUE, True), (ASK_FALSE, False)])
def test_ask_in_each_results_format(endpoint, accept, read, query, expected):
    resp = get(endpoint, query, accept)
    assert resp.status_code == 200 and resp.headers["Content-Type"].split(";")[0] == accept
    assert read(resp.text) is expected


@pytest.mark.parametrize("accept, rdflib_format", [
    ("text/turtle", "turtle"), ("application/n-triples", "nt"),
    ("application/ld+json", "json-ld"), ("application/rdf+xml", "xml"),
])
def test_construct_in_each_rdf_format(endpoint, accept, rdflib_format):
    resp = get(endpoint, CONSTRUCT, accept)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].split(";")[0] == accept
    g = Graph().parse(data=resp.content, format=rdflib_format)
    assert set(g) == {(EX.alice, EX.name, Literal("Alice")), (EX.bob, EX.name, Literal("Bob"))}


def test_describe_answers_rdf(endpoint):
    resp = get(endpoint, PREFIX + "DESCRIBE ex:alice", "application/n-triples")
    assert resp.status_code == 200
    assert (EX.alice, EX.age, Literal(42)) in Graph().parse(data=resp.text, format="nt")


# -- content negotiation ---------------------------------------------------------------------------

@pytest.mark.parametrize("query, accept, expected", [
    (SELECT, None, RESULTS_JSON),  # no Accept header at all: the default
    (CONSTRUCT, None, "text/turtle"),
    (SELECT, "*/*", RESULTS_JSON),
    (CONSTRUCT, "*/*", "text/turtle"),
    (SELECT, "text/*", "text/csv"),
    (CONSTRUCT, "application/*", "application/n-triples"),
    (SELECT, "application/json", "application/json"),
    (SELECT, "text/csv;q=0.5, application/sparql-results+xml", "application/sparql-results+xml"),
    (SELECT, "application/sparql-results+json;q=0, */*;q=0.8", "application/sparql-results+xml"),
    (SELECT, "text/html, text/tab-separated-values;q=0.9, */*;q=0.1", "text/tab-separated-values"),
    (CONSTRUCT, "text/html, application/ld+json;q=0.9, */*;q=0.1", "application/ld+json"),
    (ASK_TRUE, "application/sparql-results+xml", "application/sparql-results+xml"),
])
def test_negotiation(endpoint, query, accept, expected):
    # requests sends "Accept: */*" unless told otherwise; None removes the header
    resp = requests.get(endpoint, params={"query": query}, headers={"Accept": accept}, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].split(";")[0] == expected
    assert "Accept" in resp.headers["Vary"]


def test_application_json_gets_sparql_json_results(endpoint):
    resp = get(endpoint, SELECT, "application/json")
    assert resp.json()["results"]["bindings"][0]["name"]["value"] == "Alice"


@pytest.mark.parametrize("query", [SELECT, ASK_TRUE, CONSTRUCT])
@pytest.mark.parametrize("accept", ["image/png", "text/html, application/xhtml+xml;q=0.9", "*/*;q=0"])
def test_406_when_nothing_acceptable(endpoint, query, accept):
    body = assert_problem(get(endpoint, query, accept), 406)
    assert "accepts none" in body["detail"]


def test_text_types_declare_utf8(endpoint):
    resp = get(endpoint, PREFIX + 'SELECT ?x { BIND("ünïcødé" AS ?x) }', "text/csv")
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "ünïcødé" in resp.text


# -- the three ways to send a query, and the dataset parameters ------------------------------------

def _three_ways(endpoint, query, accept=RESULTS_JSON, **params):
    headers = {"Accept": accept}
    by_get = requests.get(endpoint, params={"query": query, **params}, headers=headers, timeout=30)
    by_form = requests.post(endpoint, data={"query": query, **params}, headers=headers, timeout=30)
    direct = requests.post(endpoint, params=params, data=query.encode(), timeout=30,
                           headers={**headers, "Content-Type": "application/sparql-query"})
    return by_get, by_form, direct


@pytest.mark.parametrize("query", [SELECT, ASK_TRUE, CONSTRUCT])
def test_get_form_and_direct_post_agree(endpoint, query):
    accept = "application/n-triples" if query is CONSTRUCT else RESULTS_JSON
    answers = _three_ways(endpoint, query, accept)
    assert [r.status_code for r in answers] == [200, 200, 200]
    if query is CONSTRUCT:
        graphs = [set(Graph().parse(data=r.text, format="nt")) for r in answers]
        assert graphs[0] and graphs[0] == graphs[1] == graphs[2]
    else:
        bodies = [r.json() for r in answers]
        assert bodies[0] == bodies[1] == bodies[2]


COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
PER_GRAPH = "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g"


def _count(resp) -> int:
    assert resp.status_code == 200, resp.text
    return int(resp.json()["results"]["bindings"][0]["n"]["value"])


@pytest.mark.parametrize("way", [0, 1, 2], ids=["get", "form", "direct"])
def test_default_graph_uri(endpoint, way):
    only_data = _three_ways(endpoint, COUNT, **{"default-graph-uri": G_DATA})[way]
    assert _count(only_data) == len(DATA)
    both = _three_ways(endpoint, COUNT, **{"default-graph-uri": [G_DATA, G_FILL]})[way]
    assert _count(both) == len(DATA) + len(FILL)


@pytest.mark.parametrize("way", [0, 1, 2], ids=["get", "form", "direct"])
def test_named_graph_uri(endpoint, way):
    resp = _three_ways(endpoint, PER_GRAPH, **{"named-graph-uri": G_FILL})[way]
    rows = resp.json()["results"]["bindings"]
    assert [(r["g"]["value"], int(r["n"]["value"])) for r in rows] == [(G_FILL, len(FILL))]


def test_without_dataset_the_default_graph_is_the_union(endpoint):
    resp = get(endpoint, PREFIX + "SELECT (COUNT(*) AS ?n) { ?s ?p ?o FILTER(STRSTARTS(STR(?s), STR(ex:))) }",
               RESULTS_JSON)
    assert _count(resp) == len(DATA) + len(FILL)


def test_unknown_and_repeated_parameters_are_ignored(endpoint):
    # what SPARQLWrapper sends for TSV: format twice, plus output and results
    params = [("query", SELECT), ("format", "tsv"), ("format", "text/tab-separated-values"),
              ("output", "tsv"), ("results", "tsv"), ("foo", "bar"), ("foo", "baz")]
    resp = requests.get(endpoint, params=params, headers={"Accept": "text/tab-separated-values"}, timeout=30)
    assert resp.status_code == 200
    assert resp.text.splitlines()[0] == "?s\t?name\t?age"
    same = requests.get(endpoint, params=[("query", SELECT), ("query", SELECT)], timeout=30)
    assert same.status_code == 200 and len(same.json()["results"]["bindings"]) == 2


# -- SPARQLWrapper as a real client ----------------------------------------------------------------

def _wrapper(endpoint, query, fmt, method=None, request_method=None):
    client = SPARQLWrapper(endpoint)
    client.setQuery(query)
    client.setReturnFormat(fmt)
    if method:
        client.setMethod(method)
    if request_method:
        client.setRequestMethod(request_method)
    return client.query()


@pytest.mark.parametrize("method, request_method", [(None, None), (POST, None), (POST, POSTDIRECTLY)],
                         ids=["get", "form", "postdirectly"])
def test_sparqlwrapper_json(endpoint, method, request_method):
    data = _wrapper(endpoint, SELECT, JSON, method, request_method).convert()
    assert [b["name"]["value"] for b in data["results"]["bindings"]] == ["Alice", "Bob"]


@pytest.mark.parametrize("method, request_method", [(None, None), (POST, POSTDIRECTLY)])
def test_sparqlwrapper_xml(endpoint, method, request_method):
    doc = _wrapper(endpoint, SELECT, XML, method, request_method).convert()  # a minidom Document
    literals = [n.firstChild.data for n in doc.getElementsByTagName("literal")]
    assert "Alice" in literals and "42" in literals


@pytest.mark.parametrize("fmt, header, sep", [(CSV, "s,name,age", ","), (TSV, "?s\t?name\t?age", "\t")])
@pytest.mark.parametrize("method, request_method", [(None, None), (POST, POSTDIRECTLY)])
def test_sparqlwrapper_csv_tsv(endpoint, fmt, header, sep, method, request_method):
    text = _wrapper(endpoint, SELECT, fmt, method, request_method).convert().decode("utf-8")
    lines = text.splitlines()
    assert lines[0] == header and "Alice" in lines[1].split(sep)[1]


def test_sparqlwrapper_ask(endpoint):
    assert _wrapper(endpoint, ASK_TRUE, JSON).convert()["boolean"] is True


@pytest.mark.parametrize("fmt", [TURTLE, RDFXML])
def test_sparqlwrapper_construct(endpoint, fmt):
    result = _wrapper(endpoint, CONSTRUCT, fmt).convert()
    g = result if isinstance(result, Graph) else Graph().parse(data=result, format="turtle")
    assert (EX.alice, EX.name, Literal("Alice")) in g


# -- errors: syntax, read-only, body types, missing query ------------------------------------------

@pytest.mark.parametrize("query", ["SELECT * WHERE { ?s ?p }", "SELEC * {}", "SELECT * { ?s ?p ?o ",
                                   PREFIX + "SELECT * { ?s ex:name ?n FILTER(?n = ) }"])
def test_syntax_error_is_400_with_the_parsers_message(endpoint, query):
    with pytest.raises(SyntaxError) as parser:
        pyoxigraph.Store().query(query)
    for resp in _three_ways(endpoint, query):
        body = assert_problem(resp, 400)
        assert body["detail"] == str(parser.value)


def test_unterminated_string_is_400(endpoint):
    body = assert_problem(get(endpoint, "SELECT * { ?s ?p 'open }"), 400)
    assert "unterminated string" in body["detail"]


def _update_requests(endpoint):
    update = f'INSERT DATA {{ GRAPH <{G_DATA}> {{ <{EX.eve}> <{EX.name}> "Eve" }} }}'
    return {
        "get": lambda: requests.get(endpoint, params={"update": update}, timeout=30),
        "form": lambda: requests.post(endpoint, data={"update": update}, timeout=30),
        "direct": lambda: requests.post(endpoint, data=update.encode(), timeout=30,
                                        headers={"Content-Type": "application/sparql-update"}),
        "update-as-query": lambda: requests.get(endpoint, params={"query": update}, timeout=30),
        "form-with-both": lambda: requests.post(endpoint, data={"query": SELECT, "update": update}, timeout=30),
    }


@pytest.mark.parametrize("way", ["get", "form", "direct", "update-as-query", "form-with-both"])
def test_updates_are_403_and_change_nothing(endpoint, way):
    body = assert_problem(_update_requests(endpoint)[way](), 403)
    assert "read-only" in body["detail"]
    assert get(endpoint, PREFIX + 'ASK { ?s ex:name "Eve" }', RESULTS_JSON).json()["boolean"] is False


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "multipart/form-data; boundary=x",
                                          "application/sparql-results+json", None])
def test_other_body_types_are_415(endpoint, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    resp = requests.post(endpoint, data=SELECT.encode(), headers=headers, timeout=30)
    body = assert_problem(resp, 415)
    assert "application/sparql-query" in body["detail"]


@pytest.mark.parametrize("send", [
    lambda url: requests.get(url, timeout=30),
    lambda url: requests.get(url, params={"query": ""}, timeout=30),
    lambda url: requests.post(url, data={"default-graph-uri": G_DATA}, timeout=30),
    lambda url: requests.post(url, data=b"  ", headers={"Content-Type": "application/sparql-query"}, timeout=30),
    lambda url: requests.get(url, params=[("query", "ASK {}"), ("query", "SELECT * {}")], timeout=30),
    lambda url: requests.get(url, params={"query": SELECT, "default-graph-uri": "not an IRI"}, timeout=30),
    lambda url: requests.post(url, data=b"\xff\xfe", headers={"Content-Type": "application/sparql-query"},
                              timeout=30),
], ids=["get-no-query", "empty-query", "form-no-query", "blank-body", "two-queries", "bad-graph-iri", "not-utf8"])
def test_bad_requests_are_400(endpoint, send):
    assert_problem(send(endpoint), 400)


def test_other_methods_are_405_problems(endpoint):
    resp = requests.put(endpoint, data=SELECT, timeout=30)
    assert_problem(resp, 405)
    assert "GET" in resp.headers["Allow"]


# -- SERVICE --------------------------------------------------------------------------------------

@pytest.fixture
def listener():
    """A local TCP listener that should never be contacted; yields (socket, url)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock, f"http://127.0.0.1:{sock.getsockname()[1]}/"
    sock.close()


def assert_no_connection(sock) -> None:
    time.sleep(0.2)
    with pytest.raises(BlockingIOError):  # a connection attempt would be waiting in the backlog
        sock.accept()


SERVICE_QUERIES = {
    "plain": "SELECT * {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
    "silent-lowercase": "select * {{ service silent <{url}> {{ ?s ?p ?o }} }}",
    "prefixed-glued": "PREFIX : <{url}> SELECT * {{ SERVICE:{{ ?s ?p ?o }} }}",
    "silent-glued": "SELECT * {{ SERVICESILENT<{url}>{{ ?s ?p ?o }} }}",
    "after-boolean": "SELECT * {{ ?s ?p trueSERVICE<{url}>{{ ?s ?p ?o }} }}",
    "lt-string-trick": "SELECT * {{ ?s ?p ?o FILTER(?o<'x>') SERVICE <{url}> {{ ?s ?p ?o }} FILTER(?o='') }}",
    "comment-trick": "SELECT * {{ ?s ?p ?o FILTER(?o<?s)#>\n SERVICE <{url}> {{ ?s ?p ?o }} }}",
    "relative-iri": "BASE <{url}x/> SELECT * {{ SERVICE <../> {{ ?s ?p ?o }} }}",
    "in-exists": "SELECT * {{ ?s ?p ?o FILTER EXISTS {{ SERVICE <{url}> {{ ?s ?p ?o }} }} }}",
    "variable": "SELECT * {{ VALUES ?e {{ <{url}> }} SERVICE ?e {{ ?s ?p ?o }} }}",
}


@pytest.mark.parametrize("name", SERVICE_QUERIES)
def test_service_is_refused_without_contacting_it(endpoint, listener, name):
    sock, url = listener
    query = SERVICE_QUERIES[name].format(url=url)
    for resp in _three_ways(endpoint, query):
        body = assert_problem(resp, 403)
        assert "SERVICE" in body["detail"] and "SERVICE_ALLOWLIST" in body["detail"]
    assert_no_connection(sock)


@pytest.mark.parametrize("query", [
    PREFIX + 'SELECT ?n { ?s ex:name ?n FILTER(?n != "SERVICE <http://127.0.0.1:1/> { ?s ?p ?o }") }',
    PREFIX + "SELECT ?n { ?s ex:name ?n FILTER(?n != '''multi\nline SERVICE <http://127.0.0.1:1/> {}''') }",
    PREFIX + "# SERVICE <http://127.0.0.1:1/> { ?s ?p ?o }\nSELECT ?n { ?s ex:name ?n }",
    PREFIX + "SELECT ?n { ?s ex:name ?n MINUS { ?s a <http://schema.org/Service> } }",
    "PREFIX service: <http://example.org/t/>\nSELECT ?n { ?s service:name ?n }",
])
def test_the_word_service_elsewhere_is_fine(endpoint, query):
    resp = get(endpoint, query, RESULTS_JSON)
    assert resp.status_code == 200, resp.text
    assert {b["n"]["value"] for b in resp.json()["results"]["bindings"]} == {"Alice", "Bob"}


class _FakeSparql(BaseHTTPRequestHandler):
    """A remote SPARQL endpoint answering every query with one row: ?x = "from-remote"."""

    seen: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.seen.append(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
        body = json.dumps({"head": {"vars": ["x"]},
                           "results": {"bindings": [{"x": {"type": "literal", "value": "from-remote"}}]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", RESULTS_JSON)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args):
        pass


def test_allowlisted_service_is_called(make_endpoint, listener):
    sock, refused_url = listener
    remote = ThreadingHTTPServer(("127.0.0.1", 0), _FakeSparql)
    threading.Thread(target=remote.serve_forever, daemon=True).start()
    remote_url = f"http://127.0.0.1:{remote.server_address[1]}/sparql"
    _FakeSparql.seen = []
    try:
        url = make_endpoint(SERVICE_ALLOWLIST=[remote_url])
        resp = get(url, f"SELECT ?x {{ SERVICE <{remote_url}> {{ ?x ?y ?z }} }}", RESULTS_JSON)
        assert resp.status_code == 200, resp.text
        assert resp.json()["results"]["bindings"] == [{"x": {"type": "literal", "value": "from-remote"}}]
        assert len(_FakeSparql.seen) == 1
        # an allowlisted call does not open the door to others in the same query
        both = f"SELECT ?x {{ SERVICE <{remote_url}> {{ ?x ?y ?z }} SERVICE <{refused_url}> {{ ?x ?y ?z }} }}"
        assert_problem(get(url, both), 403)
        assert len(_FakeSparql.seen) == 1
        assert_no_connection(sock)
    finally:
        remote.shutdown()
        remote.server_close()


# -- limits: time and rows -------------------------------------------------------------------------

def assert_only_live_query_processes(before: set[int]) -> None:
    """Every child process started since ``before`` is a reusable query process that is alive and registered
    (idle in its pool), not a runaway left running nor a zombie; retired ones are reaped in the background."""
    from mfmkg import sandbox

    deadline = time.monotonic() + 5
    while True:
        extra = child_pids() - before - sandbox.worker_pids()
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert extra == set()
    for pid in child_pids() - before:
        with open(f"/proc/{pid}/status") as fh:
            assert not re.search(r"^State:\s+Z", fh.read(), re.M)


def test_runaway_query_is_stopped(make_endpoint):
    url = make_endpoint(QUERY_TIMEOUT=1)
    before = child_pids()
    started = time.monotonic()
    resp = get(url, RUNAWAY, RESULTS_JSON)
    elapsed = time.monotonic() - started
    body = assert_problem(resp, 503)
    assert body["title"] == "Query time limit exceeded"
    assert "1 s" in body["detail"]
    assert 0.9 < elapsed < 5, elapsed
    assert_only_live_query_processes(before)  # the runaway's process is killed and reaped, no zombie either
    after = get(url, ASK_TRUE, RESULTS_JSON)
    assert after.status_code == 200 and after.json()["boolean"] is True


def test_concurrent_runaways_and_normal_queries(make_endpoint):
    url = make_endpoint(QUERY_TIMEOUT=1.5)
    before = child_pids()
    queries = [RUNAWAY, SELECT] * 4
    with ThreadPoolExecutor(len(queries)) as pool:
        answers = list(pool.map(lambda q: get(url, q, RESULTS_JSON), queries))
    for query, resp in zip(queries, answers):
        if query is RUNAWAY:
            assert_problem(resp, 503)
        else:
            assert resp.status_code == 200
            assert [b["name"]["value"] for b in resp.json()["results"]["bindings"]] == ["Alice", "Bob"]
    assert_only_live_query_processes(before)


@pytest.mark.parametrize("query, accept, count", [
    (PREFIX + "SELECT ?s { ?s ?p ?o FILTER(STRSTARTS(STR(?s), STR(ex:))) }", RESULTS_JSON,
     lambda r: len(r.json()["results"]["bindings"])),
    (PREFIX + "SELECT ?s { ?s ?p ?o FILTER(STRSTARTS(STR(?s), STR(ex:))) }", "text/csv",
     lambda r: len(r.text.splitlines()) - 1),
    (PREFIX + "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o FILTER(STRSTARTS(STR(?s), STR(ex:))) }",
     "application/n-triples", lambda r: len(Graph().parse(data=r.text, format="nt"))),
], ids=["json", "csv", "construct"])
def test_row_cap_sets_truncated_header(make_endpoint, query, accept, count):
    url = make_endpoint(MAX_ROWS=3)
    resp = get(url, query, accept)
    assert resp.status_code == 200
    assert resp.headers["X-SPARQL-Truncated"] == "true"
    assert count(resp) == 3
    small = get(url, SELECT, RESULTS_JSON)  # two rows: under the cap
    assert small.status_code == 200 and "X-SPARQL-Truncated" not in small.headers


# -- headers on every response ---------------------------------------------------------------------

@pytest.mark.parametrize("send", [
    lambda url: get(url, SELECT, RESULTS_JSON),
    lambda url: get(url, CONSTRUCT, "text/turtle"),
    lambda url: get(url, SELECT, "image/png"),
    lambda url: get(url, "SELECT * {"),
    lambda url: requests.get(url, params={"update": "CLEAR ALL"}, timeout=30),
], ids=["select", "construct", "406", "400", "403"])
def test_vary_accept_and_no_cors(endpoint, send):
    resp = send(endpoint)
    assert "Accept" in [v.strip() for v in resp.headers.get("Vary", "").split(",")]
    cors = requests.get(endpoint, params={"query": ASK_TRUE}, headers={"Origin": "https://elsewhere.example"},
                        timeout=30)
    assert not [h for h in cors.headers if h.lower().startswith("access-control-")]


# -- deep nesting, no time limit, body size at the HTTP server ----------------------------------------------

NESTED = {
    "groups": lambda n: "SELECT * WHERE " + "{ " * n + "?s ?p ?o " + "} " * n,
    "parens": lambda n: "SELECT * WHERE { ?s ?p ?o FILTER(" + "(" * n + "true" + ")" * n + ") }",
    "optional": lambda n: "SELECT * WHERE { ?s ?p ?o " + "OPTIONAL { ?s ?p ?o " * n + "}" * n + " }",
    "subselect": lambda n: "SELECT * WHERE { " + "{ SELECT * WHERE { " * n + "?s ?p ?o" + " } }" * n + " }",
    "brackets": lambda n: "SELECT * WHERE { ?s ?p " + "[ ?p " * n + "?o" + " ]" * n + " }",
    "mixed": lambda n: "SELECT * WHERE { ?s ?p ?o FILTER EXISTS " + "{ ?s ?p ?o FILTER(" * n + "true" + ") }" * n
                       + " }",
}


@pytest.mark.parametrize("name", NESTED)
def test_a_query_nested_too_deeply_is_400_before_the_engine(endpoint, name):
    """Bug: nesting a few thousand levels deep crashed pyoxigraph's parser (SIGSEGV), answered as a 503 with the
    time limit on and killing the whole server without one. Now a 400 problem, whatever the engine would do."""
    from mfmkg.service.sparql import MAX_NESTING

    query = NESTED[name](MAX_NESTING + 1 if name != "mixed" else MAX_NESTING // 2 + 1)
    for resp in _three_ways(endpoint, query):
        body = assert_problem(resp, 400)
        assert f"more than {MAX_NESTING} levels" in body["detail"]


@pytest.mark.parametrize("name", ["groups", "parens", "optional", "subselect"])
def test_nesting_within_the_limit_is_answered(endpoint, name):
    resp = get(endpoint, NESTED[name](100), RESULTS_JSON)
    assert resp.status_code == 200, resp.text[:300]


def test_nesting_depth_skips_strings_comments_and_iris():
    from mfmkg.service.sparql import nesting_depth

    assert nesting_depth('SELECT * { ?s ?p "((((" FILTER(?o != \'{{{\') }') == 2
    assert nesting_depth("# {{{{{{\nASK { <http://x/(((> ?p ?o }") == 1
    assert nesting_depth("ASK { ?s ?p \"\"\"a\n{{{\"\"\" }") == 1
    assert nesting_depth(r"PREFIX ex: <http://x/> ASK { ex:a\( ?p ?o }") == 1
    assert nesting_depth("ASK { " + "{" * 10_000, 256) == 257  # stops counting past the limit


def test_without_time_limit_queries_still_run_in_a_query_process(app_config):
    """Bug: QUERY_TIMEOUT = 0 ran public queries in the server process, where one deep query could crash it.
    Now it means "no time limit", still in a query process."""
    from mfmkg.errors import QueryRefused
    from mfmkg.service import create_app

    application = create_app({**app_config, "QUERY_TIMEOUT": 0})
    load_test_data(application)
    store = application.extensions["mfmkg"].store
    if not store.forkable:
        pytest.skip("a remote store runs queries on its server")
    srv = LiveServer(application)
    try:
        url = srv.url + "/sparql"
        assert get(url, SELECT, RESULTS_JSON).status_code == 200

        def where(*args, **kwargs):
            raise QueryRefused(f"ran in {os.getpid()}")

        store.query_raw = where  # seen by the query processes forked from now on (after the write below)
        store.add([(EX.carol, EX.name, Literal("Carol"))], G_DATA)
        body = assert_problem(get(url, SELECT, RESULTS_JSON), 403)
        assert body["detail"].startswith("ran in ") and body["detail"] != f"ran in {os.getpid()}"
        del store.query_raw
        assert_problem(get(url, NESTED["subselect"](3000)), 400)
    finally:
        srv.close()


class _WaitressServer(LiveServer):
    """LiveServer, but with the options ``mfmkg serve`` gives waitress."""

    def __init__(self, app):  # noqa: D107 - same as LiveServer's
        from waitress import create_server

        from mfmkg.cli.serve import waitress_options

        opts = waitress_options({**app.config, "HOST": "127.0.0.1", "PORT": 0}, threads=4)
        self.server = create_server(app, **opts)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()


def test_waitress_refuses_a_body_far_above_the_limit_before_reading_it(tmp_path):
    """Bug: waitress read (and spooled to disk) up to 1 GiB of any body before the application could answer 413.
    ``mfmkg serve`` now sets waitress's ``max_request_body_size`` to twice ``MAX_CONTENT_LENGTH``."""
    from mfmkg.cli.serve import waitress_options
    from mfmkg.service import create_app

    assert waitress_options({"HOST": "h", "PORT": 1, "MAX_CONTENT_LENGTH": 1000}, 2)["max_request_body_size"] == 2000
    assert "max_request_body_size" not in waitress_options({"HOST": "h", "PORT": 1, "MAX_CONTENT_LENGTH": None}, 2)
    limit = 64 * 1024
    app = create_app({"MEMORY": True, "TESTING": True, "RELOAD_INTERVAL": 0, "MAX_CONTENT_LENGTH": limit,
                      "DATA_DIR": str(tmp_path / "data")})
    srv = _WaitressServer(app)
    try:
        port = int(srv.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST /sparql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/sparql-query\r\n"
                         b"Content-Length: 1000000000\r\n\r\n")
            answer = sock.recv(200)  # before any of the body was sent
        assert answer.startswith(b"HTTP/1.1 413"), answer
        # just above the application's limit: still the application's own problem answer
        resp = requests.post(srv.url + "/sparql", data=b"ASK {} #" + b"x" * limit, timeout=30,
                             headers={"Content-Type": "application/sparql-query"})
        assert_problem(resp, 413)
        # chunked, without Content-Length: refused once the body passes twice the limit
        chunks = (b"x" * 65536 for _ in range(64))
        resp = requests.post(srv.url + "/sparql", data=chunks, timeout=30,
                             headers={"Content-Type": "application/sparql-query"})
        assert resp.status_code == 413
        assert requests.get(srv.url + "/sparql", params={"query": "ASK {}"}, timeout=30).status_code == 200
    finally:
        srv.close()
