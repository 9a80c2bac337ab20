"""The literature pipeline: exact triples per format, real lists, idempotence, merging, unloading, bad input,
--skip-invalid, --dry-run, unknown tags, crash safety and the CLI (docs/loading.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rdflib import Literal, URIRef
from rdflib.namespace import RDF, XSD

from mfmkg.errors import StoreError
from mfmkg.loaders import pipeline
from mfmkg.loaders.pipeline import Input, load_paths, load_source, sample_path, sources, unload
from mfmkg.namespaces import ONTOLOGY_GRAPH, source_graph
from mfmkg.store.base import SelectResult, Store

DATA = Path(__file__).parent / "data" / "loading"
REAL = Path(__file__).parent / "data" / "literature" / "real"
M = "https://w3id.org/mfmkg/ont#"
DCT = "http://purl.org/dc/terms/"
PUB = "https://w3id.org/mfmkg/id/pub/arxiv-2311.05608"
TITLE = "FigStep: Jailbreaking Large Vision-Language Models via Typographic Visual Prompts"


@pytest.fixture
def vstore():
    """A store whose ontology graph is the tiny test vocabulary (tests/data/loading/vocab.ttl)."""
    from mfmkg.store.embedded import EmbeddedStore

    s = EmbeddedStore(None)
    s.load((DATA / "vocab.ttl").read_bytes(), "text/turtle", ONTOLOGY_GRAPH)
    s.set_meta("ontology-hash", "test-vocabulary")
    yield s
    s.close()


class QueueFedStore:
    """An EmbeddedStore that does not read paths itself (``streams_paths`` off): graph writers then feed its
    ``load`` through a queue, the generic path other backends take."""

    @staticmethod
    def make():
        from mfmkg.store.embedded import EmbeddedStore

        class QueueFed(EmbeddedStore):
            streams_paths = False

            def load_path(self, path, media_type, graph):
                return Store.load_path(self, path, media_type, graph)

        return QueueFed(None)


@pytest.fixture(params=["queue", "fifo"])
def sstore(request):
    """The test vocabulary store, its graph writers fed through a queue (the generic writer) or a FIFO (the
    embedded store reads the path in pyoxigraph, without the GIL)."""
    from mfmkg.store.embedded import EmbeddedStore

    s = QueueFedStore.make() if request.param == "queue" else EmbeddedStore(None)
    assert s.streams_paths is (request.param == "fifo")
    s.load((DATA / "vocab.ttl").read_bytes(), "text/turtle", ONTOLOGY_GRAPH)
    s.set_meta("ontology-hash", "test-vocabulary")
    yield s
    s.close()


def graph_triples(store, graph: str) -> set:
    res = store.query(f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
    return set(res.triples)


def u(local: str) -> URIRef:
    return URIRef(local if local.startswith("http") else M + local)


def expected(source: str, where: str, *, authors: bool = True, links: list[tuple], keywords=()) -> set:
    """The triples one FigStep entry must give: metadata, authors, and (topic, kind, field, text, conf) links."""
    p = URIRef(PUB)
    t = {(p, RDF.type, u("Publication")), (p, URIRef(DCT + "title"), Literal(TITLE)),
         (p, URIRef(DCT + "issued"), Literal("2023-11", datatype=XSD.gYearMonth)),
         (p, URIRef(DCT + "identifier"), Literal("arXiv:2311.05608")),
         (p, u("url"), Literal("https://arxiv.org/abs/2311.05608", datatype=XSD.anyURI)),
         (p, u("sourceLocation"), Literal(where))}
    t |= {(p, URIRef(DCT + "subject"), Literal(k)) for k in keywords}
    if authors:
        seq = URIRef(PUB + "/authors")
        t |= {(p, URIRef("http://purl.org/ontology/bibo/authorList"), seq),
              (seq, URIRef(str(RDF) + "_1"), Literal("Yichen Gong")),
              (seq, URIRef(str(RDF) + "_2"), Literal("Delong Ran"))}
    for topic, kind, fld, text, conf in links:
        e = URIRef(f"https://w3id.org/mfmkg/id/evidence/{source}/{topic}-{kind}-{fld}-{text.lower()}")
        t |= {(p, u("linkEvidence"), e), (e, RDF.type, u("LinkEvidence")), (e, u("topic"), u(topic)),
              (e, u("linkKind"), u(kind.capitalize())), (e, u("evidence"), Literal(f"{fld}: {text}")),
              (e, u("confidence"), Literal(f"{conf:g}", datatype=XSD.decimal)),
              (e, URIRef("http://www.w3.org/ns/prov#wasDerivedFrom"),
               URIRef(f"https://w3id.org/mfmkg/id/source/{source}"))}
    return t


INFERRED = [("MisleadingJailbreak", "inferred", "title", "jailbreaking", 0.9),
            ("Image", "inferred", "title", "vision-language", 0.9)]
CASES = {  # file -> (line, authors?, links, keywords)
    "figstep.jsonl": (1, True, INFERRED + [("AttackPaper", "asserted", "tag", "Attack", 1.0)]),
    "figstep.json": (2, True, INFERRED + [("AttackPaper", "asserted", "tag", "Attack", 1.0)]),
    "figstep.csv": (2, True, INFERRED + [("AttackPaper", "asserted", "tag", "Attack", 1.0)]),
    "figstep.bib": (1, True, INFERRED + [("AttackPaper", "asserted", "keyword", "Attack", 1.0)], ["Attack"]),
    "figstep.csl.json": (2, True, INFERRED + [("AttackPaper", "asserted", "keyword", "Attack", 1.0)],
                         ["Attack"]),
    "figstep.md": (2, False, [INFERRED[0], ("AttackPaper", "asserted", "category", "Attack", 1.0),
                              ("Image", "asserted", "tag", "VLM", 1.0)]),
    "figstep.atom": (4, True, INFERRED, ["cs.CR"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_format_gives_exactly_the_expected_triples(vstore, name):
    line, authors, links, *keywords = CASES[name]
    path = str(DATA / name)
    report = load_paths(vstore, [path], source="t")
    src = report.sources[0]
    assert report.ok and src.status == "loaded" and src.entries == 1 and not src.errors
    got = graph_triples(vstore, source_graph("t"))
    source_iri = URIRef("https://w3id.org/mfmkg/id/source/t")
    description = {t for t in got if t[0] == source_iri}
    assert got - description == expected("t", f"{path}:{line}", authors=authors, links=links,
                                             keywords=keywords[0] if keywords else ())
    props = {str(p).rsplit("#", 1)[-1]: o for _, p, o in description}
    assert props["label"] == Literal("t") and int(props["entryCount"]) == 1
    assert int(props["publicationCount"]) == 1 and props["inputFile"] == Literal(path)
    kinds = [k for _, k, *_ in links]
    assert (src.asserted, src.inferred) == (kinds.count("asserted"), kinds.count("inferred"))


def test_the_real_lists_load_with_their_entry_counts(store):
    report = load_paths(store, [REAL / "awesome-lm-ssp", REAL / "awesome-mllm-safety" / "data.json"])
    ssp, mllm = report.sources
    assert report.ok, report.render_problems()
    assert (ssp.name, ssp.status, ssp.entries, ssp.duplicates) == ("awesome-lm-ssp", "loaded", 2278, 19)
    assert ssp.publications == 2259 and len(ssp.files) == 30
    assert (mllm.name, mllm.status, mllm.entries, mllm.publications) == ("data", "loaded", 81, 81)
    assert ssp.asserted > 1000 and ssp.inferred > 1000
    # the lists' real defects are reported, not fatal: repeated arXiv ids, titles that differ from the SoK's
    assert len(ssp.notices) == 5 and ssp.conflicts
    assert ("category", "Watermark & Copyright") in ssp.unknown_tags
    counts = {s["name"]: s for s in sources(store)}
    assert counts["awesome-lm-ssp"]["publications"] == 2259 and counts["data"]["entries"] == 81
    # the report counts the lines it wrote: no line is written twice, so they are the triples stored
    assert [src.triples for src in report.sources] == [store.count(src.graph) for src in report.sources]


def test_loading_twice_changes_nothing(store):
    load_paths(store, [REAL / "awesome-mllm-safety"])
    before = store.stats()
    loaded_at = sources(store)[0]["loadedAt"]
    again = load_paths(store, [REAL / "awesome-mllm-safety"]).sources[0]
    assert again.status == "unchanged" and again.unchanged == 81 and again.added == 0
    assert store.stats() == before and sources(store)[0]["loadedAt"] == loaded_at


def test_the_same_paper_from_two_sources_is_one_node_with_both_sources(vstore, tmp_path):
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"title": TITLE.upper(), "year": 2024, "arxiv": "2311.05608v2",
                                 "categories": ["Purification"]}) + "\n")
    load_paths(vstore, [DATA / "figstep.jsonl"], source="a")
    rep = load_paths(vstore, [other], source="b").sources[0]
    assert (rep.added, rep.merged) == (0, 1)
    assert [(c.field, c.value, c.other) for c in rep.conflicts] == [("year", "2024", "2023")]
    res = vstore.query(f"""PREFIX mfm: <{M}>
        SELECT (COUNT(DISTINCT ?p) AS ?papers) (COUNT(DISTINCT ?g) AS ?graphs)
               (GROUP_CONCAT(DISTINCT STR(?t); separator=" ") AS ?topics)
        WHERE {{ GRAPH ?g {{ ?p a mfm:Publication ; mfm:linkEvidence/mfm:topic ?t }} }}""")
    papers, graphs, topics = res.rows[0]
    assert (int(papers), int(graphs)) == (1, 2)
    assert set(str(topics).split()) == {M + "MisleadingJailbreak", M + "Image", M + "AttackPaper",
                                        M + "InputDenoising"}


def test_unload_removes_exactly_what_the_source_added(vstore):
    load_paths(vstore, [DATA / "figstep.bib"], source="keep")
    before = vstore.stats()
    load_paths(vstore, [DATA / "figstep.jsonl"], source="gone")
    assert vstore.stats() != before
    assert unload(vstore, "gone") > 0
    assert vstore.stats() == before
    assert [s["name"] for s in sources(vstore)] == ["keep"]
    with pytest.raises(Exception, match="no literature source named 'gone'"):
        unload(vstore, "gone")


BAD_INPUTS = {
    "truncated.bib": (b"@article{a,\n  title = {One},\n  year = {2023}\n}\n@article{b,\n  title = {Two\n",
                      "truncated.bib:5"),
    "broken.json": (b'[\n {"title": "One", "year": 2023},\n {"title": "Two", "year": \n]\n', "broken.json:4"),
    "latin1.csv": ("title,year\nUn r\u00e9sum\u00e9,2023\n".encode("latin-1"), "latin1.csv:2"),
    "garbage.bib": (b"@article{x,\x00\x01\x02\xff\xfe garbage", "garbage.bib:1"),
    "utf16.jsonl": ('{"title": "One", "year": 2023}\n'.encode("utf-16"), "utf16.jsonl:1"),
    "bad-year.jsonl": (b'{"title": "One", "year": 2023}\n{"title": "Two", "year": "twenty"}\n',
                       "bad-year.jsonl:2: year:"),
    "no-title.csv": (b"title,year,arxiv\nOne,2023,2301.00001\n,2023,2301.00002\n", "no-title.csv:3: title:"),
    "no-id.jsonl": (b'{"title": "Only a title"}\n', "no-id.jsonl:1: year: missing"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_reported_with_file_and_line_and_stores_nothing(vstore, tmp_path, name):
    data, message = BAD_INPUTS[name]
    path = tmp_path / name
    path.write_bytes(data)
    load_paths(vstore, [DATA / "figstep.jsonl"], source="earlier")
    before = vstore.stats()
    report = load_paths(vstore, [path], source="bad")
    assert not report.ok and report.exit_code == 1 and report.sources[0].status == "failed"
    assert any(message in str(e) for e in report.sources[0].errors), [str(e) for e in report.sources[0].errors]
    assert vstore.stats() == before


def test_a_failed_reload_keeps_the_old_source(vstore, tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text('{"title": "One", "year": 2023}\n')
    load_paths(vstore, [path], source="s")
    before = vstore.stats()
    path.write_text('{"title": "One", "year": 2023}\n{"title": "Two", "year": 1066}\n')
    report = load_paths(vstore, [path], source="s")
    assert report.sources[0].status == "failed" and vstore.stats() == before


def test_skip_invalid_stores_the_valid_entries(vstore, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"title": "One", "year": 2023}\n{"title": "Two", "month": 13, "year": 2023}\n'
                    '{"title": "Three", "year": 2024}\n')
    report = load_paths(vstore, [path], source="m", skip_invalid=True)
    src = report.sources[0]
    assert report.ok and src.status == "loaded" and (src.entries, src.skipped) == (2, 1)
    assert [f"{e.path.rsplit('/', 1)[-1]}:{e.line}: {e.field}" for e in src.errors] == ["mixed.jsonl:2: month"]
    res = vstore.query(f"SELECT (COUNT(?p) AS ?n) WHERE {{ GRAPH <{source_graph('m')}> {{ ?p a <{M}Publication> }} }}")
    assert int(res.rows[0][0]) == 2


def test_dry_run_reports_and_stores_nothing(vstore):
    before = vstore.stats()
    report = load_paths(vstore, [DATA / "figstep.jsonl"], source="d", dry_run=True)
    src = report.sources[0]
    assert src.status == "dry-run" and (src.entries, src.added, src.asserted, src.inferred) == (1, 1, 1, 2)
    assert src.triples > 20 and vstore.stats() == before


def test_an_explicit_tag_that_matches_nothing_is_reported(vstore, tmp_path):
    path = tmp_path / "tags.jsonl"
    path.write_text('{"title": "One", "year": 2023, "tags": ["Attack", "Quantum"], "categories": ["Odd"]}\n'
                    '{"title": "Two", "year": 2023, "tags": ["Quantum"]}\n')
    src = load_paths(vstore, [path], source="x").sources[0]
    assert src.unknown_tags[("tag", "Quantum")] == [2, f"{path}:1"]
    assert src.unknown_tags[("category", "Odd")][0] == 1
    assert ("tag", "Attack") not in src.unknown_tags


def test_duplicates_in_one_source_merge_into_the_first(vstore, tmp_path):
    path = tmp_path / "dups.jsonl"
    path.write_text('{"title": "One", "year": 2023, "arxiv": "2301.00001"}\n'
                    '{"title": "One, again", "year": 2023, "arxiv": "2301.00001", "tags": ["Attack"]}\n')
    src = load_paths(vstore, [path], source="dups").sources[0]
    assert src.status == "loaded" and (src.entries, src.publications, src.duplicates) == (2, 1, 1)
    assert [c.field for c in src.conflicts] == ["title"]
    assert src.notices and "duplicate" in src.notices[0].reason


def test_a_changed_source_replaces_the_old_one(vstore, tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text('{"title": "One", "year": 2023}\n{"title": "Two", "year": 2023}\n')
    load_paths(vstore, [path], source="s")
    path.write_text('{"title": "Two", "year": 2023}\n{"title": "Three", "year": 2024}\n')
    src = load_paths(vstore, [path], source="s").sources[0]
    assert (src.status, src.added, src.unchanged, src.removed) == ("loaded", 1, 1, 1)
    res = vstore.query(f"SELECT ?t WHERE {{ ?p <{DCT}title> ?t }} ORDER BY ?t")
    assert [str(r[0]) for r in res.rows] == ["Three", "Two"]
    assert not [g for g in vstore.graphs() if "staging" in g]


def test_a_write_failure_part_way_leaves_nothing(sstore, tmp_path, monkeypatch):
    """The store fails after it has taken part of the stream (a full disk): nothing of the source is stored."""
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"title": f"Paper {i}", "year": 2020}) + "\n" for i in range(50)))
    monkeypatch.setattr(pipeline, "CHUNK_ENTRIES", 10)
    real_load = sstore.load

    def flaky(data, media_type, graph):
        class Failing:  # the store takes 8 KB of the stream (several chunks), then its disk is full
            taken = 0

            def read(self, n=-1):
                if Failing.taken > 8192:
                    raise OSError("disk full")
                out = data.read(n)
                Failing.taken += len(out)
                return out

        return real_load(Failing(), media_type, graph)

    def flaky_path(path, media_type, graph):
        with open(path, "rb") as fh:
            return flaky(fh, media_type, graph)

    before = sstore.stats()
    monkeypatch.setattr(sstore, "load", flaky)
    monkeypatch.setattr(sstore, "load_path", flaky_path)
    with pytest.raises(StoreError, match="disk full"):
        load_paths(sstore, [path], source="flaky")
    assert sstore.stats() == before


def _loading_observer(store, graph: str, seen: list):
    """A progress callback that looks at the store while the load streams (after about half of the input)."""
    total = [0]

    def progress(lines: int) -> None:
        total[0] += lines
        if not seen and total[0] >= 100:
            seen.append((store.count(graph), [g for g in store.graphs() if "staging" in g]))
    return progress


def test_readers_never_see_a_source_being_written(sstore, tmp_path, monkeypatch):
    """A new source is one transaction: half-way through, readers see none of it (and no staging graph); a
    reload streams into a staging transaction that is not visible either, and readers still see the old source."""
    monkeypatch.setattr(pipeline, "CHUNK_ENTRIES", 10)
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"title": f"Paper {i}", "year": 2020, "arxiv": f"2301.{i:05d}"}) + "\n"
                            for i in range(200)))
    graph = source_graph("many")
    seen: list = []
    src = load_paths(sstore, [path], source="many", progress=_loading_observer(sstore, graph, seen)).sources[0]
    assert src.status == "loaded" and seen == [(0, [])]
    full = sstore.count(graph)
    assert full == src.triples > 200 * 4
    path.write_text("".join(json.dumps({"title": f"Paper {i}", "year": 2021, "arxiv": f"2301.{i:05d}"}) + "\n"
                            for i in range(200)))
    seen.clear()
    monkeypatch.setattr(pipeline, "BULK_LOOKUP", 50)  # the stored titles and years come from one query
    src = load_paths(sstore, [path], source="many", progress=_loading_observer(sstore, graph, seen)).sources[0]
    assert src.status == "loaded" and src.updated == 200 and seen == [(full, [])]
    assert not [g for g in sstore.graphs() if "staging" in g]


def test_a_failed_reload_part_way_keeps_the_old_source(sstore, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "CHUNK_ENTRIES", 10)
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"title": f"Paper {i}", "year": 2020}) + "\n" for i in range(100)))
    load_paths(sstore, [path], source="many")
    before = sstore.stats()
    # the 90th entry is invalid: by then several chunks have been streamed into the staging transaction
    path.write_text("".join(json.dumps({"title": f"Paper {i}", "year": 2021 if i != 90 else 1066}) + "\n"
                            for i in range(100)))
    src = load_paths(sstore, [path], source="many").sources[0]
    assert src.status == "failed" and sstore.stats() == before


def test_staging_graphs_left_by_a_crashed_load_are_dropped_when_the_next_load_starts(vstore):
    from mfmkg.store.base import new_staging_graph

    leftover = new_staging_graph()
    old = "https://w3id.org/mfmkg/graph/staging/source/crashed"  # the staging name of earlier versions
    for g in (leftover, old):
        vstore.load(f"<{PUB}> <{M}x> \"half-written\" .\n".encode(), "application/n-triples", g)
    load_paths(vstore, [DATA / "figstep.jsonl"], source="next")
    assert not [g for g in vstore.graphs() if "staging" in g]
    assert not vstore.query(f"ASK {{ <{PUB}> <{M}x> ?o }}").value


def test_starting_the_service_drops_abandoned_staging_graphs(store):
    """On both backends: a staging graph whose writer died long ago (its name carries its start time) is gone once
    the service has started, while the ontology and other graphs stay."""
    from mfmkg.service import create_app
    from mfmkg.store.base import REMOTE_STAGING_PREFIX, STAGING_PREFIX

    dead = [STAGING_PREFIX + "1-dead", REMOTE_STAGING_PREFIX + "1-dead"]
    for g in dead:
        store.load(f"<{PUB}> <{M}x> \"half-written\" .\n".encode(), "application/n-triples", g)
    before = [g for g in store.graphs() if g not in dead]
    assert set(dead) <= set(store.graphs())
    create_app({"TESTING": True, "RELOAD_INTERVAL": 0}, store=store)
    assert store.graphs() == before


def test_an_interrupted_load_is_undone_by_the_next_one(vstore):
    """Loaders before graph writers marked the source graph they were writing; such a graph is dropped."""
    vstore.load(f"<{PUB}> <{M}x> \"half-written\" .\n".encode(), "application/n-triples", source_graph("crashed"))
    vstore.set_meta(pipeline.LOADING_KEY, source_graph("crashed"))
    load_paths(vstore, [DATA / "figstep.jsonl"], source="next")
    assert source_graph("crashed") not in vstore.graphs() and vstore.get_meta(pipeline.LOADING_KEY) is None


def test_http_style_input_from_bytes(vstore):
    data = (DATA / "figstep.bib").read_bytes()
    src = load_source(vstore, "upload", [Input("upload.bib", data=data)])
    assert src.status == "loaded" and src.entries == 1


def test_the_bundled_sample_loads_cleanly(store):
    src = load_paths(store, [sample_path()], source="sample").sources[0]
    assert src.status == "loaded" and src.entries == 40 and not src.errors and not src.unknown_tags
    res = store.query(f"""PREFIX mfm: <{M}> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> SELECT (COUNT(DISTINCT ?p) AS ?n) WHERE {{
        GRAPH <{source_graph('sample')}> {{ ?p mfm:linkEvidence/mfm:topic ?t }} ?t rdfs:subClassOf+ mfm:Threat }}""")
    assert int(res.rows[0][0]) >= 30  # most sample papers are linked to a threat class


def test_classification_uses_the_stores_vocabulary(vstore, tmp_path):
    """Keywords come from the ontology graph: a keyword added there classifies the next load (an altLabel: on a
    family, a hiddenLabel is only a hint, see tests/test_classify.py)."""
    path = tmp_path / "one.jsonl"
    path.write_text('{"title": "Sponge examples", "year": 2021}\n')
    assert load_paths(vstore, [path], source="v").sources[0].inferred == 0
    vstore.load(f'<{M}MisleadingThreat> <http://www.w3.org/2004/02/skos/core#altLabel> "Sponge" .'.encode(),
                "application/n-triples", ONTOLOGY_GRAPH)
    vstore.set_meta("ontology-hash", "test-vocabulary-2")
    assert load_paths(vstore, [path], source="v").sources[0].inferred == 1


# -- the command line ---------------------------------------------------------------------------------------

def _cli(runner, tmp_path, *args):
    from mfmkg.cli import main

    return runner.invoke(main, [*args[:1], "--data-dir", str(tmp_path / "store"), *args[1:]])


def test_cli_load_sources_unload(runner, tmp_path):
    shutil.copy(DATA / "figstep.jsonl", tmp_path / "figstep.jsonl")
    res = _cli(runner, tmp_path, "load", str(tmp_path / "figstep.jsonl"))
    assert res.exit_code == 0, res.output
    assert "1 merged" in res.stdout and "figstep [loaded]" in res.stdout  # FigStep is a SoK reference
    res = _cli(runner, tmp_path, "load", str(tmp_path / "figstep.jsonl"))
    assert res.exit_code == 0 and "1 unchanged" in res.stdout and "figstep [unchanged]" in res.stdout
    res = _cli(runner, tmp_path, "sources", "--format", "json")
    assert [s["name"] for s in json.loads(res.stdout)] == ["figstep"]
    res = _cli(runner, tmp_path, "unload", "figstep")
    assert res.exit_code == 0 and "triples removed" in res.stdout
    res = _cli(runner, tmp_path, "unload", "figstep")
    assert res.exit_code == 1 and "no literature source named 'figstep'" in res.stderr


def test_cli_reports_bad_entries_and_exits_1(runner, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "One", "year": 2023}\n{"title": "Two", "year": "soon"}\n')
    res = _cli(runner, tmp_path, "load", str(bad))
    assert res.exit_code == 1
    assert f"error: {bad}:2: year: unparseable year: 'soon'" in res.stderr
    assert "Traceback" not in res.output
    res = _cli(runner, tmp_path, "load", "--skip-invalid", "--json", str(bad))
    assert res.exit_code == 0 and json.loads(res.stdout)["summary"]["skipped"] == 1
    res = _cli(runner, tmp_path, "load", str(tmp_path / "missing.bib"))
    assert res.exit_code == 1 and "no such file" in res.stderr


def test_cli_dry_run_and_format_option(runner, tmp_path):
    plain = tmp_path / "list.txt"
    plain.write_bytes((DATA / "figstep.jsonl").read_bytes())
    res = _cli(runner, tmp_path, "load", "--format", "jsonl", "--dry-run", "--source", "dry", str(plain))
    assert res.exit_code == 0 and "would load 1 entries" in res.stdout and "dry [dry-run]" in res.stdout
    res = _cli(runner, tmp_path, "sources")
    assert "no literature sources loaded" in res.stdout


def test_select_results_shape_for_sources(vstore):
    load_paths(vstore, [DATA / "figstep.jsonl"], source="s")
    (row,) = sources(vstore)
    assert row["publications"] == 1 and row["asserted"] == 1 and row["inferred"] == 2
    assert row["files"] == [str(DATA / "figstep.jsonl")] and row["triples"] > 0
    assert isinstance(vstore.query("SELECT * WHERE { ?s ?p ?o } LIMIT 1"), SelectResult)
