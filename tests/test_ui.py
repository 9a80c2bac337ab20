"""The web UI (``service/ui.py``): real HTTP against a live server, and a real headless Chromium driving the pages.

HTTP tests: every page answers 200 with its content; every page's ``.json`` twin (the page's own "This page as
JSON" link) holds exactly the rows the page shows; unknown ids are 404 problems; the heatmap SVG is well-formed
XML with one link per cell, and each cell's link lists exactly the threats the cell counts.

Browser tests drive Debian's Chromium (``/usr/bin/chromium``) through its ChromeDriver (``/usr/bin/chromedriver``)
with Selenium; they are skipped only when Chromium is not installed (CI installs it:
``apt-get install -y chromium chromium-driver``).
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlparse

import pytest
import requests

from conftest import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SVG = "{http://www.w3.org/2000/svg}"
PROBLEM = "application/problem+json"
PALETTE = {"#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"}
#: Two papers as the literature loaders write them (loaders/graph.py): linked through evidence nodes to a threat
#: class, a modality and a defense class; one has a DOI IRI (percent-encoded) and authors.
LITERATURE = """
@prefix mfm: <https://w3id.org/mfmkg/ont#> . @prefix dcterms: <http://purl.org/dc/terms/> .
@prefix prov: <http://www.w3.org/ns/prov#> . @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix bibo: <http://purl.org/ontology/bibo/> . @prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
@prefix pub: <https://w3id.org/mfmkg/id/pub/> . @prefix ev: <https://w3id.org/mfmkg/id/evidence/uitest/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
<https://w3id.org/mfmkg/id/source/uitest> a mfm:LiteratureSource ; rdfs:label "uitest" .
ev:jb a mfm:LinkEvidence ; mfm:topic mfm:MisleadingJailbreak ; mfm:linkKind mfm:Inferred ;
    mfm:evidence "title: jailbreak" ; mfm:confidence 0.9 ; prov:wasDerivedFrom <https://w3id.org/mfmkg/id/source/uitest> .
ev:img a mfm:LinkEvidence ; mfm:topic mfm:Image ; mfm:linkKind mfm:Inferred ; mfm:evidence "title: image" ;
    mfm:confidence 0.6 ; prov:wasDerivedFrom <https://w3id.org/mfmkg/id/source/uitest> .
ev:dp a mfm:LinkEvidence ; mfm:topic mfm:DiffusionPurification ; mfm:linkKind mfm:Asserted ;
    mfm:evidence "tag: DiffPure" ; mfm:confidence 1.0 ; prov:wasDerivedFrom <https://w3id.org/mfmkg/id/source/uitest> .
pub:t-ui-test-jailbreak-2026 a mfm:Publication ; dcterms:title "Image jailbreaks for the UI tests" ;
    dcterms:issued "2026"^^xsd:gYear ; dcterms:abstract "We jailbreak models with images." ;
    bibo:authorList pub:t-ui-test-jailbreak-2026-authors ; mfm:sourceLocation "ui.bib:3" ;
    mfm:linkEvidence ev:jb , ev:img .
pub:t-ui-test-jailbreak-2026-authors rdf:_1 "Ada Lovelace" ; rdf:_2 "Alan Turing" .
<https://w3id.org/mfmkg/id/pub/doi-10.1000%2Fui.test> a mfm:Publication ; dcterms:title "Purifying for the UI tests" ;
    dcterms:issued "2025-02"^^xsd:gYearMonth ; bibo:doi "10.1000/ui.test" ; mfm:linkEvidence ev:dp .
