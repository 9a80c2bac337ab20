"""``/analysis/*`` over real HTTP: JSON and CSV (suffix and Accept), 406, problems naming the parameter or field,
415 and 413 for the posted deployment. The served graph is the miniature ontology of the worked examples."""

from __future__ import annotations

import csv
import io
import json
from importlib.resources import files
from pathlib import Path

import pytest
import requests
import yaml
from rdflib import Graph

from conftest import LiveServer
from mfmkg.namespaces import ONTOLOGY_GRAPH, source_graph

DATA = Path(__file__).resolve().parent / "data" / "analysis"
EXAMPLES = files("mfmkg.analysis") / "examples"
YAML_TEXT = (EXAMPLES / "multimodal-agent.yaml").read_text()
SESSION = (EXAMPLES / "multimodal-agent-session.jsonl").read_text()
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    """One live server for the module; its ontology graph is replaced by the miniature one (no reload runs)."""
    from mfmkg.service import create_app

    app = create_app({"MEMORY": True, "TESTING": True, "RELOAD_INTERVAL": 0, "ANALYSIS_MAX_BODY": 64 * 1024,
                      "DATA_DIR": str(tmp_path_factory.mktemp("data"))})
    store = app.extensions["mfmkg"].store
    store.replace_graph(ONTOLOGY_GRAPH, Graph().parse(DATA / "mini.ttl", format="turtle"))
    store.load((DATA / "literature.ttl").read_text(), "text/turtle", source_graph("test"))
    srv = LiveServer(app)
    yield srv.url
    srv.close()


def get(url, path, headers=None, **params):
    return requests.get(url + path, params=params, headers=headers or {}, timeout=60)


def problem(resp, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith(PROBLEM)
    body = resp.json()
    assert body["status"] == status and body["instance"]
    return body


# -- DCI ----------------------------------------------------------------------------------------------------------
def test_dci_json(url):
    resp = get(url, "/analysis/dci", weights="evidence", portfolio="Guard,Sandbox")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
    assert "Accept" in resp.headers["Vary"]
    body = resp.json()
    dci = {r["id"]: r["dci"] for r in body["defenses"]}
    assert dci == pytest.approx({"Purifier": 2 / 12, "Filter": 1 / 12, "Guard": 2.5 / 12, "Sandbox": 2 / 12,
                                 "Monitor": 0})
    assert body["portfolio"]["dci"] == pytest.approx(3.5 / 12) and body["include_inferred"] is False


@pytest.mark.parametrize("how", ["suffix", "accept"])
def test_dci_csv(url, how):
    resp = (get(url, "/analysis/dci.csv", inferred="true") if how == "suffix"
            else get(url, "/analysis/dci", {"Accept": "text/csv"}, inferred="true"))
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(resp.text))}
    assert float(rows["Sandbox"]["dci"]) == pytest.approx(0.25)
    assert float(rows["Monitor"]["dci"]) == pytest.approx(1 / 6) and rows["Monitor"]["inferred"] == "2"
    assert float(rows["Guard"]["axis:Bandwidth"]) == pytest.approx(0.5)


@pytest.mark.parametrize("params, name", [
    ({"weights": "heavy"}, "weights"), ({"inferred": "maybe"}, "inferred"), ({"portfolio": "Nope"}, "portfolio"),
])
def test_dci_bad_parameters(url, params, name):
    assert problem(get(url, "/analysis/dci", **params), 400)["detail"].startswith(f"{name}: ")


def test_dci_not_acceptable(url):
    body = problem(get(url, "/analysis/dci", {"Accept": "image/png"}), 406)
    assert "text/csv" in body["detail"]


# -- coverage -------------------------------------------------------------------------------------------------------
def test_coverage_reports_kind_and_rule(url):
    rows = get(url, "/analysis/coverage.json", threat="B2", inferred="1").json()["rows"]
    assert {(r["defense"], r["kind"], r["via"]) for r in rows} == {
        ("Guard", "asserted", "FamB"), ("Monitor", "inferred", "B2"), ("Sandbox", "inferred", "B2")}
    assert all(r["rule"].startswith(("flow-axis-sibling: ", "flow-axis-declared: ")) for r in rows
               if r["kind"] == "inferred")
    plain = get(url, "/analysis/coverage.csv", threat="B2").text.splitlines()
    assert plain[0] == "threat,defense,degree,value,kind,rule,via,inherited,sources"
    assert plain[1:] == ["B2,Guard,PartialCoverage,0.5,asserted,,FamB,true,https://w3id.org/mfmkg/id/pub/p3"]


