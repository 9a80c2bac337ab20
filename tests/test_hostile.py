"""Hostile input: fuzzed literature files, fuzzed and injected named-query parameters, oversized requests,
pathological SPARQL, and the write token (compared in constant time, never logged).

Hypothesis runs are bounded (``max_examples`` 40-150, no deadline) so the module stays fast. Everything goes to
127.0.0.1; a server started here logs to a file and is stopped by the fixture.
"""

from __future__ import annotations

import ast
import hmac
import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pyoxigraph
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib import Literal, URIRef

from conftest import REPO, free_port, stop, wait_until_up

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from mfmkg.binding import bind_values, term_sparql
from mfmkg.errors import LoadError
from mfmkg.loaders import registry
from mfmkg.loaders.identity import EVIDENCE_BASE, PUB_BASE, SOURCE_BASE
from mfmkg.loaders.pipeline import Input, load_source, sample_path
from mfmkg.loaders.record import Entry
from mfmkg.named_queries import load_queries
from mfmkg.namespaces import source_graph

PROBLEM = "application/problem+json"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])
FUZZ_SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.data_too_large])

#: Text that tries to break out of a SPARQL literal, IRI or group, or out of an N-Triples line.
INJECTIONS = [
    'x" } ; DROP ALL ; #',
    "<http://x> } DELETE WHERE {",
    "x' } ; CLEAR ALL ; #",
    '") } INSERT DATA { <http://e/s> <http://e/p> "o" } #',
    '\\" } DROP ALL #',
    '""" } DROP ALL #',
    "x> } ; DROP ALL ; <y",
    "} } } UNION { ?s ?p ?o } #",
    '" . <http://evil/s> <http://evil/p> "o" .\n<http://evil/s> <http://evil/p> "',
    "> <http://evil/p> <http://evil/o> .\n<x",
    "\x00\r\n\u2028\u2029\\u0022\\U0000003e",
    "?s ?p ?o",
    "mfm:Image",
    "%22%20%7D%20DROP%20ALL%20%23",
]


def assert_problem(resp, status: int | tuple[int, ...]) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert resp.status_code in statuses, (resp.status_code, resp.get_data(as_text=True)[:500]
                                          if hasattr(resp, "get_data") else resp.text[:500])
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith(PROBLEM), ctype
    body = resp.get_json() if hasattr(resp, "get_json") else resp.json()
    assert body["status"] == resp.status_code and body["title"] and body["detail"]
    assert "Traceback" not in json.dumps(body)
    return body


def test_secure_defaults():
    """The defaults SECURITY.md relies on: loopback only, a time limit, a row cap, a body limit, no SERVICE
    endpoint, no CORS, and no write access until a token is configured."""
    from mfmkg.config import load_config

    cfg = load_config({}, environ={})
    assert cfg["HOST"] == "127.0.0.1"
    assert 0 < float(cfg["QUERY_TIMEOUT"]) <= 60
    assert 0 < int(cfg["MAX_ROWS"]) <= 100_000
    assert 0 < int(cfg["MAX_CONTENT_LENGTH"]) <= 100 * 1024 * 1024
    assert not cfg["SERVICE_ALLOWLIST"] and not cfg["CORS_ORIGINS"] and not cfg["WRITE_TOKEN"]


# ==============================================================================================================
# 1. Literature loaders: every format, random bytes and structured-but-wrong input
# ==============================================================================================================

_FIELDS = ["title", "author", "authors", "year", "month", "date", "published", "venue", "journal", "booktitle",
           "doi", "arxiv", "eprint", "url", "link", "abstract", "keywords", "tags", "notes", "category", "id",
           "issued", "container-title", "DOI", "URL", "keyword", "number", "note", "family", "given", "literal",
           "date-parts", "raw", "archive_location", "summary", "Title"]
_NASTY = st.sampled_from(INJECTIONS + ["", " ", "{", "}", "{{}", "\\", "\\\\", '"', "'", "@", "#", "%", ",", ";",
                                       "10.1000/x", "10.", "arXiv:2306.13213v2", "2306.13213", "hep-th/9901001",
                                       "https://arxiv.org/abs/2306.13213", "https://doi.org/10.1/x y",
                                       "javascript:alert(1)", "file:///etc/passwd", "0", "-1", "99999999999999999999",
                                       "2024", "1899", "2024-13", "May 2024", "nan", "1e308", "\ud7ff", "\U0010ffff",
                                       "\u202e", "ＡＢＣ", "a" * 3000, "\\textbf{x}", "$x^2$", "&amp;", "<b>x</b>"])
_TEXT = st.one_of(_NASTY, st.text(max_size=40), st.text(alphabet="{}\\\"'@,=#%<>&;\n\r\t ", max_size=20))
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_FIELDS) | _TEXT,
                                                                                 inner, max_size=5),
                     max_leaves=12)
_RECORD = st.one_of(
    st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=8),
    # mostly valid (a title and a year) with hostile text in the other fields: these reach the triple writer
    st.builds(lambda title, extra: {**extra, "title": "Paper " + title, "year": 2024},
              _TEXT, st.dictionaries(st.sampled_from(_FIELDS), _TEXT, max_size=8)))


def _bibtex_value(text: str, style: int) -> str:
    return ["{" + text + "}", '"' + text + '"', text, "{" + text][style]