"""

# (path, text the page must contain)
PAGES = [
    ("/", "Threat coverage dashboard"),
    ("/ui/dashboard", "Gaps: threats with few defenses"),
    ("/ui/threats", "misleading threat: adversarial"),
    ("/ui/threats?modality=Image&family=MisleadingThreat", "misleading threat: latency"),
    ("/ui/threats?flow=InteractionFlow&axis=Bandwidth&families=1", "agent interaction threat"),
    ("/ui/threats/MisleadingAdversarial", "input denoising and filtering"),
    ("/ui/threats/MisleadingThreat", "misleading threat: jailbreak"),
    ("/ui/threats/AgentMemoryDisinformation", "no defense covers this threat class"),
    ("/ui/defenses", "information-flow control"),
    ("/ui/defenses/InputDenoising", "misleading threat: adversarial"),
    ("/ui/attacks", "VLATTACK"),
    ("/ui/attacks?threat=MisleadingJailbreak", "misleading threat: jailbreak"),
    ("/ui/attacks/A01", "VLATTACK: Multimodal Adversarial Attacks on Vision-Language Tasks"),
    ("/ui/publications", "Unifying Cybersecurity and Cybersafety"),
    ("/ui/publications?q=backdoor", "Backdooring Multimodal Learning"),
    ("/ui/publications/arxiv-2411.11195", "rdfs:isDefinedBy"),
    ("/ui/publications/arxiv-2310.04655", "VLATTACK"),
    ("/ui/queries", "coverage-modality-family"),
    ("/ui/queries/gaps", "Threat gaps"),
    ("/ui/queries/coverage-flow-axis?inferred=true", "Coverage by information flow and channel axis"),
    ("/ui/sparql", "Example queries"),
]


class Page(HTMLParser):
    """What the tests read off a page: data-id rows per data-table, links, labels, svgs, the JSON twin link."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text
        self.tables: dict[str, list[str]] = {}
        self.row_counts: dict[str, int] = {}
        self.links: list[str] = []
        self.json_link = None
        self.label_for: set[str] = set()
        self.ids: set[str] = set()
        self.controls: list[str] = []
        self.h1 = 0
        self._table: list[str | None] = []
        self._section = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "table":
            self._table.append(a.get("data-table"))
            if a.get("data-table"):
                self.tables.setdefault(a["data-table"], [])
                self.row_counts.setdefault(a["data-table"], 0)
        elif tag in ("thead", "tbody"):
            self._section = tag
        elif tag == "tr" and self._table and self._table[-1] and self._section == "tbody":
            self.row_counts[self._table[-1]] += 1
            if a.get("data-id") is not None:
                self.tables[self._table[-1]].append(a["data-id"])
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])
            if "json-twin" in (a.get("class") or ""):
                self.json_link = a["href"]
        elif tag == "label" and a.get("for"):
            self.label_for.add(a["for"])
        elif tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append(a.get("id"))
        elif tag == "h1":
            self.h1 += 1

    def handle_endtag(self, tag):
        if tag == "table" and self._table:
            self._table.pop()
        elif tag in ("thead", "tbody"):
            self._section = None


def svgs_of(html: str) -> list[ET.Element]:
    return [ET.fromstring(m) for m in re.findall(r"<svg\b.*?</svg>", html, flags=re.S)]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """One live server (waitress in a thread, the ``live_server`` fixture's class) for this module's read-only
    tests; building the app runs the ontology checks, too slow to repeat for each test."""
    from mfmkg.service import create_app

    from mfmkg.namespaces import source_graph

    app = create_app({"MEMORY": True, "TESTING": True, "QUERY_TIMEOUT": 20.0, "RELOAD_INTERVAL": 0,
                      "DATA_DIR": str(tmp_path_factory.mktemp("data"))})
    app.extensions["mfmkg"].store.load(LITERATURE, "text/turtle", source_graph("uitest"))
    srv = LiveServer(app)
    yield srv.url
    srv.close()


def get(base: str, path: str, **kw) -> requests.Response:
    return requests.get(base + path, timeout=30, **kw)


