"""Named queries over real HTTP: /queries, typed parameters, formats, paging, and what each query must answer."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import requests

from conftest import LiveServer
from mfmkg.named_queries import load_queries
from mfmkg.namespaces import INFERRED_GRAPH, source_graph

MFM = "https://w3id.org/mfmkg/ont#"
PROBLEM = "application/problem+json"
MAX_ROWS = 500
QUERIES = sorted(load_queries())
REQUIRED = {"search": {"q": "jailbreak"}, "papers-for-threat": {"threat": "MisleadingThreat"}}
#: The queries of this issue; they must answer rows on the shipped ontology alone (others may need loaded data).
OURS = ["gaps", "coverage-modality-family", "coverage-flow-axis", "defenses-for-threat", "threats-for-defense",
        "papers-for-threat", "cross-modal-gaps", "sok-attack-table", "search"]
FAMILIES = ["MisleadingThreat", "MislearningThreat", "InferringThreat", "AgentActionThreat", "AgentInteractionThreat",
            "AgentMemoryThreat"]
DATA = Path(__file__).parent / "data" / "service"


def load_fixtures(app) -> None:
    """An inferred coverage link and three papers linked the way the literature loaders link them."""
    store = app.extensions["mfmkg"].store
    store.load((DATA / "inferred.ttl").read_bytes(), "text/turtle", INFERRED_GRAPH)
    store.load((DATA / "literature.ttl").read_bytes(), "text/turtle", source_graph("test"))


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    """One live server for the module (building the app per test would cost about a second each)."""
    from mfmkg.service import create_app

    app = create_app({"MEMORY": True, "TESTING": True, "MAX_ROWS": MAX_ROWS,
                      "DATA_DIR": str(tmp_path_factory.mktemp("data"))})
    load_fixtures(app)
    srv = LiveServer(app)
    yield srv.url
    srv.close()


def get(url: str, path: str, **params) -> requests.Response:
    return requests.get(url + path, params=params, timeout=30)


def rows(url: str, name: str, **params) -> list[dict]:
    resp = get(url, f"/queries/{name}.json", _size=MAX_ROWS, **params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert not body["truncated"]
    return body["rows"]


def local(iri: str) -> str:
    return iri.rsplit("#", 1)[-1]


# -- the list and the metadata ------------------------------------------------------------------------------------
def test_list_has_every_query_with_metadata_and_urls(url):
    resp = get(url, "/queries")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
    listed = {q["name"]: q for q in resp.json()["queries"]}
    assert sorted(listed) == QUERIES
    assert set(OURS) <= set(listed)
    for q in listed.values():
        assert q["title"] and q["description"], q["name"]
        assert q["href"] == f"/queries/{q['name']}" and q["formats"]["csv"] == f"/queries/{q['name']}.csv"
    family = next(p for p in listed["gaps"]["params"] if p["name"] == "family")
    assert family["values"] == FAMILIES
    modality = next(p for p in listed["gaps"]["params"] if p["name"] == "modality")
    assert {"Text", "Image", "Audio", "Video"} <= set(modality["values"])
    assert next(p for p in listed["search"]["params"] if p["name"] == "q")["required"] is True


@pytest.mark.parametrize("name", QUERIES)
def test_every_query_runs_with_its_defaults(url, name):
    resp = get(url, f"/queries/{name}", **REQUIRED.get(name, {}))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["query"] == name and body["vars"] and body["count"] == len(body["rows"])
    assert all(set(r) == set(body["vars"]) for r in body["rows"])
    assert body["rows"] or name not in OURS


def test_unknown_query_is_a_404_problem(url):
    resp = get(url, "/queries/no-such-query")
    assert resp.status_code == 404 and resp.headers["Content-Type"] == PROBLEM
    assert "no-such-query" in resp.json()["detail"]


# -- typed parameters -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,param,value", [
    ("gaps", "family", "Nope"), ("gaps", "family", "MisleadingJailbreak"), ("gaps", "modality", "Smell"),
    ("gaps", "inferred", "maybe"), ("papers-for-threat", "since", "last year"), ("papers-for-threat", "threat", ""),
    ("defenses-for-threat", "threat", "Image"), ("threats-for-defense", "defense", "MisleadingJailbreak"),
    ("sok-attack-table", "family", "Threat"), ("search", "q", ""),
])
def test_bad_value_is_a_400_problem_naming_the_parameter(url, name, param, value):
    params = {**REQUIRED.get(name, {}), param: value}
    resp = get(url, f"/queries/{name}", **params)
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == PROBLEM
    problem = resp.json()
    assert problem["status"] == 400 and f"'{param}'" in problem["detail"]


@pytest.mark.parametrize("value", ["AgentMemoryThreat", "mfm:AgentMemoryThreat", MFM + "AgentMemoryThreat",
                                   "agentmemorythreat", "agent memory threat"])
def test_term_values_by_iri_curie_local_name_or_label(url, value):
    got = rows(url, "gaps", family=value)
    assert got and {r["family"] for r in got} == {MFM + "AgentMemoryThreat"}
    assert MFM + "AgentMemoryThreat" in {r["threat"] for r in got}  # a family's family is itself


def test_unknown_and_paging_like_parameters_are_ignored_by_queries(url):
    assert rows(url, "gaps", format="json", output="x") == rows(url, "gaps")


# -- formats and negotiation ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("path,accept,ctype,vary", [
    ("/queries/gaps.json", None, "application/json", False),
    ("/queries/gaps.csv", None, "text/csv", False),
    ("/queries/gaps.tsv", None, "text/tab-separated-values", False),
    ("/queries/gaps", None, "application/json", True),
    ("/queries/gaps", "text/csv", "text/csv", True),
    ("/queries/gaps", "text/tab-separated-values", "text/tab-separated-values", True),
    ("/queries/gaps", "text/csv;q=0.5, application/json", "application/json", True),
    ("/queries/gaps.csv", "application/json", "text/csv", False),
])
def test_formats_by_suffix_or_accept(url, path, accept, ctype, vary):
    resp = requests.get(url + path, headers={"Accept": accept} if accept else {}, timeout=30)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].split(";")[0] == ctype
    assert ("Accept" in resp.headers.get("Vary", "")) is vary


def test_unsatisfiable_accept_is_406_with_vary(url):
    resp = requests.get(url + "/queries/gaps", headers={"Accept": "image/png"}, timeout=30)
    assert resp.status_code == 406 and resp.headers["Content-Type"] == PROBLEM
    assert "Accept" in resp.headers["Vary"]


def test_csv_and_tsv_hold_the_same_rows_as_json(url):
    json_rows = rows(url, "gaps")
    table = list(csv.DictReader(io.StringIO(get(url, "/queries/gaps.csv").text)))
    assert [r["threat"] for r in table] == [r["threat"] for r in json_rows]
    assert [int(r["defenses"]) for r in table] == [r["defenses"] for r in json_rows]
    tsv = get(url, "/queries/gaps.tsv").text.splitlines()
    assert tsv[0].split("\t") == ["?" + v for v in ("threat", "label", "family", "defenses", "attacks", "evidence")]
    assert tsv[1].split("\t")[0] == f"<{json_rows[0]['threat']}>"


# -- paging ---------------------------------------------------------------------------------------------------------
def walk(url: str, first: str, params: dict) -> tuple[list[dict], int]:
    """Follow `next` from the first page; returns the rows and the number of pages, checking Link and truncated."""
    resp = requests.get(url + first, params=params, timeout=30)
    got, pages = [], 0
    while True:
        assert resp.status_code == 200, resp.text
        body = resp.json()
        got += body["rows"]
        pages += 1
        assert body["truncated"] is (body["next"] is not None)
        if body["next"] is None:
            assert "Link" not in resp.headers
            return got, pages
        assert resp.headers["Link"] == f'<{body["next"]}>; rel="next"'
        resp = requests.get(body["next"], timeout=30)


@pytest.mark.parametrize("name,params", [("gaps", {}), ("gaps", {"inferred": "true", "level": "SystemLevel"}),
                                         ("sok-attack-table", {}), ("defenses-for-threat", {}),
                                         ("search", {"q": "attack"}),
                                         ("papers-for-threat", {"threat": "MisleadingThreat", "since": "2023"})])
@pytest.mark.parametrize("size", [1, 7, 100])
def test_pages_concatenate_to_the_unpaged_result(url, name, params, size):
    whole = rows(url, name, **params)
    paged, pages = walk(url, f"/queries/{name}", {**params, "_size": size})
    assert paged == whole
    assert pages == max(1, -(-len(whole) // size))


def test_default_page_is_100_rows(url):
    body = get(url, "/queries/search", q="e").json()
    assert body["total"] > 100 and body["count"] == 100 and body["truncated"] is True


def test_csv_pages_with_a_link_header(url):
    first = get(url, "/queries/sok-attack-table.csv", _size=50)
    assert first.headers["Link"].endswith('; rel="next"')
    nxt = first.headers["Link"][1:first.headers["Link"].index(">")]
    rest = requests.get(nxt, timeout=30)
    lines = first.text.splitlines()[1:] + rest.text.splitlines()[1:]
    assert len(lines) == 73 and "Link" not in rest.headers


@pytest.mark.parametrize("params", [{"_size": "0"}, {"_size": str(MAX_ROWS + 1)}, {"_size": "ten"},
                                    {"_next": "garbage!"}, {"_next": "eyJwIjoxfQ"}])
def test_bad_paging_parameters_are_400_naming_them(url, params):
    resp = get(url, "/queries/gaps", **params)
    assert resp.status_code == 400 and resp.headers["Content-Type"] == PROBLEM
    assert f"'{next(iter(params))}'" in resp.json()["detail"]


def test_a_token_is_bound_to_its_query_and_parameters(url):
    token = get(url, "/queries/gaps", _size=2).json()["next"].split("_next=")[1]
    assert get(url, "/queries/gaps", _size=2, _next=token).status_code == 200
    assert get(url, "/queries/gaps", _size=2, _next=token, level="ModelLevel").status_code == 400
    assert get(url, "/queries/sok-attack-table", _size=2, _next=token).status_code == 400


# -- gaps -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_gaps_family_filter_keeps_the_classes_of_that_family(url, family):
    everything = rows(url, "gaps")
    got = rows(url, "gaps", family=family)
    expected = [r for r in everything if r["family"] == MFM + family]
    assert got == expected and got


def test_gaps_inferred_links_count_only_when_asked(url):
    asserted = {local(r["threat"]): r for r in rows(url, "gaps")}
    inferred = {local(r["threat"]): r for r in rows(url, "gaps", inferred="true")}
    assert asserted["AgentInteractionJailbreak"]["defenses"] == 0
    assert inferred["AgentInteractionJailbreak"]["defenses"] == 1
    changed = {k for k in asserted if asserted[k]["defenses"] != inferred[k]["defenses"]}
    assert changed == {"AgentInteractionJailbreak"}


def test_gaps_evidence_counts_the_papers_of_a_threat_and_its_subclasses(url):
    got = {local(r["threat"]): r for r in rows(url, "gaps")}
    for name, r in got.items():
        assert (r["evidence"] > 0) == (r["attacks"] > 0), name
        papers = {p["paper"] for p in rows(url, "papers-for-threat", threat=name)}
        assert r["evidence"] == len(papers), name
    for family in FAMILIES:
        goals = [r for r in got.values() if r["family"] == MFM + family]
        assert got[family]["evidence"] >= max(g["evidence"] for g in goals)


# -- coverage matrices ------------------------------------------------------------------------------------------------
def test_modality_family_matrix_agrees_with_gaps(url):
    cells = rows(url, "coverage-modality-family")
    modalities = {c["modality"] for c in cells}
    assert len(cells) == len(modalities) * len(FAMILIES) and {MFM + "Audio", MFM + "Text"} <= modalities
    for c in cells:
        assert c["covered"] + c["uncovered"] == c["threats"]
        threats = [t for t in rows(url, "gaps", modality=c["modality"], family=c["family"])
                   if t["threat"] != c["family"]]  # the matrix counts the family's classes, not the family
        assert c["threats"] == len(threats), c
        assert c["uncovered"] == sum(1 for t in threats if t["defenses"] == 0), c


def test_modality_family_matrix_with_inferred_links(url):
    before = {(local(c["modality"]), local(c["family"])): c for c in rows(url, "coverage-modality-family")}
    after = {(local(c["modality"]), local(c["family"])): c for c in rows(url, "coverage-modality-family",
                                                                         inferred="true")}
    cell = ("Text", "AgentInteractionThreat")
    assert after[cell]["covered"] == before[cell]["covered"] + 1


def test_flow_axis_matrix_reproduces_the_sok_axis_counts(url):
    cells = rows(url, "coverage-flow-axis")
    assert len(cells) == 6 * 3
    assert sum(c["attacks"] for c in cells) == 73  # every attack sits on one model-level or system flow
    by_axis = {}
    for c in cells:
        by_axis[local(c["axis"])] = by_axis.get(local(c["axis"]), 0) + c["attacks"]
        assert c["covered"] + c["uncovered"] == c["threats"]
    assert by_axis == {"Signal": 15, "Noise": 27, "Bandwidth": 31}
    interaction = [c for c in cells if c["flowId"] == "F5" and local(c["axis"]) == "Bandwidth"][0]
    assert interaction["threats"] > 0 and interaction["covered"] == 0  # the SoK: agent interaction is a gap


# -- defenses and threats -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("threat", ["AgentActionMaliciousCode", "AgentActionGoalHijacking", "MisleadingAdversarial",
                                    "MislearningBackdoor"])
def test_defenses_for_a_subclass_include_its_superclasses_defenses(url, threat):
    own = rows(url, "defenses-for-threat", threat=threat)
    superclass = rows(url, "gaps", family=next(
        f for f in FAMILIES if any(local(r["threat"]) == threat for r in rows(url, "gaps", family=f))))[0]["family"]
    inherited = rows(url, "defenses-for-threat", threat=superclass)
    for r in inherited:
        assert any(o["defense"] == r["defense"] and o["via"] == r["via"] and o["inherited"] for o in own), r
    direct = [o for o in own if not o["inherited"]]
    assert all(o["via"] == MFM + threat for o in direct)
    assert all(o["degree"] and o["kind"] and o["weight"] in (0.5, 1.0) for o in own)


def test_circuit_breaker_reaches_every_agent_action_threat(url):
    got = rows(url, "defenses-for-threat", threat="AgentActionMaliciousCode")
    breaker = [r for r in got if local(r["defense"]) == "CircuitBreaker"]
    assert breaker and breaker[0]["inherited"] is True and local(breaker[0]["via"]) == "AgentActionThreat"
    assert "arxiv-2411.11195" in breaker[0]["sources"]


def test_threats_for_defense_is_the_same_relation_read_the_other_way(url):
    key = lambda r: (r["threat"], r["defense"], r["via"], r["kind"], r["inherited"])  # noqa: E731
    assert {key(r) for r in rows(url, "defenses-for-threat")} == {key(r) for r in rows(url, "threats-for-defense")}


def test_inferred_links_are_marked_and_can_be_left_out(url):
    with_inferred = rows(url, "defenses-for-threat", threat="AgentInteractionJailbreak")
    assert [(local(r["defense"]), local(r["kind"])) for r in with_inferred] == [("BandwidthConstraint", "Inferred")]
    assert rows(url, "defenses-for-threat", threat="AgentInteractionJailbreak", inferred="false") == []


# -- papers, cross-modal gaps, the SoK table, search ------------------------------------------------------------------
def test_papers_linked_by_the_literature_loaders_count_once(url):
    got = {r["paper"].rsplit("/", 1)[1]: r for r in rows(url, "papers-for-threat", threat="MisleadingJailbreak")}
    assert got["t-lit-one-2025"]["confidence"] == 0.9 and got["t-lit-one-2025"]["attacks"] == ""
    assert got["arxiv-2311.05608"]["attacks"] == "https://w3id.org/mfmkg/id/attack/A21"
    assert got["t-lit-one-2025"]["year"] == 2025
    assert got["arxiv-2311.05608"]["confidence"] == 1.0 and got["arxiv-2311.05608"]["attacks"]  # FigStep, both ways
    family = {r["paper"] for r in rows(url, "papers-for-threat", threat="MisleadingThreat")}
    assert {r["paper"] for r in got.values()} <= family
    evidence = {local(r["threat"]): r["evidence"] for r in rows(url, "gaps")}
    assert evidence["MisleadingJailbreak"] == len(got) == 11  # 10 SoK papers + 1 from the literature


def test_papers_for_a_threat_newest_first_and_since(url):
    got = rows(url, "papers-for-threat", threat="MisleadingThreat")
    years = [r["year"] for r in got if r["year"] is not None]  # a reference of unknown year comes last
    assert years == sorted(years, reverse=True) and len(got) >= 20
    assert all(r["year"] is None for r in got[len(years):])
    goal_papers = {r["paper"] for r in rows(url, "papers-for-threat", threat="MisleadingJailbreak")}
    assert goal_papers and goal_papers <= {r["paper"] for r in got}
    since = rows(url, "papers-for-threat", threat="MisleadingThreat", since="2024")
    assert since and all(r["year"] >= 2024 for r in since) and len(since) < len(got)


def test_cross_modal_gaps_are_multimodal_or_alignment_attacks_with_uncovered_threats(url):
    gaps = {r["threat"]: r["defenses"] for r in rows(url, "gaps")}
    default = rows(url, "cross-modal-gaps")
    strict = rows(url, "cross-modal-gaps", fullOnly="true")
    assert default and len(strict) > len(default)
    assert {r["attack"] for r in default} <= {r["attack"] for r in strict}
    for r in default:
        assert r["modalityCount"] >= 2 or r["alignment"], r
        assert gaps[r["threat"]] == 0, r
    assert any("mismatching" in r["alignment"] for r in strict)


def test_sok_attack_table_has_the_73_rows_and_every_column(url):
    table = rows(url, "sok-attack-table")
    assert [r["row"] for r in table] == list(range(1, 74))
    columns = ["text", "image", "audio", "flow_input", "flow_model", "flow_output", "flow_action",
               "flow_interaction", "flow_memory", "axis_signal", "axis_noise", "axis_bandwidth", "goal",
               "knowledge_white", "knowledge_grey", "knowledge_black", "capability", "target_encoder",
               "target_i_t2i", "target_i_t2t", "target_a2t", "source", "name", "family", "threat"]
    assert all(all(r[c] is not None for c in columns) for r in table)
    count = lambda col, val: sum(1 for r in table if r[col] == val)  # noqa: E731
    assert (count("text", "yes"), count("image", "yes"), count("audio", "yes")) == (44, 32, 2)
    assert count("knowledge_grey", "yes") == 4
    model_level = sum(1 for r in table if local(r["family"]) in FAMILIES[:3])
    assert count("flow_action", "n/a") == model_level == 42
    assert table[0]["name"] == "VLATTACK" and table[0]["source"].endswith("/pub/arxiv-2310.04655")


def test_sok_attack_table_family_filter(url):
    got = rows(url, "sok-attack-table", family="AgentMemoryThreat")
    assert len(got) == 12 and {local(r["family"]) for r in got} == {"AgentMemoryThreat"}


@pytest.mark.parametrize("q", ["diffpure", "DIFFPURE", "DiffPure"])
def test_search_is_case_insensitive_over_labels(url, q):
    got = rows(url, "search", q=q)
    assert [(local(r["item"]), r["kind"]) for r in got] == [("DiffusionPurification", "defense")]


def test_search_finds_titles_and_orders_terms_before_papers(url):
    got = rows(url, "search", q="jailbreak")
    kinds = [r["kind"] for r in got]
    assert "threat" in kinds and "publication" in kinds
    assert kinds.index("threat") < kinds.index("publication")
    assert all("jailbreak" in r["matched"].lower() for r in got)