@st.composite
def bibtex_files(draw) -> bytes:
    blocks = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["article", "inproceedings", "misc", "string", "comment", "preamble", "",
                                     "ARTICLE", "a b"]))
        key = draw(_TEXT)
        fields = draw(st.lists(st.tuples(st.sampled_from(_FIELDS) | _TEXT, _TEXT, st.integers(0, 3)), max_size=6))
        body = ",\n".join(f"  {k} = {_bibtex_value(v, s)}" for k, v, s in fields)
        opener, closer = draw(st.sampled_from([("{", "}"), ("(", ")"), ("{", ""), ("{", ")")]))
        blocks.append(f"@{kind}{opener}{key},\n{body}\n{closer}\n")
    return draw(st.sampled_from(["", "junk before\n", "% comment\n"])).encode() + "\n".join(blocks).encode(
        "utf-8", "surrogatepass")


@st.composite
def csv_files(draw) -> bytes:
    header = draw(st.lists(st.sampled_from(_FIELDS) | _TEXT, min_size=1, max_size=7))
    if draw(st.booleans()):
        header.append("title")
    rows = draw(st.lists(st.lists(_TEXT, max_size=9), max_size=5))
    quote = draw(st.booleans())

    def cell(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if quote else v

    lines = [",".join(cell(h) for h in header)] + [",".join(cell(v) for v in row) for row in rows]
    return "\n".join(lines).encode("utf-8", "surrogatepass")


@st.composite
def json_files(draw) -> bytes:
    shape = draw(st.integers(0, 3))
    if shape == 0:
        value = draw(st.lists(_RECORD, max_size=5))
    elif shape == 1:
        value = {draw(_TEXT): draw(st.lists(_RECORD, max_size=3)) for _ in range(draw(st.integers(0, 3)))}
    elif shape == 2:
        value = draw(_RECORD)
    else:
        value = draw(_JSON)
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    if draw(st.integers(0, 4)) == 0:  # truncated or with a stray character
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["", "}", "]", ",", '"', "\\"]))
    return text.encode("utf-8", "surrogatepass")


@st.composite
def jsonl_files(draw) -> bytes:
    lines = [json.dumps(v) for v in draw(st.lists(st.one_of(_RECORD, _JSON), max_size=6))]
    lines += draw(st.lists(_TEXT, max_size=2))  # lines that are not JSON
    order = draw(st.permutations(lines))
    return "\n".join(order).encode("utf-8", "surrogatepass")


_CSL_KEYS = ["title", "author", "editor", "issued", "container-title", "event-title", "DOI", "URL", "abstract",
             "keyword", "number", "archive_location", "note", "type", "id", "citation-key"]
_CSL_NAME = st.one_of(_JSON, st.fixed_dictionaries({}, optional={"family": _JSON, "given": _JSON, "literal": _JSON,
                                                                 "suffix": _JSON,
                                                                 "non-dropping-particle": _JSON}))
_CSL_ISSUED = st.one_of(_JSON, st.fixed_dictionaries({}, optional={
    "date-parts": st.lists(st.lists(st.one_of(st.integers(-10**6, 10**6), _TEXT, st.none()), max_size=4),
                           max_size=3),
    "raw": _TEXT, "literal": _TEXT}))


@st.composite
def csljson_files(draw) -> bytes:
    items = []
    for _ in range(draw(st.integers(0, 4))):
        item = {}
        for key in draw(st.lists(st.sampled_from(_CSL_KEYS), max_size=8, unique=True)):
            if key in ("author", "editor"):
                item[key] = draw(st.one_of(st.lists(_CSL_NAME, max_size=3), _JSON))
            elif key == "issued":
                item[key] = draw(_CSL_ISSUED)
            else:
                item[key] = draw(st.one_of(_TEXT, _JSON))
        items.append(item)
    value = items if draw(st.booleans()) else draw(st.one_of(_JSON, st.just(items)))
    return json.dumps(value).encode("utf-8", "surrogatepass")


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@st.composite
def atom_files(draw) -> bytes:
    escape = draw(st.booleans())
    esc = _xml_escape if escape else (lambda t: t)
    entries = []
    for _ in range(draw(st.integers(0, 3))):
        parts = []
        for tag in draw(st.lists(st.sampled_from(["id", "title", "summary", "published", "arxiv:doi",
                                                  "arxiv:journal_ref", "author", "category"]), max_size=8)):
            text = draw(st.one_of(_TEXT, st.sampled_from(["http://arxiv.org/abs/2306.13213v2",
                                                          "http://arxiv.org/api/errors#x", "2023-06-23T10:00:00Z"])))
            if tag == "author":
                parts.append(f"<author><name>{esc(text)}</name></author>")
            elif tag == "category":
                parts.append(f'<category term="{esc(text).replace(chr(34), "&quot;")}"/>')
            else:
                parts.append(f"<{tag}>{esc(text)}</{tag}>")
        entries.append("<entry>" + "".join(parts) + "</entry>")
    prolog = draw(st.sampled_from([
        "", '<?xml version="1.0" encoding="UTF-8"?>\n',
        '<!DOCTYPE feed [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>\n',
        '<!DOCTYPE feed SYSTEM "file:///etc/passwd">\n', "<!-- c -->\n"]))
    root = draw(st.sampled_from(["feed", "rss", "a:feed"]))
    doc = (f'{prolog}<{root} xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">'
           + "".join(entries) + draw(st.sampled_from([f"</{root}>", "", "</feed", "&b;"])))
    return doc.encode("utf-8", "surrogatepass")


@st.composite
def markdown_files(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 10))):
        t, u = draw(_TEXT), draw(st.one_of(_TEXT, st.sampled_from(
            ["https://arxiv.org/abs/2306.13213", "https://doi.org/10.1000/x", "https://x.org/p", "../rel.md"])))
        lines.append(draw(st.sampled_from([
            f"# {t}", f"## A1. {t}", f"- [{t}]({u})", f"- **[{t}]({u})** ![B](https://img.shields.io/badge/{t}-x)",
            f"- [2024/05] **{t}** [[paper]({u})] [[code]({u})] ({t}'24)", f"  - {t} {u}", f"| {t} | {u} |",
            "| Title | Link | Venue | Date |", "|---|---|---|---|", f"| {t} | [{t}]({u}) | {t} | {t} |", "```",
            "<!--", "-->", f"1. {t} <{u}>", t])))
    return "\n".join(lines).encode("utf-8", "surrogatepass")


