"""Query form and SERVICE detection (mfmkg.sparql_text) and content negotiation (service/negotiate.py)."""

from __future__ import annotations

import time

import pyoxigraph
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfmkg.errors import NotAcceptable, QueryRefused, QuerySyntaxError
from mfmkg.service.negotiate import choose, content_type_header, parse_accept, quality
from mfmkg.sparql_text import check_services, query_kind, service_calls

E = "http://127.0.0.1:9/"  # the discard port: nothing answers there


def oxigraph_accepts(query: str) -> bool:
    """Whether pyoxigraph parses the query (results are not consumed, so nothing is evaluated)."""
    try:
        pyoxigraph.Store().query(query)
    except SyntaxError:
        return False
    return True


@pytest.mark.parametrize("query, kind", [
    ("SELECT * {}", "select"), ("select*{}", "select"), ("ASK {}", "ask"), ("ASK{}", "ask"),
    ("CONSTRUCT WHERE { ?s ?p ?o }", "graph"), ("DESCRIBE <http://e/x>", "graph"),
    ("PREFIX a: <http://a/> BASE <http://b/>\n# a comment\nPREFIX : <c> SELECT * {}", "select"),
    ("PREFIX a:<http://a/>ASK{}", "ask"), ('VERSION "1.2" SELECT * {}', "select"),
    ("  \n\t construct { ?s ?p ?o } where { ?s ?p ?o }", "graph"),
    ("garbage", None), ("", None), ("PREFIX a: SELECT * {}", None),
])
def test_query_kind(query, kind):
    assert query_kind(query) == kind


@pytest.mark.parametrize("update", ["INSERT DATA { <a:b> <a:c> <a:d> }", "delete where { ?s ?p ?o }",
                                    "PREFIX a: <http://a/>\nLOAD <http://example.org/x>", "CLEAR ALL",
                                    "DROP GRAPH <a:b>", "WITH <a:g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }"])
def test_updates_are_refused(update):
    with pytest.raises(QueryRefused, match="read-only"):
        query_kind(update)


FOUND = [
    (f"SELECT * {{ SERVICE <{E}> {{ ?s ?p ?o }} }}", [E]),
    (f"SELECT * {{ service silent <{E}> {{ }} }}", [E]),
    (f"PREFIX : <{E}> SELECT * {{ SERVICE:{{ ?s ?p ?o }} }}", [E]),
    (f"PREFIX e: <{E}> SELECT * {{ SERVICE e:sparql {{ ?s ?p ?o }} }}", [E + "sparql"]),
    (f"PREFIX e: <{E}> SELECT * {{ SERVICE e:a\\-b {{ ?s ?p ?o }} }}", [E + "a-b"]),
    (f"SELECT * {{ SERVICESILENT<{E}>{{ ?s ?p ?o }} }}", [E]),
    (f"SELECT * {{ ?s ?p trueSERVICE<{E}>{{ ?s ?p ?o }} }}", [E]),
    (f"SELECT * {{ ?s ?p 1SERVICE<{E}>{{}} }}", [E]),
    (f"SELECT * {{ ?s ?p ?o FILTER(?o<'x>') SERVICE <{E}> {{ ?s ?p ?o }} FILTER(?o='') }}", [E]),
    (f"SELECT * {{ ?s ?p ?o FILTER(?o<?s)#>\n SERVICE <{E}> {{ ?s ?p ?o }} }}", [E]),
    (f"SELECT * {{ ?s ?p ?o FILTER(?o<'x#>') sErViCe SILENT <{E}> {{}} }}", [E]),
    (f"PREFIX ex: <http://e/> SELECT * {{ ex:a\\'b ?p ?o SERVICE <{E}> {{}} }}", [E]),
    (f"BASE <{E}a/b/> SELECT * {{ SERVICE <../../> {{}} }}", [E]),
    ("SELECT * { SERVICE <http://127.0.0.1:9/\\u0041> {} }", [E + "A"]),
    ("SELECT * { SERVICE ?x { ?s ?p ?o } }", [None]),
    ("SELECT * { SERVICE <relative> { ?s ?p ?o } }", [None]),
    ("PREFIX u: <http://u/> SELECT * { SERVICE undeclared:x { ?s ?p ?o } }", [None]),
    (f"SELECT * {{ {{ SERVICE <{E}a> {{}} }} UNION {{ SERVICE <{E}b> {{}} }} }}", [E + "a", E + "b"]),
]

NOT_FOUND = [
    'SELECT * { ?s ?p "SERVICE <http://127.0.0.1:9/> { }" }',
    "SELECT * { ?s ?p 'SERVICE <http://127.0.0.1:9/> { }' }",
    "SELECT * { ?s ?p '''multi\nSERVICE <http://127.0.0.1:9/> {}''' }",
    'SELECT * { ?s ?p """ \\" SERVICE <http://127.0.0.1:9/> {} """ }',
    "# SERVICE <http://127.0.0.1:9/> {}\nSELECT * { ?s ?p ?o }",
    "SELECT * { ?s a <http://schema.org/Service> }",
    "PREFIX service: <http://e/> SELECT * { ?s service:p ?o }",
    "PREFIX ex: <http://e/> SELECT * { ?s ex:service ?o }",
    "SELECT ?service { ?service ?p ?o }",
    "SELECT * { ?s ?p ?o } VALUES (?a ?b) { (<http://x#a> <http://x#b>) }",
    "SELECT * { <http://e/o'brien> ?p 'x' }",
    'SELECT * { ?s ?p "x"@service }',
]


