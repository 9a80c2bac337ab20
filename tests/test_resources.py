"""REST resources over real HTTP: every list row equals its item, links, formats, paging, 404s."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import requests

from conftest import LiveServer
from mfmkg.namespaces import INFERRED_GRAPH, source_graph

MFM = "https://w3id.org/mfmkg/ont#"
PROBLEM = "application/problem+json"
KINDS = ["threats", "defenses", "attacks", "modalities", "flows", "publications"]
#: Minimum sizes from the shipped ontology (docs/model.md); loaders may add publications.
AT_LEAST = {"threats": 31, "defenses": 15, "attacks": 73, "modalities": 4, "flows": 6, "publications": 60}
DATA = Path(__file__).parent / "data" / "service"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One live server for the module (building the app per test would cost about a second each)."""
    from mfmkg.service import create_app

    app = create_app({"MEMORY": True, "TESTING": True, "MAX_ROWS": 1000,
                      "DATA_DIR": str(tmp_path_factory.mktemp("data"))})
    store = app.extensions["mfmkg"].store  # an inferred link and papers linked as the literature loaders link them
    store.load((DATA / "inferred.ttl").read_bytes(), "text/turtle", INFERRED_GRAPH)
    store.load((DATA / "literature.ttl").read_bytes(), "text/turtle", source_graph("test"))
    srv = LiveServer(app)
    srv.store = store
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def url(server):
    return server.url


def get(url: str, path: str, **params) -> requests.Response:
    return requests.get(url + path, params=params, timeout=30)


def all_items(url: str, kind: str, size: int = 1000) -> list[dict]:
    """Every row of a list, following `next` pages."""
    resp, items = get(url, f"/{kind}.json", _size=size), []
    while True:
        assert resp.status_code == 200, resp.text
        body = resp.json()
        items += body["items"]
        assert body["count"] == len(body["items"])
        if not body["next"]:
            return items
        assert resp.headers["Link"] == f'<{body["next"]}>; rel="next"'
        resp = requests.get(body["next"], timeout=30)


@pytest.mark.parametrize("kind", KINDS)
def test_every_list_item_is_fetchable_and_equal_to_its_row(url, kind):
    items = all_items(url, kind)
    assert len(items) >= AT_LEAST[kind]
    ids = [i["id"] for i in items]
    assert len(set(ids)) == len(ids), "ids must be unique within a kind"
    for row in items:
        assert row["href"] == f"/{kind}/{row['id']}"
        resp = requests.get(url + row["href"], timeout=30)
        assert resp.status_code == 200, (row["href"], resp.text)
        item = resp.json()
        mismatched = {k: (v, item.get(k)) for k, v in row.items() if item.get(k) != v}
        assert not mismatched, (row["id"], mismatched)


@pytest.mark.parametrize("kind", KINDS)
def test_csv_list_has_the_json_rows(url, kind):
    items = all_items(url, kind)
    table = list(csv.DictReader(io.StringIO(get(url, f"/{kind}.csv", _size=1000).text)))
    assert [r["id"] for r in table] == [i["id"] for i in items]
    assert [r["iri"] for r in table] == [i["iri"] for i in items]
    for r, i in zip(table, items):  # scalars as text, lists joined with "; "
        for key, value in i.items():
            if isinstance(value, list):
                assert r[key] == "; ".join(map(str, value)), (i["id"], key)
            elif isinstance(value, str):
                assert r[key] == value, (i["id"], key)


@pytest.mark.parametrize("kind,ident", [("threats", "MisleadingJailbreak"), ("attacks", "A01"),
                                        ("defenses", "DiffusionPurification"),
                                        ("publications", "arxiv-2310.04655"), ("modalities", "Audio"),
                                        ("flows", "MemoryFlow")])
def test_item_as_csv_is_its_row(url, kind, ident):
    resp = get(url, f"/{kind}/{ident}.csv")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(resp.text)))
    assert len(table) == 1 and table[0]["id"] == ident
    assert get(url, f"/{kind}/{ident}", ).json()["iri"] == table[0]["iri"]


