"""The first-release service over real HTTP: SoK aggregates via SPARQLWrapper, /gaps, version and health."""

from __future__ import annotations

import csv
import io

import pytest
import requests
from SPARQLWrapper import CSV, JSON, SPARQLWrapper

PREFIX = "PREFIX mfm: <https://w3id.org/mfmkg/ont#>\n"

AGGREGATES = [
    ("SELECT (COUNT(DISTINCT ?a) AS ?n) WHERE { ?a a mfm:Attack }", 73),
    ("SELECT (COUNT(DISTINCT ?a) AS ?n) WHERE { ?a a mfm:Attack ; mfm:manipulatesModality mfm:Text }", 44),
    ("SELECT (COUNT(DISTINCT ?a) AS ?n) WHERE { ?a a mfm:Attack ; mfm:manipulatesModality mfm:Image }", 32),
    ("SELECT (COUNT(DISTINCT ?a) AS ?n) WHERE { ?a a mfm:Attack ; mfm:manipulatesModality mfm:Audio }", 2),
    ("SELECT (COUNT(DISTINCT ?a) AS ?n) WHERE { ?a a mfm:Attack ; mfm:onAxis mfm:Signal }", 15),
    ("SELECT (COUNT(DISTINCT ?a) AS ?n) WHERE { ?a a mfm:Attack ; mfm:onAxis mfm:Noise }", 27),
    ("SELECT (COUNT(DISTINCT ?a) AS ?n) WHERE { ?a a mfm:Attack ; mfm:onAxis mfm:Bandwidth }", 31),
    ("SELECT (COUNT(DISTINCT ?a) AS ?n) WHERE { ?a a mfm:Attack ; mfm:adversaryKnowledge mfm:GreyBox }", 4),
]


@pytest.mark.parametrize("query,expected", AGGREGATES)
def test_paper_aggregates_through_sparqlwrapper(serve_process, query, expected):
    client = SPARQLWrapper(serve_process + "/sparql")
    client.setQuery(PREFIX + query)
    client.setReturnFormat(JSON)
    result = client.query().convert()
    assert int(result["results"]["bindings"][0]["n"]["value"]) == expected


def test_aggregate_as_csv_through_sparqlwrapper(serve_process):
    client = SPARQLWrapper(serve_process + "/sparql")
    client.setQuery(PREFIX + AGGREGATES[0][0])
    client.setReturnFormat(CSV)
    rows = list(csv.reader(io.StringIO(client.query().convert().decode())))
    assert rows == [["n"], ["73"]]


def test_gaps_lists_every_threat_uncovered_first(live_server):
    body = requests.get(live_server.url + "/gaps.json").json()
    rows = body["rows"]
    assert body["count"] == len(rows) >= 31
    defenses = [r["defenses"] for r in rows]
    assert defenses == sorted(defenses), "threats with fewer defenses must come first"
    assert body["uncovered"] == sum(1 for d in defenses if d == 0) > 0
    assert sum(r["attacks"] for r in rows if r["family"] == r["threat"]) == 73, "families hold every attack"


@pytest.mark.parametrize("param,value", [("modality", "Audio"), ("modality", "mfm:Audio"),
                                         ("modality", "https://w3id.org/mfmkg/ont#Audio"), ("level", "SystemLevel"),
                                         ("flow", "MemoryFlow"), ("axis", "Signal"),
                                         ("family", "AgentMemoryThreat")])
def test_gaps_filters_narrow_the_list(live_server, param, value):
    everything = requests.get(live_server.url + "/gaps.json").json()["count"]
    filtered = requests.get(live_server.url + "/gaps.json", params={param: value}).json()
    assert 0 < filtered["count"] < everything
    assert filtered["filters"] == {param: value}


def test_gaps_filter_by_audio_keeps_only_audio_threats(live_server):
    rows = requests.get(live_server.url + "/gaps.json", params={"modality": "Audio"}).json()["rows"]
    labels = {r["threat"].rsplit("#", 1)[1] for r in rows}
    assert "MisleadingAdversarial" in labels and "AgentMemoryDisinformation" not in labels


def test_gaps_bad_filter_is_a_problem_naming_the_parameter(live_server):
    resp = requests.get(live_server.url + "/gaps", params={"modality": "Smell"})
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert "modality" in resp.json()["detail"]


@pytest.mark.parametrize("path,accept,ctype", [("/gaps.csv", None, "text/csv"), ("/gaps", "text/csv", "text/csv"),
                                               ("/gaps", None, "application/json"),
                                               ("/gaps.json", "text/csv", "application/json")])
def test_gaps_formats(live_server, path, accept, ctype):
    resp = requests.get(live_server.url + path, headers={"Accept": accept} if accept else {})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith(ctype)
    if ctype == "text/csv":
        header = next(csv.reader(io.StringIO(resp.text)))
        assert header == ["threat", "label", "family", "defenses", "attacks", "evidence"]


def test_gaps_unsatisfiable_accept_is_406(live_server):
    resp = requests.get(live_server.url + "/gaps", headers={"Accept": "image/png"})
    assert resp.status_code == 406
    assert resp.json()["status"] == 406
    assert resp.headers.get("Vary") == "Accept"


def test_version_reports_package_ontology_and_counts(live_server):
    body = requests.get(live_server.url + "/-/version.json").json()
    assert body["version"]
    assert body["ontology"]["versionIRI"].startswith("https://w3id.org/mfmkg/ont/")
    assert len(body["ontology"]["contentHash"]) == 64
    assert body["triples"]["https://w3id.org/mfmkg/graph/ontology"] > 1000


def test_health(live_server):
    resp = requests.get(live_server.url + "/-/health")
    assert resp.status_code == 200 and resp.json()["status"] == "ok"


def test_unknown_route_is_problem_json(live_server):
    resp = requests.get(live_server.url + "/no/such/thing")
    assert resp.status_code == 404
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert resp.json()["title"] == "Not Found"