STRUCTURED = {"bibtex": bibtex_files(), "csv": csv_files(), "json": json_files(), "jsonl": jsonl_files(),
              "csljson": csljson_files(), "arxiv-atom": atom_files(), "markdown": markdown_files()}


def test_every_format_is_fuzzed():
    assert set(STRUCTURED) == set(registry.FORMATS)


def check_parse(fmt: str | None, data: bytes) -> list[Entry]:
    """Parse; only LoadError may escape, and every entry is well-typed."""
    try:
        entries = list(registry.parse(data, fmt=fmt, name=f"fuzz.{fmt or 'any'}"))
    except LoadError as exc:
        assert exc.detail and exc.path.startswith("fuzz.")
        assert exc.line is None or (isinstance(exc.line, int) and exc.line >= 1)
        return []
    for e in entries:
        assert isinstance(e, Entry)
        assert isinstance(e.line, int) and e.line >= 1
        assert e.title is None or isinstance(e.title, str)
        assert e.year is None or isinstance(e.year, int)
        assert e.month is None or isinstance(e.month, int)
        for name in ("venue", "doi", "arxiv_id", "url", "abstract"):
            assert getattr(e, name) is None or isinstance(getattr(e, name), str), name
        for name in ("authors", "keywords", "tags", "categories"):
            assert all(isinstance(v, str) for v in getattr(e, name)), name
        assert all(isinstance(f, str) and isinstance(r, str) and r for f, r in e.problems), e.problems
    return entries


@pytest.mark.parametrize("fmt", [*registry.FORMATS, None])
@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_give_typed_errors_only(fmt, data):
    check_parse(fmt, data)


@pytest.mark.parametrize("fmt", list(registry.FORMATS))
@FUZZ
@given(data=st.data())
def test_structured_wrong_input_gives_typed_errors_only(fmt, data):
    raw = data.draw(STRUCTURED[fmt])
    check_parse(fmt, raw)
    check_parse(None, raw)  # format detection on the same content


@pytest.fixture(scope="module")
def onto_store():
    from mfmkg.onto import ensure_loaded, ontology_files
    from mfmkg.store.embedded import EmbeddedStore

    s = EmbeddedStore(None)
    ensure_loaded(s, ontology_files())
    yield s
    s.close()


def _foreign_subjects(store, graph: str) -> list[str]:
    """Subjects in a source graph that are not publications, their author lists, evidence or the source."""
    res = store.query(f"""SELECT DISTINCT ?s WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }}
        FILTER(!STRSTARTS(STR(?s), "{PUB_BASE}") && !STRSTARTS(STR(?s), "{EVIDENCE_BASE}")
               && !STRSTARTS(STR(?s), "{SOURCE_BASE}")) }}""")
    return [str(r[0]) for r in res.rows]


@pytest.mark.parametrize("fmt", list(registry.FORMATS))
@FUZZ_SLOW
@given(data=st.data())
def test_the_whole_pipeline_survives_hostile_files(fmt, data, onto_store):
    """Parse, validate, classify, build triples and write them (skipping invalid entries): only LoadError may
    escape, nothing outside the source's graph changes, and the graph holds only what the loader writes."""
    raw = data.draw(STRUCTURED[fmt])
    before = {g: n for g, n in onto_store.stats().items() if g != "default"}
    graph = source_graph("fuzz")
    try:
        rep = load_source(onto_store, "fuzz", [Input(f"fuzz.{fmt}", data=raw)], fmt=fmt, skip_invalid=True)
    except LoadError:
        rep = None
    after = {g: n for g, n in onto_store.stats().items() if g != "default"}
    changed = {g for g in set(before) | set(after) if before.get(g) != after.get(g)}
    assert changed <= {graph, "https://w3id.org/mfmkg/graph/meta"}, changed
    if rep is not None:
        assert rep.status in ("loaded", "unchanged", "failed"), rep.status
    assert not _foreign_subjects(onto_store, graph)
    onto_store.drop_graph(graph)


def test_injection_in_every_field_stays_a_literal(onto_store):
    """Each injection string in every field of an entry: the triples written are exactly those of the fields."""
    records = [{"title": f"Paper {i} {s}", "authors": [s, "A B"], "year": 2024, "venue": s, "abstract": s,
                "keywords": [s], "tags": [s], "url": f"https://x.org/{i}"} for i, s in enumerate(INJECTIONS)]
    raw = "\n".join(json.dumps(r) for r in records).encode()
    rep = load_source(onto_store, "inj", [Input("inj.jsonl", data=raw)], fmt="jsonl", skip_invalid=True)
    graph = source_graph("inj")
    assert rep.status == "loaded", [str(p) for p in rep.errors]
    assert not _foreign_subjects(onto_store, graph)
    res = onto_store.query(f"SELECT ?t WHERE {{ GRAPH <{graph}> {{ ?p <http://purl.org/dc/terms/title> ?t }} }}")
    titles = {str(r[0]) for r in res.rows}
    # squashed whitespace is the parser's documented normalisation; everything else arrives verbatim
    assert titles == {" ".join(r["title"].split()) for r in records}
    assert not onto_store.query("ASK { <http://evil/s> ?p ?o }").value
    onto_store.drop_graph(graph)