@pytest.mark.parametrize("path", ["/threats/NoSuchThreat", "/attacks/A99", "/defenses/Prayer",
                                  "/publications/arxiv-0000.00000", "/publications/doi-10.1/none.json",
                                  "/modalities/Smell", "/flows/F9", "/threats/MisleadingJailbreak.xml",
                                  "/threats/A01", "/attacks/MisleadingJailbreak"])
def test_unknown_ids_are_404_problems(url, path):
    resp = requests.get(url + path, timeout=30)
    assert resp.status_code == 404
    assert resp.headers["Content-Type"] == PROBLEM
    assert resp.json()["status"] == 404


def test_threat_item_links(url):
    item = get(url, "/threats/AgentActionMaliciousCode").json()
    assert item["superclasses"] == [MFM + "AgentActionThreat"]
    defenses = {d["id"]: d for d in item["defenses"]}
    breaker = defenses["CircuitBreaker"]  # covers the whole family: inherited by this subclass
    assert breaker["inherited"] is True and breaker["via"] == MFM + "AgentActionThreat"
    assert breaker["kind"] == MFM + "Asserted" and breaker["degree"] == MFM + "PartialCoverage"
    assert breaker["sources"] == ["https://w3id.org/mfmkg/id/pub/arxiv-2411.11195"]
    assert breaker["href"] == "/defenses/CircuitBreaker"
    assert {a["id"] for a in item["attacks"]} and all(a["href"].startswith("/attacks/") for a in item["attacks"])
    assert item["papers"] and all(p["href"].startswith("/publications/") for p in item["papers"])


def test_family_item_lists_subclasses_and_all_their_attacks(url):
    family = get(url, "/threats/MisleadingThreat").json()
    subclasses = {s["id"] for s in family["subclasses"]}
    assert {"MisleadingJailbreak", "MisleadingAdversarial"} <= subclasses
    assert len(family["attacks"]) == 25
    goal = get(url, "/threats/MisleadingJailbreak").json()
    assert {a["id"] for a in goal["attacks"]} <= {a["id"] for a in family["attacks"]}
    assert {d["id"] for d in family["defenses"]} <= {d["id"] for d in goal["defenses"]}


@pytest.mark.parametrize("threat", ["AgentActionMaliciousCode", "MisleadingAdversarial", "AgentMemoryDisinformation"])
def test_threat_item_defenses_agree_with_the_named_query(url, threat):
    item = get(url, f"/threats/{threat}").json()
    rows = get(url, "/queries/defenses-for-threat.json", threat=threat, _size=1000).json()["rows"]
    assert [(d["iri"], d["via"]) for d in item["defenses"]] == [(r["defense"], r["via"]) for r in rows]


def test_defense_item_links(url):
    item = get(url, "/defenses/InputDenoising").json()
    assert {"DiffusionPurification", "JpegCompression"} <= {s["id"] for s in item["subclasses"]}
    assert {t["id"] for t in item["threats"]} == {"MisleadingAdversarial", "MisleadingTransferability"}
    breaker = get(url, "/defenses/CircuitBreaker").json()
    inherited = [t for t in breaker["threats"] if t["inherited"]]
    assert len(inherited) >= 6 and all(t["via"] == MFM + "AgentActionThreat" for t in inherited)


def test_attack_item_has_every_column_and_its_publication(url):
    item = get(url, "/attacks/A01").json()
    for key in ("label", "sokRow", "family", "threat", "manipulatesModality", "onFlow", "onAxis", "atStage",
                "hasGoal", "adversaryKnowledge", "adversaryCapability", "targetsModelType", "sources"):
        assert item.get(key), key
    assert item["sokRow"] == 1 and item["label"] == "VLATTACK"
    assert item["threat"] == MFM + "MisleadingAdversarial"
    assert sorted(item["manipulatesModality"]) == [MFM + "Image", MFM + "Text"]
    assert item["publication"]["id"] == "arxiv-2310.04655" and "VLATTACK" in item["publication"]["label"]