# -- minimax --------------------------------------------------------------------------------------------------------
def test_minimax_json(url):
    body = get(url, "/analysis/minimax", budget="4", coverable_only="true").json()
    assert body["value"] == 0.5 and body["exact"] and body["cost"] == 4
    assert [d["defense"] for d in body["portfolio"]] == ["Filter", "Guard", "Purifier"]
    assert body["best_response"] == ["A1", "B1", "B2"]
    assert [a["axis"] for a in body["by_axis"]] == ["Signal", "Noise", "Bandwidth"]


def test_minimax_csv(url):
    resp = get(url, "/analysis/minimax.csv", budget="0")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [r["threat"] for r in rows] == ["A1", "A2", "A3", "A4", "B1", "B2"]
    assert all(r["residual"] == "1.0" and r["best_response"] == "true" and not r["covered_by"] for r in rows)


@pytest.mark.parametrize("params", [{}, {"budget": ""}, {"budget": "abc"}, {"budget": "-2"}, {"budget": "nan"},
                                    {"budget": "1e999"}])
def test_minimax_bad_budget_is_400_naming_it(url, params):
    assert problem(get(url, "/analysis/minimax", **params), 400)["detail"].startswith("budget: ")


@pytest.mark.parametrize("params, name", [
    ({"budget": "1", "method": "magic"}, "method"), ({"budget": "1", "time_limit": "0"}, "time_limit"),
    ({"budget": "1", "coverable_only": "perhaps"}, "coverable_only"),
])
def test_minimax_other_bad_parameters(url, params, name):
    assert problem(get(url, "/analysis/minimax", **params), 400)["detail"].startswith(f"{name}: ")


# -- flow --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("content_type, body", [
    ("application/yaml", YAML_TEXT), ("text/yaml", YAML_TEXT), (None, YAML_TEXT),
    ("application/json", json.dumps(yaml.safe_load(YAML_TEXT))),
])
def test_flow_accepts_yaml_and_json(url, content_type, body):
    headers = {"Content-Type": content_type} if content_type else {}
    resp = requests.post(url + "/analysis/flow", data=body.encode(), headers=headers, timeout=60)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["undefended"]["max_flow"] == 36000 and data["deployed"]["min_cut"] == ["peer_messages",
                                                                                      "visual_tokens"]
    assert data["circuit_breaker"] is None


@pytest.mark.parametrize("share_in, query, turn", [(None, None, 5), (0.9, None, 6), (0.9, "0.3", 4)])
def test_flow_with_session(url, share_in, query, turn):
    envelope = {"deployment": yaml.safe_load(YAML_TEXT), "session": SESSION}
    if share_in is not None:
        envelope["share"] = share_in
    resp = requests.post(url + "/analysis/flow", json=envelope, params={"share": query} if query else {}, timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.json()["circuit_breaker"]["fires_at_turn"] == turn


@pytest.mark.parametrize("body, field", [
    (YAML_TEXT.replace("bandwidth: 9000", "bandwidth: -9000"), "edges[10].bandwidth"),
    (YAML_TEXT.replace("factor: 0.5}\n  - id: tool", "factor: 7}\n  - id: tool"), "defenses[0].constrains[0].factor"),
    (YAML_TEXT.replace("sink: privileged_actions", "sink: web"), "sink"),
    ("sources: [", "(document)"),
    ("", "(document)"),
])
def test_flow_bad_files_are_400_naming_the_field(url, body, field):
    resp = requests.post(url + "/analysis/flow", data=body.encode(), headers={"Content-Type": "application/yaml"},
                         timeout=60)
    got = problem(resp, 400)
    assert got["field"] == field and got["title"] == "Invalid deployment"
    assert got["detail"].startswith(f"deployment: {field}: ")


def test_flow_bad_session_names_line_and_field(url):
    envelope = {"deployment": yaml.safe_load(YAML_TEXT), "session": '{"turn": 1, "scores": {"nope": 0.2}}'}
    got = problem(requests.post(url + "/analysis/flow", json=envelope, timeout=60), 400)
    assert got["field"] == "scores.nope" and got["detail"].startswith("session line 1: scores.nope: ")


def test_flow_bad_share_unsupported_type_and_too_large(url):
    resp = requests.post(url + "/analysis/flow", data=YAML_TEXT.encode(), params={"share": "-1"},
                         headers={"Content-Type": "application/yaml"}, timeout=60)
    assert problem(resp, 400)["detail"].startswith("share: ")
    resp = requests.post(url + "/analysis/flow", data=b"<a/>", headers={"Content-Type": "application/xml"},
                         timeout=60)
    problem(resp, 415)
    big = YAML_TEXT + "#" * (64 * 1024)
    resp = requests.post(url + "/analysis/flow", data=big.encode(), headers={"Content-Type": "application/yaml"},
                         timeout=60)
    problem(resp, 413)