_BIG = "1" * 5000  # above Python's 4300-digit limit for int(str): json.loads raises ValueError, not JSONDecodeError


@pytest.mark.parametrize("fmt, text", [
    ("jsonl", '{"title": "T", "year": ' + _BIG + "}\n"),
    ("json", '[{"title": "T", "year": ' + _BIG + "}]"),
    ("csljson", '[{"title": "T", "issued": {"date-parts": [[' + _BIG + "]]}}]"),
    ("csv", "title,year\nT," + _BIG + "\n"),
    ("bibtex", "@article{k, title={T}, year={" + _BIG + "}}\n"),
])
def test_huge_numbers_are_typed_errors(fmt, text):
    """A number too long for Python's int conversion is a bad entry or a bad file, never a ValueError."""
    check_parse(fmt, text.encode())


def _parse_in_child(fmt: str, data: bytes, limit: float) -> None:
    """Parse in a child process that is killed after ``limit`` seconds (a regex that backtracks for minutes
    cannot be interrupted in-process)."""
    code = ("import sys\nfrom mfmkg.loaders import registry\nfrom mfmkg.errors import LoadError\n"
            "try:\n    list(registry.parse(sys.stdin.buffer.read(), fmt=sys.argv[1], name='x'))\n"
            "except LoadError:\n    pass\n")
    try:
        out = subprocess.run([sys.executable, "-c", code, fmt], input=data, capture_output=True, timeout=limit)
    except subprocess.TimeoutExpired:
        pytest.fail(f"parsing {len(data)} bytes of {fmt} took more than {limit:g} s (super-linear backtracking)")
    assert out.returncode == 0, out.stderr.decode()[-2000:]


@pytest.mark.parametrize("prefix", ["@article{", "@article{k", "@article{k,", "@article{k, title =", "@string{a ="])
@pytest.mark.parametrize("space", [" ", "\t", "\n"])
def test_long_runs_of_whitespace_in_bibtex_parse_in_linear_time(prefix, space):
    """The entry-head pattern once backtracked quadratically: 400k spaces after ``@article{`` took minutes."""
    _parse_in_child("bibtex", (prefix + space * 400_000 + "!\n").encode(), 30)


def test_xml_entities_and_dtds_are_refused():
    bomb = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
            + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i else "&lol;" * 10}">'
                      for i in range(9))
            + ']>\n<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>&lol8;</title></entry></feed>')
    external = ('<?xml version="1.0"?>\n<!DOCTYPE feed [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
                '<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>&x;</title></entry></feed>')
    for doc in (bomb, external, external.replace("<!DOCTYPE", "<!doctype")):
        with pytest.raises(LoadError, match="(?i)DTD|DOCTYPE|ENTITY"):
            list(registry.parse(doc.encode(), fmt="arxiv-atom", name="x.atom"))


# ==============================================================================================================
# 2. Named-query parameters over HTTP: only 200 or a 400 problem; injection impossible
# ==============================================================================================================

@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory):
    from mfmkg.loaders.pipeline import load_paths
    from mfmkg.service import create_app

    application = create_app({"MEMORY": True, "TESTING": True, "WRITE_TOKEN": "t" * 32, "QUERY_TIMEOUT": 5.0,
                              "RELOAD_INTERVAL": 0, "MAX_CONTENT_LENGTH": 64 * 1024,
                              "DATA_DIR": str(tmp_path_factory.mktemp("hostile"))})
    store = application.extensions["mfmkg"].store
    load_paths(store, [str(sample_path())], source="sample")
    return application


@pytest.fixture(scope="module")
def hclient(hostile_app):
    return hostile_app.test_client()


def _stats(app) -> dict:
    return app.extensions["mfmkg"].store.stats()


QUERIES = load_queries()
_PARAM_TEXT = st.one_of(_NASTY, st.text(max_size=60), st.sampled_from(["true", "false", "1", "0", "2024", "-5",
                                                                         "Image", "mfm:Image", "image", "A01"]))


def _check_answer(resp) -> None:
    if resp.status_code == 200:
        return
    assert_problem(resp, 400)


@FUZZ
@given(data=st.data())
def test_fuzzed_parameters_give_200_or_a_400_problem(hclient, hostile_app, data):
    name = data.draw(st.sampled_from(sorted(QUERIES)))
    query = QUERIES[name]
    args = {}
    for p in query.params:
        if data.draw(st.booleans()) or p.required:
            args[p.name] = data.draw(_PARAM_TEXT)
    if data.draw(st.integers(0, 4)) == 0:
        args[data.draw(st.sampled_from(["_size", "_next", "_format", "unknown"]))] = data.draw(_PARAM_TEXT)
    ext = data.draw(st.sampled_from(["", ".json", ".csv", ".tsv"]))
    resp = hclient.get(f"/queries/{name}{ext}", query_string=args)
    _check_answer(resp)


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_through_every_parameter_changes_nothing(hclient, hostile_app, payload):
    before = _stats(hostile_app)
    for name, query in QUERIES.items():
        for p in query.params:
            args = {q.name: payload if q is p else "" for q in query.params}
            for path in (f"/queries/{name}.json", f"/queries/{name}.csv"):
                resp = hclient.get(path, query_string={k: v for k, v in args.items() if v})
                _check_answer(resp)
                if resp.status_code == 200 and path.endswith(".json"):
                    echoed = resp.get_json()["params"].get(p.name)
                    # a value accepted is bound as one RDF term: the text itself for strings, never code
                    if p.type == "string":
                        assert echoed == payload
        for path in ("/threats/", "/attacks/", "/defenses/", "/publications/", "/ui/threats/"):
            resp = hclient.get(path + payload.replace("/", "%2F"))
            assert resp.status_code in (400, 404), (path, resp.status_code)
    assert _stats(hostile_app) == before