def test_publication_item_links(url):
    item = get(url, "/publications/arxiv-2310.04655").json()
    assert item["title"].startswith("VLATTACK") and item["issued"] == "2023"
    assert [a["id"] for a in item["attacks"]] == ["A01"]
    assert [t["id"] for t in item["threats"]] == ["MisleadingAdversarial"]
    sok = get(url, "/publications/arxiv-2411.11195").json()
    assert len(sok["definesAttacks"]) == 73 and sok["coverages"]


def test_literature_links_in_items(url):
    threat = get(url, "/threats/MisleadingJailbreak").json()
    papers = {p["id"]: p for p in threat["papers"]}
    assert papers["t-lit-one-2025"]["confidence"] == 0.9 and threat["paperCount"] == len(papers) == 11
    assert threat["papersHref"] == "/queries/papers-for-threat?threat=MisleadingJailbreak"
    assert len(requests.get(url + threat["papersHref"], timeout=30).json()["rows"]) == 11
    inferred = [d for d in get(url, "/threats/AgentInteractionJailbreak").json()["defenses"]]
    assert [(d["id"], d["kind"]) for d in inferred] == [("BandwidthConstraint", MFM + "Inferred")]
    defense = get(url, "/defenses/DiffusionPurification").json()
    assert [p["id"] for p in defense["papers"]] == ["t-lit-two-2024"] and defense["paperCount"] == 1
    paper = get(url, "/publications/t-lit-one-2025").json()
    assert [(t["topic"], t["kind"], t["confidence"]) for t in paper["topics"]] == [
        (MFM + "MisleadingJailbreak", MFM + "Inferred", 0.9)]
    assert paper["threats"] == [] and paper["attacks"] == []


def test_modality_item_links(url):
    audio = get(url, "/modalities/Audio").json()
    assert len(audio["attacks"]) == 2 and audio["threats"]
    assert all(a["href"].startswith("/attacks/") for a in audio["attacks"])


@pytest.mark.parametrize("size", [1, 7, 50])
def test_publication_pages_concatenate_to_the_whole_list(url, size):
    whole = get(url, "/publications.json", _size=1000).json()
    assert whole["truncated"] is False and whole["next"] is None and whole["total"] == whole["count"]
    paged = all_items(url, "publications", size)
    assert paged == whole["items"]


def test_publications_default_page_and_bad_paging(url):
    body = get(url, "/publications").json()
    assert body["count"] <= 100
    assert get(url, "/publications", _size="0").status_code == 400
    assert get(url, "/publications", _next="nonsense").status_code == 400
    token = get(url, "/queries/gaps", _size=1).json()["next"].split("_next=")[1]
    assert get(url, "/publications", _size=1, _next=token).status_code == 400


@pytest.mark.parametrize("path,accept,status,ctype,vary", [
    ("/threats", None, 200, "application/json", True),
    ("/threats", "text/csv", 200, "text/csv", True),
    ("/threats", "image/png", 406, PROBLEM, True),
    ("/threats.csv", "image/png", 200, "text/csv", False),
    ("/threats/MisleadingJailbreak", "text/csv", 200, "text/csv", True),
    ("/threats/MisleadingJailbreak.json", "text/csv", 200, "application/json", False),
])
def test_negotiation(url, path, accept, status, ctype, vary):
    resp = requests.get(url + path, headers={"Accept": accept} if accept else {}, timeout=30)
    assert resp.status_code == status
    assert resp.headers["Content-Type"].split(";")[0] == ctype
    assert ("Accept" in resp.headers.get("Vary", "")) is vary


def test_a_page_asked_for_after_the_list_changed_is_refused(server, url):
    first = get(url, "/publications", _size=5).json()
    extra = "https://w3id.org/mfmkg/id/pub/t-added-while-paging-2026"
    update = f"GRAPH <{source_graph('paging-test')}> {{ <{extra}> a <{MFM}Publication> }}"
    store = server.store
    store.update(f"INSERT DATA {{ {update} }}")
    try:
        resp = requests.get(first["next"], timeout=30)
        assert resp.status_code == 400 and "changed" in resp.json()["detail"]
        assert get(url, "/publications", _size=5).json()["total"] == first["total"] + 1
    finally:
        store.update(f"DELETE DATA {{ {update} }}")