def twin(base: str, html_resp: requests.Response) -> dict:
    """Follow the page's own "This page as JSON" link."""
    page = Page(html_resp.text)
    assert page.json_link, "the page links its .json twin"
    r = requests.get(urljoin(html_resp.url, page.json_link), timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


# --- HTTP ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, expected", PAGES)
def test_every_page_renders(ui, path, expected):
    r = get(ui, path)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["Content-Type"].startswith("text/html")
    assert expected in r.text
    page = Page(r.text)
    assert page.h1 == 1 and '<html lang="en">' in r.text and '<main id="main"' in r.text
    # every form control has a label (the SPARQL page's example select and textarea included)
    assert set(page.controls) <= page.label_for, set(page.controls) - page.label_for
    # everything is served by us: no CDN, no external font, script or stylesheet
    assert not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', r.text)
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    # every table of data has column headers
    assert r.text.count("<table") == r.text.count("<thead>")


@pytest.mark.parametrize("path, table, key", [
    ("/ui/threats", "threats", "rows"),
    ("/ui/threats?modality=Image&family=MisleadingThreat", "threats", "rows"),
    ("/ui/threats?level=SystemLevel&families=1&inferred=true", "threats", "rows"),
    ("/ui/defenses", "defenses", "rows"),
    ("/ui/attacks", "attacks", "rows"),
    ("/ui/attacks?threat=AgentActionThreat", "attacks", "rows"),
    ("/ui/publications", "publications", "rows"),
    ("/ui/dashboard", "gaps", "gaps"),
])
def test_list_json_twin_has_the_rows_the_page_shows(ui, path, table, key):
    r = get(ui, path)
    data = twin(ui, r)
    shown = Page(r.text).tables[table]
    assert shown, "the page lists something"
    assert shown == [row["id"] for row in data[key]]
    if "count" in data:
        assert data["count"] == len(shown)


def test_entity_json_twins_match_their_pages(ui):
    cases = {
        "/ui/threats/MisleadingAdversarial": {"defense-coverage": ("defenses", "defense"),
                                              "attacks": ("attacks", "attack")},
        "/ui/threats/AgentActionThreat": {"defense-coverage": ("defenses", "defense"),
                                          "attacks": ("attacks", "attack")},
        "/ui/defenses/InformationFlowControl": {"threat-coverage": ("covers", "threat")},
        "/ui/attacks/A01": {"defense-coverage": ("defenses", "defense")},
        "/ui/attacks/A20": {"defense-coverage": ("defenses", "defense")},  # AnyDoor: a gap, no table
        "/ui/publications/arxiv-2310.04655": {"attacks": ("attacks", "attack")},
        "/ui/publications/arxiv-2411.11195": {"defense-coverage": ("coverage", "defense")},
    }
    for path, tables in cases.items():
        r = get(ui, path)
        assert r.status_code == 200, path
        data = twin(ui, r)
        page = Page(r.text)
        assert data["iri"] in r.text and data["label"] in r.text
        for table, (key, field) in tables.items():
            assert page.tables.get(table, []) == [row[field]["id"] for row in data[key]], (path, table)
            assert bool(data[key]) == (path != "/ui/attacks/A20"), (path, table)
    assert "no defense covers this attack" in get(ui, "/ui/attacks/A20").text
    # provenance: asserted link, source paper and graph are on the page and in the twin
    data = get(ui, "/ui/threats/MisleadingAdversarial.json").json()
    link = next(d for d in data["defenses"] if d["defense"]["id"] == "InputDenoising")
    assert link["linkKind"] == "asserted" and link["degree"] == "partial" and link["graphs"] == ["ontology"]
    assert [p["id"] for p in link["derivedFrom"]] == ["arxiv-2411.11195"]
    assert data["sources"][0]["id"] == "arxiv-2411.11195" and data["graphs"] == ["ontology"]
    attack = get(ui, "/ui/attacks/A01.json").json()
    assert [p["id"] for p in attack["sources"]] == ["arxiv-2310.04655"]
    assert attack["threats"][0]["id"] == "MisleadingAdversarial" and attack["sokRow"] == 1


def test_literature_links_with_their_evidence(ui):
    """Papers the loaders linked (mfm:linkEvidence/mfm:topic) show on the class, defense and paper pages, with
    the link's kind, confidence, evidence text and source; the twins carry the same."""
    paper = "t-ui-test-jailbreak-2026"
    for path in ("/ui/threats/MisleadingJailbreak", "/ui/threats/MisleadingThreat"):
        r = get(ui, path)
        data = twin(ui, r)
        assert Page(r.text).tables["literature"] == [p["paper"]["id"] for p in data["literature"]["papers"]]
        found = next(p for p in data["literature"]["papers"] if p["paper"]["id"] == paper)
        (link,) = found["links"]
        assert (link["topic"]["id"], link["linkKind"], link["confidence"], link["evidence"], link["source"]["label"]) \
            == ("MisleadingJailbreak", "inferred", 0.9, "title: jailbreak", "uitest")
        assert "title: jailbreak" in r.text and "badge-inferred" in r.text
    r = get(ui, "/ui/publications/" + paper)
    data = twin(ui, r)
    assert data["authors"] == ["Ada Lovelace", "Alan Turing"] and "Ada Lovelace, Alan Turing" in r.text
    assert data["abstract"] in r.text and "ui.bib:3" in r.text and data["graphs"] == ["source/uitest"]
    assert Page(r.text).tables["topics"] == [t["topic"]["id"] for t in data["topics"]] == ["Image", "MisleadingJailbreak"]
    assert {t["topic"]["href"] for t in data["topics"]} == {"/ui/threats?modality=Image",
                                                             "/ui/threats/MisleadingJailbreak"}
    # a DOI publication (percent-encoded IRI) is reachable from the links that name it
    defense = get(ui, "/ui/defenses/DiffusionPurification.json").json()
    doi = next(p["paper"] for p in defense["literature"]["papers"] if p["paper"]["label"].startswith("Purifying"))
    page = get(ui, doi["href"])
    assert page.status_code == 200 and "10.1000/ui.test" in page.text
    assert twin(ui, page)["iri"] == "https://w3id.org/mfmkg/id/pub/doi-10.1000%2Fui.test"
    listed = get(ui, "/ui/publications.json?q=for the UI tests").json()
    assert listed["total"] == 2 and {r_["href"] for r_ in listed["rows"]} >= {doi["href"]}


def test_publications_newest_first_in_pages(ui):
    data = get(ui, "/ui/publications.json").json()
    count = requests.post(ui + "/sparql", data={"query": "SELECT (COUNT(DISTINCT ?p) AS ?n) WHERE "
                                                         "{ ?p a <https://w3id.org/mfmkg/ont#Publication> }"},
                          headers={"Accept": "application/sparql-results+json"}, timeout=30).json()
    assert data["total"] == int(count["results"]["bindings"][0]["n"]["value"]) == len(data["rows"])
    dates = [r["issued"] or "" for r in data["rows"]]
    assert dates == sorted(dates, reverse=True) and dates[0] == "2026"
    assert get(ui, "/ui/publications.json?page=2").json()["rows"] == []


def test_unknown_ids_are_404_problems(ui):
    for path in ("/ui/threats/NoSuchThreat", "/ui/threats/NoSuchThreat.json", "/ui/defenses/MisleadingAdversarial",
                 "/ui/attacks/A99", "/ui/attacks/A99.json", "/ui/publications/arxiv-0000.00000",
                 "/ui/queries/no-such-query", "/ui/queries/no-such-query.json", "/ui/threats/Threat",
                 "/ui/resolve?iri=http://example.org/nothing"):
        r = get(ui, path)
        assert r.status_code == 404, path
        assert r.headers["Content-Type"].startswith(PROBLEM), path
        body = r.json()
        assert body["status"] == 404 and body["instance"] == urlparse(ui + path).path


def test_bad_filter_value_is_a_400_problem(ui):
    r = get(ui, "/ui/threats?modality=Smell")
    assert r.status_code == 400 and r.headers["Content-Type"].startswith(PROBLEM)
    assert "modality" in r.json()["detail"]


def test_heatmaps_are_svg_with_a_link_per_cell(ui):
    r = get(ui, "/")
    data = twin(ui, r)
    svgs = {s.get("id"): s for s in svgs_of(r.text)}
    assert set(svgs) == {"heatmap-modality-family", "heatmap-flow-axis"}
    for name, matrix in data["heatmaps"].items():
        svg = svgs[f"heatmap-{name}"]
        assert svg.tag == SVG + "svg" and svg.find(SVG + "title").text == matrix["title"]
        cells = svg.findall(f".//{SVG}a")
        assert len(cells) == len(matrix["rows"]) * len(matrix["cols"]) == len(matrix["cells"])
        by_pos = {(c["row"], c["col"]): c for c in matrix["cells"]}
        for a in cells:
            cell = by_pos.pop((a.get("data-row"), a.get("data-col")))
            assert a.get("href") == cell["href"]
            assert a.find(SVG + "title").text and a.get("aria-label")
            rect = a.find(SVG + "rect")
            assert rect.get("fill") in PALETTE or rect.get("fill").startswith("url(#")
            text = "".join(a.itertext())
            assert (f"{cell['covered']}/{cell['threats']}" in text) if cell["threats"] else ("–" in text)
        assert not by_pos
        # row and column labels are drawn
        labels = {t.text for t in svg.iter(SVG + "text")}
        assert {r_["label"] for r_ in matrix["rows"]} <= labels
        # the same SVG stands alone
        alone = get(ui, f"/ui/heatmaps/{name}.svg")
        assert alone.headers["Content-Type"].startswith("image/svg+xml")
        assert len(ET.fromstring(alone.content).findall(f".//{SVG}a")) == len(matrix["cells"])
    mf = {(c["row"], c["col"]): c for c in data["heatmaps"]["modality-family"]["cells"]}
    assert mf[("MisleadingThreat", "Image")]["href"] == "/ui/threats?modality=Image&family=MisleadingThreat"


def test_each_cell_lists_exactly_the_threats_it_counts(ui):
    data = get(ui, "/ui/dashboard.json").json()
    checked = 0
    for matrix in data["heatmaps"].values():
        for cell in matrix["cells"]:
            url = urlparse(cell["href"])
            listing = get(ui, url.path + ".json?" + url.query).json()
            assert listing["count"] == cell["threats"], cell
            assert sum(1 for row in listing["rows"] if row["defenses"] > 0) == cell["covered"], cell
            checked += 1
    assert checked == 24 + 18


def test_dashboard_gaps_are_the_least_defended(ui):
    data = get(ui, "/ui/dashboard.json").json()
    gaps = data["gaps"]
    assert gaps and all(g["defenses"] <= data["fewDefenses"] for g in gaps)
    ids = [g["id"] for g in gaps]
    assert "AgentMemoryDisinformation" in ids and "MisleadingAdversarial" not in ids
    assert data["summary"]["uncovered"] == sum(1 for g in gaps if g["defenses"] == 0)
    assert data["summary"]["attacks"] >= 73  # the SoK's threat table, plus any extension


def test_named_query_form(ui):
    r = get(ui, "/ui/queries/gaps?modality=Image&family=MisleadingThreat")
    assert r.status_code == 200
    page = Page(r.text)
    # a select per term/enum/boolean parameter, with the allowed values
    for name in ("modality", "flow", "axis", "level", "family", "inferred"):
        assert re.search(rf'<select id="p-{name}" name="{name}"', r.text), name
    assert '<option value="Image" selected>' in r.text
    assert '<option value="MisleadingThreat" selected>' in r.text
    data = twin(ui, r)
    assert data["count"] == page.row_counts["results"] > 0
    listed = get(ui, "/ui/threats.json?modality=Image&family=MisleadingThreat&families=1").json()
    assert sorted(row["threat"] for row in data["rows"]) == sorted(row["iri"] for row in listed["rows"])
    # IRIs in the results link to their pages
    assert "/ui/threats/MisleadingLatency" in page.links
    # downloads
    csv_link = next(l for l in page.links if ".csv" in l)
    rows = list(csv.reader(io.StringIO(requests.get(urljoin(r.url, csv_link), timeout=30).text)))
    assert rows[0] == data["vars"] and len(rows) == 1 + data["count"]
    # a bad value shows the problem on the page, and the twin is a 400 problem
    bad = get(ui, "/ui/queries/gaps?modality=Smell")
    assert bad.status_code == 400 and 'role="alert"' in bad.text and "Smell" in bad.text
    assert get(ui, "/ui/queries/gaps.json?modality=Smell").headers["Content-Type"].startswith(PROBLEM)


def test_sparql_page_offers_every_named_query_as_an_example(ui):
    from mfmkg.named_queries import load_queries

    r = get(ui, "/ui/sparql")
    for name in load_queries():
        assert f'<option value="{name}">' in r.text
    assert '<textarea id="query" name="query"' in r.text and '<label for="query">' in r.text
    js = get(ui, "/ui/static/ui.js")
    assert js.status_code == 200 and "fetch(" in js.text
    assert get(ui, "/ui/static/ui.css").status_code == 200
    # the query can be given in the URL (the editor puts it there after a run)
    assert "LIMIT 3" in get(ui, "/ui/sparql", params={"query": "SELECT * { ?s ?p ?o } LIMIT 3"}).text


def test_resolve_redirects_to_the_page_of_an_iri(ui):
    for iri, path in (("https://w3id.org/mfmkg/id/attack/A05", "/ui/attacks/A05"),
                      ("https://w3id.org/mfmkg/ont#InputDenoising", "/ui/defenses/InputDenoising"),
                      ("https://w3id.org/mfmkg/ont#Image", "/ui/threats?modality=Image")):
        r = get(ui, "/ui/resolve", params={"iri": iri}, allow_redirects=False)
        assert r.status_code == 302 and r.headers["Location"].endswith(path)


def test_inferred_links_show_their_provenance(app, live_server):
    """An inferred coverage link (as the analyses add them) appears with its kind, rule and graph, and counts on
    the dashboard only when inferred links are asked for."""
    from rdflib import Literal, URIRef
    from rdflib.namespace import PROV, RDF

    from mfmkg.namespaces import INFERRED_GRAPH, MFM

    base = live_server.url
    before = get(base, "/ui/dashboard.json").json()
    threat = next(g for g in before["gaps"] if g["defenses"] == 0)  # an uncovered threat class
    defense = get(base, "/ui/defenses.json").json()["rows"][0]
    cov = URIRef(f"https://w3id.org/mfmkg/id/coverage/{defense['id']}--{threat['id']}")
    app.extensions["mfmkg"].store.add([
        (cov, RDF.type, MFM.Coverage), (cov, MFM.coveringDefense, URIRef(defense["iri"])),
        (cov, MFM.coveredThreat, URIRef(threat["iri"])), (cov, MFM.degree, MFM.PartialCoverage),
        (cov, MFM.linkKind, MFM.Inferred), (cov, MFM.rule, Literal("same flow and axis")),
        (cov, PROV.wasDerivedFrom, URIRef("https://w3id.org/mfmkg/id/pub/arxiv-2411.11195")),
    ], INFERRED_GRAPH)
    r = get(base, threat["href"])
    assert "badge-inferred" in r.text and "same flow and axis" in r.text
    link = twin(base, r)["defenses"][0]
    assert (link["linkKind"], link["rule"], link["graphs"]) == ("inferred", "same flow and axis", ["inferred"])
    assert link["defense"]["id"] == defense["id"] and not link["inherited"]
    # asserted-only counts do not change; with inferred links the threat is covered
    assert get(base, "/ui/dashboard.json").json()["summary"] == before["summary"]
    with_inferred = get(base, "/ui/dashboard.json?inferred=true").json()
    assert with_inferred["summary"]["uncovered"] == before["summary"]["uncovered"] - 1
    assert threat["id"] not in [g["id"] for g in with_inferred["gaps"] if g["defenses"] == 0]
    for matrix in with_inferred["heatmaps"].values():
        for cell in matrix["cells"]:
            url = urlparse(cell["href"])
            assert "inferred=true" in url.query
            listing = get(base, url.path + ".json?" + url.query).json()
            assert sum(1 for row in listing["rows"] if row["defenses"]) == cell["covered"], cell


# --- a real browser -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven through its ChromeDriver; never a downloaded browser."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="mfmkg-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait(driver, condition, timeout=15):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def test_browser_dashboard_renders_the_heatmaps(ui, browser):
    from selenium.webdriver.common.by import By

    browser.get(ui + "/")
    svgs = browser.find_elements(By.CSS_SELECTOR, "svg.heatmap")
    assert len(svgs) == 2
    for svg in svgs:
        assert svg.is_displayed() and svg.size["width"] > 300 and svg.size["height"] > 300
    rects = browser.find_elements(By.CSS_SELECTOR, "svg.heatmap a.cell rect")
    assert len(rects) == 24 + 18
    assert all(r.is_displayed() and r.size["width"] > 40 and r.size["height"] > 30 for r in rects)
    # every non-empty cell is painted in the palette step of its covered share, with its tooltip
    from mfmkg.service.svg import PALETTE as STEPS, bin_of

    data = get(ui, "/ui/dashboard.json").json()
    for name, matrix in data["heatmaps"].items():
        for cell in matrix["cells"]:
            css = f'#heatmap-{name} a.cell[data-row="{cell["row"]}"][data-col="{cell["col"]}"]'
            fill = browser.execute_script(f"return getComputedStyle(document.querySelector('{css} rect')).fill")
            title = browser.find_element(By.CSS_SELECTOR, css + " title").get_attribute("textContent")
            if cell["threats"]:
                hex_ = STEPS[bin_of(cell["covered"] / cell["threats"])][0]
                assert fill == "rgb({}, {}, {})".format(*(int(hex_[i:i + 2], 16) for i in (1, 3, 5))), css
                assert f"{cell['covered']} of {cell['threats']}" in title
            else:
                assert fill.startswith("url(") and "no threat classes" in title
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    browser.save_screenshot("/tmp/dashboard.png")


def test_browser_clicking_a_cell_lists_its_threats(ui, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    browser.get(ui + "/")
    cell = browser.find_element(By.CSS_SELECTOR, 'a.cell[data-row="MisleadingThreat"][data-col="Image"] rect')
    cell.click()
    wait(browser, EC.url_contains("/ui/threats?"))
    query = parse_qs(urlparse(browser.current_url).query)
    assert query == {"modality": ["Image"], "family": ["MisleadingThreat"]}
    rows = browser.find_elements(By.CSS_SELECTOR, 'table[data-table="threats"] tbody tr')
    expected = get(ui, "/ui/threats.json?modality=Image&family=MisleadingThreat").json()
    cell = next(c for c in get(ui, "/ui/dashboard.json").json()["heatmaps"]["modality-family"]["cells"]
                if (c["row"], c["col"]) == ("MisleadingThreat", "Image"))
    assert len(rows) == expected["count"] == cell["threats"] > 0
    assert [r.get_attribute("data-id") for r in rows] == [row["id"] for row in expected["rows"]]
    assert all("misleading threat:" in r.text for r in rows)
    # the filter form shows the cell's filters
    assert browser.find_element(By.ID, "f-modality").get_attribute("value") == "Image"
    # and a flow x axis cell, reached with the keyboard-focusable link
    browser.get(ui + "/")
    browser.find_element(By.CSS_SELECTOR, 'a.cell[data-row="InteractionFlow"][data-col="Bandwidth"] rect').click()
    wait(browser, EC.url_contains("flow=InteractionFlow"))
    rows = browser.find_elements(By.CSS_SELECTOR, 'table[data-table="threats"] tbody tr')
    expected = get(ui, "/ui/threats.json?flow=InteractionFlow&axis=Bandwidth").json()
    assert [r.get_attribute("data-id") for r in rows] == [row["id"] for row in expected["rows"]]
    assert rows and all("agent interaction threat" in r.text for r in rows)


def test_browser_sparql_page_runs_a_typed_query(ui, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select

    browser.get(ui + "/ui/sparql")
    box = browser.find_element(By.ID, "query")
    box.clear()
    box.send_keys("PREFIX mfm: <https://w3id.org/mfmkg/ont#>\n"
                  "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
                  "SELECT ?attack ?label ?row WHERE { ?attack a mfm:Attack ; rdfs:label ?label ; mfm:sokRow ?row }\n"
                  "ORDER BY ?row LIMIT 7")
    browser.find_element(By.ID, "run").click()
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results tbody tr")) == 7)
    heads = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#results thead th")]
    assert heads == ["attack", "label", "row"]
    first = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")[0]
    assert "VLATTACK" in first.text and "id:attack/A01" in first.text
    assert "7 rows" in browser.find_element(By.ID, "status").text
    assert browser.find_element(By.ID, "downloads").is_displayed()
    assert browser.find_element(By.ID, "dl-json").get_attribute("href").startswith("blob:")
    # the CSV is fetched from the endpoint when asked for, and saved as a download
    downloads = tempfile.mkdtemp(prefix="mfmkg-downloads-")
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    browser.find_element(By.ID, "dl-csv").click()
    saved = os.path.join(downloads, "results.csv")
    wait(browser, lambda d: os.path.exists(saved) and os.path.getsize(saved) > 0)
    with open(saved, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    shutil.rmtree(downloads, ignore_errors=True)
    assert lines[0] == "attack,label,row" and len(lines) == 8 and "VLATTACK" in lines[1]
    # result IRIs open their pages
    first.find_element(By.TAG_NAME, "a").click()
    wait(browser, EC.url_contains("/ui/attacks/A01"))
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("VLATTACK")
    # an example from the select, run with Ctrl+Enter; errors are shown, not thrown
    browser.get(ui + "/ui/sparql")
    Select(browser.find_element(By.ID, "example")).select_by_value("coverage-flow-axis")
    assert "flowId" in browser.find_element(By.ID, "query").get_attribute("value")
    browser.find_element(By.ID, "query").send_keys(Keys.CONTROL, Keys.ENTER)
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results tbody tr")) == 18)
    box = browser.find_element(By.ID, "query")
    box.clear()
    box.send_keys("SELECT nonsense")
    browser.find_element(By.ID, "run").click()
    wait(browser, EC.visibility_of_element_located((By.ID, "error")))
    assert "syntax" in browser.find_element(By.ID, "error").text.lower()