def test_a_stored_payload_is_found_as_text(hclient, hostile_app):
    """Bound as a literal: searching for the injection text finds the one resource whose label is that text."""
    store = hostile_app.extensions["mfmkg"].store
    payload = INJECTIONS[0]
    subject = URIRef("https://w3id.org/mfmkg/id/test/payload")
    graph = "https://w3id.org/mfmkg/graph/test-payload"
    store.add([(subject, URIRef("http://www.w3.org/2000/01/rdf-schema#label"), Literal(payload))], graph)
    try:
        before = _stats(hostile_app)
        resp = hclient.get("/queries/search.json", query_string={"q": payload})
        assert resp.status_code == 200, resp.get_data(as_text=True)
        rows = resp.get_json()["rows"]
        assert len(rows) == 1 and str(subject) in json.dumps(rows[0]), rows  # that label, and nothing else
        assert _stats(hostile_app) == before
    finally:
        store.drop_graph(graph)


def test_binding_writes_terms_never_text():
    """Each payload bound as a literal matches exactly the triple whose object is that text; IRIs that could
    close ``<...>`` and variable names that are not names are refused."""
    store = pyoxigraph.Store()
    s, p = pyoxigraph.NamedNode("http://example.org/s"), pyoxigraph.NamedNode("http://example.org/p")
    for i, payload in enumerate(INJECTIONS):
        store.add(pyoxigraph.Quad(pyoxigraph.NamedNode(f"http://example.org/s{i}"), p, pyoxigraph.Literal(payload)))
    store.add(pyoxigraph.Quad(s, p, pyoxigraph.Literal("other")))
    for i, payload in enumerate(INJECTIONS):
        q = bind_values("SELECT ?s WHERE { ?s <http://example.org/p> ?x }", {"x": Literal(payload)})
        assert [sol["s"].value for sol in store.query(q)] == [f"http://example.org/s{i}"], q
        if any(c in payload for c in '<>"{}|^`\\ \t\r\n'):
            with pytest.raises(ValueError):
                term_sparql(URIRef(payload))
    assert len(store) == len(INJECTIONS) + 1
    with pytest.raises(ValueError):
        bind_values("SELECT ?x WHERE { ?s ?p ?x }", {"x } DROP ALL #": Literal("v")})


_ARG_NAMES = ["modality", "flow", "axis", "level", "family", "threat", "defense", "q", "page", "iri", "inferred",
              "fullOnly", "unmitigated", "_size", "_next", "since", "weights", "portfolio", "budget", "time_limit",
              "method", "coverable_only", "format", "source", "kind", "share", "query", "dry_run"]


def _get_routes(app) -> list[str]:
    return sorted({r.rule for r in app.url_map.iter_rules() if "GET" in r.methods and "static" not in r.endpoint})


_ROUTE_ARG = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>")


@FUZZ
@given(data=st.data())
def test_every_get_route_survives_hostile_paths_and_arguments(hclient, hostile_app, data):
    """Any GET route, a hostile value in each path variable and random query arguments: never a 5xx, every error
    a problem, and nothing written."""
    rule = data.draw(st.sampled_from(_get_routes(hostile_app)))

    def fill(m: re.Match) -> str:
        conv, options = m.group(1), m.group(2)
        if conv == "any":
            return data.draw(st.sampled_from([o.strip().strip("'\"") for o in options.split(",")]))
        value = data.draw(_PARAM_TEXT.filter(bool))
        return quote(value, safe="/" if conv == "path" else "")

    path = _ROUTE_ARG.sub(fill, rule)
    args = data.draw(st.dictionaries(st.sampled_from(_ARG_NAMES), _PARAM_TEXT, max_size=4))
    accept = data.draw(st.sampled_from([None, "*/*", "text/html", "application/json", "text/csv", "image/png",
                                        "application/json;q=0, */*;q=0.1", "\x00"]))
    before = _stats(hostile_app)
    resp = hclient.get(path, query_string=args, headers={"Accept": accept} if accept else {})
    assert resp.status_code < 500, (path, args, resp.status_code, resp.get_data(as_text=True)[:500])
    if resp.status_code >= 400:
        assert resp.headers["Content-Type"].startswith(PROBLEM), (path, resp.status_code, resp.headers)
    assert _stats(hostile_app) == before


def test_every_get_route_is_fuzzed(hostile_app):
    routes = _get_routes(hostile_app)
    assert {"/sparql", "/queries/<name>", "/threats/<string:id>", "/ui/resolve", "/gaps"} <= set(routes), routes


_UPLOAD_TYPES = ["application/x-bibtex", "text/csv", "application/json", "application/x-ndjson",
                 "application/vnd.citationstyles.csl+json", "application/atom+xml", "text/markdown",
                 "application/octet-stream", "text/plain", ""]


def _has_publications_post(app) -> bool:
    return any(r.rule == "/publications" and "POST" in r.methods for r in app.url_map.iter_rules())