@pytest.mark.parametrize("query, endpoints", FOUND)
def test_service_calls_found(query, endpoints):
    assert [c.endpoint for c in service_calls(query)] == endpoints


@pytest.mark.parametrize("query, endpoints", FOUND)
def test_found_cases_are_real_service_calls_for_pyoxigraph(query, endpoints):
    # all are valid for pyoxigraph, except the two whose endpoint cannot be resolved (refused either way)
    assert oxigraph_accepts(query) is not ("<relative>" in query or "undeclared:" in query)


@pytest.mark.parametrize("query", NOT_FOUND)
def test_no_service_call(query):
    assert oxigraph_accepts(query)
    assert service_calls(query) == []


def test_check_services_allowlist():
    allowed = f"SELECT * {{ SERVICE <{E}ok> {{}} }}"
    assert [c.endpoint for c in check_services(allowed, frozenset({E + "ok"}))] == [E + "ok"]
    with pytest.raises(QueryRefused, match="SERVICE_ALLOWLIST"):
        check_services(allowed, frozenset())
    with pytest.raises(QueryRefused, match=r"\?x"):
        check_services("SELECT * { SERVICE ?x {} }", frozenset({E}))
    assert check_services("SELECT * {}", frozenset()) == []


def test_unterminated_string_is_a_syntax_error():
    with pytest.raises(QuerySyntaxError, match="line 2"):
        service_calls("SELECT * {\n ?s ?p 'open }")


PIECES = ["SELECT", "ASK", "SERVICE", "silent", "PREFIX", "BASE", " ", "\n", "{", "}", "<", ">", "'", '"',
          "'" * 3, '"' * 3, "#", "\\", "?x", "$y", "@en", "_:b", "e:", ":", "1", "\u00b3", "\u0663", ".", "(",
          ")", "<http://e/>", "\u3001", "\x00", "\u2028"]
SPARQLISH = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(text=st.one_of(st.text(max_size=60), SPARQLISH))
def test_any_text_is_lexed_or_a_syntax_error(text):
    """Whatever arrives, the lexer answers or raises QuerySyntaxError/QueryRefused: never a 500."""
    try:
        assert isinstance(service_calls(text), list)
        assert query_kind(text) in ("select", "ask", "graph", None)
    except (QuerySyntaxError, QueryRefused):
        pass


@pytest.mark.parametrize("text", ["SELECT * { ?s ?p \u00b3 }", "SELECT * { ?s ?p \u0663 }", "\u00b3",
                                  "SELECT * { ?s ?p ?o } @", "SELECT * { \x00 }"])
def test_odd_characters_do_not_crash(text):
    assert service_calls(text) == []


def test_lexing_stays_linear_with_many_ambiguous_iris():
    query = "SELECT * { FILTER(" + "?a<'x#>'&&" * 20000 + "true) }"  # 20000 places with two readings, one line
    started = time.monotonic()
    assert service_calls(query) == []
    assert time.monotonic() - started < 10  # quadratic behaviour took minutes here


# -- negotiation ---------------------------------------------------------------------------------

def test_parse_accept():
    assert parse_accept("Text/CSV;q=0.5, */*; q=0.1, *, bad, */x, text/plain;q=nope, a/b;level=1") == [
        ("text", "csv", 0.5), ("*", "*", 0.1), ("*", "*", 1.0), ("a", "b", 1.0)]


@pytest.mark.parametrize("header, media_type, q", [
    ("text/*;q=0.3, text/csv;q=0.7, */*;q=0.1", "text/csv", 0.7),
    ("text/*;q=0.3, text/csv;q=0.7, */*;q=0.1", "text/turtle", 0.3),
    ("text/*;q=0.3, text/csv;q=0.7, */*;q=0.1", "application/ld+json", 0.1),
    ("text/csv;q=0, */*", "text/csv", 0.0),  # the specific q=0 wins over the wildcard
    ("image/png", "text/csv", 0.0),
])
def test_quality(header, media_type, q):
    assert quality(media_type, parse_accept(header)) == q


@pytest.mark.parametrize("accept, kind, answered, written", [
    (None, "select", "application/sparql-results+json", "application/sparql-results+json"),
    ("", "ask", "application/sparql-results+json", "application/sparql-results+json"),
    ("  ", "graph", "text/turtle", "text/turtle"),
    ("*/*", "graph", "text/turtle", "text/turtle"),
    ("text/*", "select", "text/csv", "text/csv"),
    ("application/json", "select", "application/json", "application/sparql-results+json"),
    ("application/sparql-results+json;q=0, */*", "select", "application/sparql-results+xml",
     "application/sparql-results+xml"),
    ("application/rdf+xml;q=0.9, application/ld+json", "graph", "application/ld+json", "application/ld+json"),
    ("text/turtle;q=0.5, application/n-triples;q=0.5", "graph", "text/turtle", "text/turtle"),  # tie: ours
    ("text/csv", None, "text/csv", "text/csv"),  # unknown kind: the results offers
])
def test_choose(accept, kind, answered, written):
    choice = choose(accept, kind)
    assert (choice.content_type, choice.store_type) == (answered, written)


@pytest.mark.parametrize("accept, kind", [("image/png", "select"), ("text/csv", "graph"),
                                          ("application/json", "graph"), ("*/*;q=0", "ask"), ("junk", "select")])
def test_choose_not_acceptable(accept, kind):
    with pytest.raises(NotAcceptable, match="accepts none"):
        choose(accept, kind)


def test_content_type_header():
    assert content_type_header("text/csv") == "text/csv; charset=utf-8"
    assert content_type_header("application/sparql-results+json") == "application/sparql-results+json"
