"""The embedded store: persistence, start-up reuse of the ontology, atomic graph replacement, extensions."""

from __future__ import annotations


import pytest
from rdflib import Literal, URIRef

from mfmkg.errors import OntologyError, QuerySyntaxError, StoreError
from mfmkg.namespaces import ONTOLOGY_GRAPH
from mfmkg.onto import ensure_loaded, ontology_files
from mfmkg.store.base import SelectResult
from mfmkg.store.embedded import EmbeddedStore

EX = "http://example.org/"


def test_ontology_is_rebuilt_only_when_files_change(tmp_path):
    ext = tmp_path / "ext"
    ext.mkdir()
    store = EmbeddedStore(tmp_path / "db")
    assert ensure_loaded(store, ontology_files(ext)) is True
    assert ensure_loaded(store, ontology_files(ext)) is False
    store.close()
    reopened = EmbeddedStore(tmp_path / "db")
    assert ensure_loaded(reopened, ontology_files(ext)) is False, "a restart must reuse the store"
    (ext / "mine.ttl").write_text(f"<{EX}MyThreat> <http://www.w3.org/2000/01/rdf-schema#label> \"mine\" .\n")
    assert ensure_loaded(reopened, ontology_files(ext)) is True
    res = reopened.query(f"ASK {{ GRAPH <{ONTOLOGY_GRAPH}> {{ <{EX}MyThreat> ?p ?o }} }}")
    assert res.value is True
    reopened.close()


def test_broken_extension_leaves_the_stored_ontology_alone(tmp_path):
    ext = tmp_path / "ext"
    ext.mkdir()
    store = EmbeddedStore(None)
    ensure_loaded(store, ontology_files(ext))
    before = store.stats()
    (ext / "broken.ttl").write_text("@prefix ex: <http://e/> .\nex:a ex:b ex:c .\nex:d ex:e ex:f ex:g .\n")
    with pytest.raises(OntologyError) as info:
        ensure_loaded(store, ontology_files(ext))
    assert info.value.path.endswith("broken.ttl") and info.value.line == 3
    assert store.stats() == before


def test_second_process_on_the_same_directory_gets_a_clear_error(tmp_path):
    first = EmbeddedStore(tmp_path / "db")
    with pytest.raises(StoreError, match="in use|lock"):
        EmbeddedStore(tmp_path / "db")
    first.close()


def test_replace_graph_swaps_contents(store):
    g = EX + "g"
    store.add([(URIRef(EX + "a"), URIRef(EX + "p"), Literal(1))], g)
    store.replace_graph(g, [(URIRef(EX + "b"), URIRef(EX + "p"), Literal(2))])
    res = store.query(f"SELECT ?s WHERE {{ GRAPH <{g}> {{ ?s ?p ?o }} }}")
    assert isinstance(res, SelectResult) and [str(r[0]) for r in res.rows] == [EX + "b"]
    assert not [x for x in store.graphs() if "staging" in x]


def test_bindings_are_terms_not_text(store):
    hostile = Literal('x" } ; DROP ALL ; SELECT * { "')
    res = store.query("SELECT ?s WHERE { ?s <http://www.w3.org/2000/01/rdf-schema#label> ?l }", bindings={"l": hostile})
    assert res.rows == []
    with pytest.raises(ValueError):
        store.query("SELECT ?s WHERE { ?s ?p ?o }", bindings={"o": URIRef("http://x> } DROP ALL {")})


def test_syntax_error_is_typed(store):
    with pytest.raises(QuerySyntaxError):
        store.query("SELEC nonsense")


def test_data_dir_that_is_a_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "file"
    bad.write_text("x")
    with pytest.raises(StoreError, match="cannot open|not writable"):
        EmbeddedStore(bad)