@FUZZ_SLOW
@given(data=st.data())
def test_hostile_uploads_give_a_report_or_a_problem(hclient, hostile_app, data):
    """POST /publications with the token and hostile bodies of every type: a report (200/201) or a 4xx problem,
    never a 5xx."""
    if not _has_publications_post(hostile_app):
        pytest.skip("POST /publications is not implemented yet")
    ctype = data.draw(st.sampled_from(_UPLOAD_TYPES))
    fmt = {"application/x-bibtex": "bibtex", "text/csv": "csv", "application/json": "json",
           "application/x-ndjson": "jsonl", "application/vnd.citationstyles.csl+json": "csljson",
           "application/atom+xml": "arxiv-atom", "text/markdown": "markdown"}.get(ctype)
    body = data.draw(st.one_of(st.binary(max_size=500), STRUCTURED[fmt] if fmt else st.binary(max_size=50)))
    args = {"dry_run": data.draw(st.sampled_from(["", "true"])),
            "skip_invalid": data.draw(st.sampled_from(["", "1"]))}
    if data.draw(st.booleans()):
        args["source"] = data.draw(_PARAM_TEXT)
    resp = hclient.post("/publications", data=body, content_type=ctype or None, query_string=args,
                        headers={"Authorization": "Bearer " + hostile_app.config["WRITE_TOKEN"]})
    assert resp.status_code in (200, 201, 400, 413, 415), (resp.status_code, resp.get_data(as_text=True)[:500])
    if resp.status_code >= 400:
        assert resp.headers["Content-Type"].startswith(PROBLEM)


@pytest.mark.parametrize("body, ctype", [
    ("[" * 20_000 + "]" * 20_000, "application/json"),
    ("[" * 5_000 + "]" * 5_000, "application/yaml"),
    ("{\"a\": " * 5_000 + "1" + "}" * 5_000, "application/json"),
], ids=["json-array", "yaml-flow", "json-object"])
def test_deeply_nested_deployment_is_a_400(hclient, body, ctype):
    """POST /analysis/flow parses JSON or YAML: a document nested too deeply for the parser is the client's
    error (400), not an unhandled RecursionError (500)."""
    assert_problem(hclient.post("/analysis/flow", data=body, content_type=ctype), 400)


# ==============================================================================================================
# 3. Oversized requests and pathological queries, on a real ``mfmkg serve``
# ==============================================================================================================

class Serve:
    """``mfmkg serve --memory`` with its log in a file (read by the tests), stopped at the end."""

    def __init__(self, tmp: Path, env: dict):
        self.log_path = tmp / "serve.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "mfmkg", "serve", "--memory", "--port", str(self.port)],
                                     env={**os.environ, "MFMKG_DATA_DIR": str(tmp / "data"),
                                          "MFMKG_RELOAD_INTERVAL": "0", **env},
                                     cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_until_up(self.url, timeout=60, proc=self.proc)
        except RuntimeError as exc:
            raise AssertionError(f"{exc}\n{self.text()}") from exc

    def text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        r = requests.get(self.url + "/sparql", params={"query": "ASK { ?s ?p ?o }"}, timeout=30)
        return r.status_code == 200 and r.json()["boolean"] is True

    def stop(self) -> None:
        stop(self.proc)
        self.log.close()


TOKEN = "tok-" + secrets.token_hex(16)
LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Serve(tmp_path_factory.mktemp("serve"), {"MFMKG_WRITE_TOKEN": TOKEN, "MFMKG_QUERY_TIMEOUT": "2",
                                                    "MFMKG_MAX_CONTENT_LENGTH": str(LIMIT)})
    yield srv
    srv.stop()


@pytest.mark.parametrize("how", ["direct", "form", "chunked"])
def test_oversized_sparql_body_is_413(server, how):
    body = "SELECT * WHERE { ?s ?p ?o } #" + "x" * LIMIT
    if how == "direct":
        resp = requests.post(server.url + "/sparql", data=body.encode(),
                             headers={"Content-Type": "application/sparql-query"}, timeout=60)
    elif how == "form":
        resp = requests.post(server.url + "/sparql", data={"query": body}, timeout=60)
    else:  # no Content-Length: the limit must hold while the body streams in
        chunks = (body.encode()[i:i + 65536] for i in range(0, len(body), 65536))
        resp = requests.post(server.url + "/sparql", data=chunks,
                             headers={"Content-Type": "application/sparql-query"}, timeout=60)
    assert_problem(resp, 413)
    assert server.alive()


def test_an_oversized_body_is_refused_before_it_is_read(server):
    """A client declaring a body far above MAX_CONTENT_LENGTH is answered 413 without the server first reading
    (and spooling to disk) the whole body: otherwise any anonymous client makes the server read and store up to
    waitress's own limit (1 GiB by default) per request."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /sparql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/sparql-query\r\n"
                     b"Content-Length: 1000000000\r\n\r\n")
        try:
            for _ in range(8):  # 8 MiB of the declared 1 GB, well above the 1 MiB limit
                sock.sendall(b"x" * (1024 * 1024))
        except OSError:  # the server stopped reading or closed: what we want
            pass
        try:
            answer = sock.recv(200)
        except (socket.timeout, OSError) as exc:
            answer = repr(exc).encode()
    assert answer.startswith(b"HTTP/1.1 413"), f"no early 413; got {answer[:80]!r}"
    assert server.alive()


def test_a_body_just_under_the_limit_is_read(server):
    body = "ASK { ?s ?p ?o } #" + "x" * (LIMIT - 100)
    resp = requests.post(server.url + "/sparql", data=body.encode(),
                         headers={"Content-Type": "application/sparql-query"}, timeout=60)
    assert resp.status_code == 200, resp.text[:300]


def test_oversized_flask_body_is_413(hclient):
    big = b"SELECT * WHERE { ?s ?p ?o } #" + b"x" * (64 * 1024)
    assert_problem(hclient.post("/sparql", data=big, content_type="application/sparql-query"), 413)
    assert_problem(hclient.post("/sparql", data={"query": big.decode()}), 413)


def _publications_post_exists(url: str) -> bool:
    resp = requests.post(url + "/publications", data=b"{}", headers={"Content-Type": "application/json"}, timeout=30)
    return resp.status_code != 405


def test_oversized_publications_post_is_413(server):
    if not _publications_post_exists(server.url):
        pytest.skip("POST /publications is not implemented yet (service/publications.py)")
    body = b"@article{k, title={" + b"x" * LIMIT + b"}}\n"
    for ctype in ("application/x-bibtex", "application/json", "text/csv"):
        resp = requests.post(server.url + "/publications", data=body, timeout=60,
                             headers={"Content-Type": ctype, "Authorization": f"Bearer {TOKEN}"})
        assert_problem(resp, 413)
    # without a token the answer may be 401 or 413, but never a stored body
    resp = requests.post(server.url + "/publications", data=body, timeout=60,
                         headers={"Content-Type": "application/x-bibtex"})
    assert resp.status_code in (401, 413), resp.status_code
    assert server.alive()


def test_huge_url_and_headers_are_refused_and_the_server_survives(server):
    resp = requests.get(server.url + "/sparql", params={"query": "ASK {} #" + "x" * 400_000}, timeout=60)
    assert 400 <= resp.status_code < 500, resp.status_code
    resp = requests.get(server.url + "/sparql", params={"query": "ASK {}"}, timeout=60,
                        headers={"Accept": "application/sparql-results+json;q=0.9, " * 2000 + "*/*"})
    assert resp.status_code < 500, resp.status_code
    assert server.alive()


def _union(n: int) -> str:
    return "SELECT (COUNT(*) AS ?n) WHERE { " + " UNION ".join(["{ ?s ?p ?o . ?a ?b ?c }"] * n) + " }"


#: Each under the test server's 1 MiB body limit, so that the query itself is what is tested.
PATHOLOGICAL = {
    "nested-groups-10k": "SELECT * WHERE " + "{ " * 10_000 + "?s ?p ?o " + "} " * 10_000,
    "nested-groups-100k": "SELECT * WHERE " + "{" * 100_000 + "}" * 100_000,
    "nested-parens-50k": "SELECT * WHERE { ?s ?p ?o FILTER(" + "(" * 50_000 + "true" + ")" * 50_000 + ") }",
    "nested-optional-2k": "SELECT * WHERE { ?s ?p ?o " + "OPTIONAL { ?s ?p ?o " * 2000 + "}" * 2000 + " }",
    "nested-subselect-1k": "SELECT * WHERE { " + "{ SELECT * WHERE { " * 1000 + "?s ?p ?o" + " } }" * 1000 + " }",
    "union-10k": _union(10_000),
    "values-cross": "SELECT (COUNT(*) AS ?n) WHERE { VALUES ?x { " + " ".join(map(str, range(60_000)))
                    + " } VALUES ?y { " + " ".join(map(str, range(60_000))) + " } }",
    "values-100k-rows": "SELECT ?x WHERE { VALUES ?x { " + " ".join(f'"{i}"' for i in range(100_000)) + " } }",
    "cross-join": "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }",
    "property-path-star": "SELECT (COUNT(*) AS ?n) WHERE { ?s (<http://x/p>|!<http://x/q>)* ?o . ?x ?y ?z }",
    "long-literal-8m": 'SELECT * WHERE { BIND("' + "a" * 800_000 + '" AS ?x) }',
    "many-prefixes": "".join(f"PREFIX p{i}: <http://x/{i}#>\n" for i in range(20_000)) + "ASK {}",
    "many-services-words": "SELECT * WHERE { " + "?service ?service ?service . " * 20_000 + "}",
}


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_pathological_queries_are_stopped_and_the_server_survives(server, name):
    query = PATHOLOGICAL[name]
    assert len(query.encode()) < LIMIT
    started = time.monotonic()
    resp = requests.post(server.url + "/sparql", data=query.encode(), timeout=120,
                         headers={"Content-Type": "application/sparql-query",
                                  "Accept": "application/sparql-results+json"})
    elapsed = time.monotonic() - started
    print(f"\n{name}: {resp.status_code} in {elapsed:.2f} s: {resp.text[:160]!r}")
    if resp.status_code == 200:  # a cheap query is allowed to simply answer (within the limit)
        assert elapsed < 30 and resp.json()
    else:
        body = assert_problem(resp, (400, 503))
        assert "Traceback" not in body["detail"]
    assert server.alive()


def test_no_query_process_is_left_behind(server):
    from bench.load_test import children_of  # noqa: PLC0415

    deadline = time.monotonic() + 10
    while children_of(server.proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert children_of(server.proc.pid) == []


def test_a_deep_query_does_not_crash_a_server_without_time_limit(tmp_path):
    """QUERY_TIMEOUT=0 (documented: no time limit, queries run in the server process) must not let one anonymous
    request kill the server: pyoxigraph's parser overflows its stack on deep nesting (SIGSEGV), which the query
    process absorbs when there is one."""
    srv = Serve(tmp_path, {"MFMKG_QUERY_TIMEOUT": "0"})
    try:
        try:
            resp = requests.post(srv.url + "/sparql", data=PATHOLOGICAL["nested-groups-10k"].encode(), timeout=60,
                                 headers={"Content-Type": "application/sparql-query"})
            status = resp.status_code
        except requests.ConnectionError as exc:
            status = f"no answer ({exc.__class__.__name__})"
        time.sleep(0.5)
        exited = srv.proc.poll()
        assert exited is None, f"the server died (exit {exited}) on one deeply nested query; answer: {status}"
        assert status in (400, 503), status
        assert srv.alive()
    finally:
        srv.stop()


# ==============================================================================================================
# 4. The write token: constant-time comparison, never logged
# ==============================================================================================================

WRONG_TOKENS = [
    lambda t: "Bearer " + t[:-1] + ("a" if t[-1] != "a" else "b"),  # same length, same prefix, last char differs
    lambda t: "Bearer " + ("a" if t[0] != "a" else "b") + t[1:],  # same length, first char differs
    lambda t: "Bearer " + t[:-1],  # a prefix
    lambda t: "Bearer " + t + "x",  # one character more
    lambda t: "Bearer " + t.upper(),
    lambda t: "bearer " + t if t != t.lower() else "BEARER " + t,  # not the exact scheme the server expects
    lambda t: t,  # no scheme
    lambda t: "Bearer",
    lambda t: "",
    lambda t: "Bearer " + "é" * len(t),
    lambda t: "Basic " + t,
    lambda t: "Bearer  " + t,
]


def test_wrong_tokens_are_401(hclient, hostile_app):
    token = hostile_app.config["WRITE_TOKEN"]
    for make in WRONG_TOKENS:
        header = make(token)
        headers = {"Authorization": header} if header else {}
        resp = hclient.post("/-/reload", headers=headers)
        body = assert_problem(resp, 401)
        assert token not in json.dumps(body)
    assert hclient.post("/-/reload", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_tokens_are_compared_with_hmac_compare_digest(hclient, hostile_app, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    token = hostile_app.config["WRITE_TOKEN"]
    hclient.post("/-/reload", headers={"Authorization": f"Bearer {token[:-1]}x"})
    assert calls, "the reload endpoint did not compare the token with hmac.compare_digest"
    calls.clear()
    resp = hclient.post("/publications", headers={"Authorization": f"Bearer {token[:-1]}x"},
                        data=b"{}", content_type="application/json")
    if resp.status_code != 405:
        assert calls, "POST /publications did not compare the token with hmac.compare_digest"
        assert resp.status_code == 401


def _token_comparisons(tree: ast.AST) -> list[int]:
    """Lines where a name or attribute mentioning 'token' is compared with == / != / in."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(o, (ast.Eq, ast.NotEq, ast.In, ast.NotIn))
                                                 for o in node.ops):
            for side in [node.left, *node.comparators]:
                text = ast.unparse(side).lower()
                if "token" in text and "csrf" not in text and "_next" not in text and "paging" not in text:
                    lines.append(node.lineno)
    return lines


def _reads_write_token(tree: ast.AST) -> bool:
    """Whether the module looks the write token up in a configuration (``cfg["WRITE_TOKEN"]``,
    ``config.get("WRITE_TOKEN")``), i.e. is on the server side of a comparison."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and \
                node.slice.value == "WRITE_TOKEN":
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and \
                node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == "WRITE_TOKEN":
            return True
    return False


def test_no_token_is_compared_with_plain_equality():
    """A plain ``==`` on a secret leaks its prefix through timing: every service module that reads WRITE_TOKEN
    must use hmac.compare_digest, and none may compare a token otherwise."""
    offenders, readers = [], []
    for path in sorted((REPO / "service").glob("*.py")):
        tree = ast.parse(path.read_text())
        if not _reads_write_token(tree):
            continue
        readers.append(path.name)
        calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        if not calls & {"hmac.compare_digest", "compare_digest", "secrets.compare_digest"}:
            offenders.append(f"service/{path.name}: reads WRITE_TOKEN without hmac.compare_digest")
        offenders += [f"service/{path.name}:{n}: token compared with ==/!=/in" for n in _token_comparisons(tree)]
    assert "reload.py" in readers
    assert not offenders, offenders


def test_the_token_is_never_logged(server):
    """Right, wrong and malformed tokens on success, 401 and error paths: neither the token nor the wrong
    tokens reach the server's log (nor any response body)."""
    wrong = "wrong-" + secrets.token_hex(16)
    sent = [TOKEN, wrong, TOKEN[:-1]]
    bodies = []

    def post(path, auth, **kw):
        resp = requests.post(server.url + path, headers={"Authorization": auth, **kw.pop("headers", {})},
                             timeout=120, **kw)
        bodies.append(resp.text)
        return resp

    assert post("/-/reload", f"Bearer {TOKEN}").status_code == 200
    for t in sent[1:]:
        assert post("/-/reload", f"Bearer {t}").status_code == 401
    assert post("/-/reload", TOKEN).status_code == 401
    for t in sent:  # error paths of other endpoints, with a token attached
        post("/sparql", f"Bearer {t}", data=b"SELECT * {", headers={"Content-Type": "application/sparql-query"})
        post("/sparql", f"Bearer {t}", data=b"x" * (LIMIT + 10), headers={"Content-Type": "application/sparql-query"})
        post("/sparql", f"Bearer {t}", data=b"CLEAR ALL", headers={"Content-Type": "application/sparql-update"})
        post("/sparql", f"Bearer {t}", data=PATHOLOGICAL["cross-join"].encode(),
             headers={"Content-Type": "application/sparql-query"})
        post("/nowhere", f"Bearer {t}")
        requests.get(server.url + "/queries/papers-for-threat.json", headers={"Authorization": f"Bearer {t}"},
                     timeout=30)
    if _publications_post_exists(server.url):
        for t in sent:
            for body, ctype in [(b"@article{k, title={T}, year={2024}}\n", "application/x-bibtex"),
                                (b"{not json", "application/json"), (b"\x00\xff", "application/octet-stream"),
                                (b"x" * (LIMIT + 10), "application/x-bibtex")]:
                post("/publications", f"Bearer {t}", data=body, headers={"Content-Type": ctype})
    time.sleep(0.5)
    log = server.text()
    assert log.strip(), "the server logged nothing at all: the check would prove nothing"
    for t in sent:
        assert t not in log, f"a token appears in the server log:\n{log[-3000:]}"
        assert all(t not in b for b in bodies), "a token appears in a response body"
