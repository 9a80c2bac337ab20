"""Coverage reasoning: inheritance from threat superclasses, the two inference rules, and inferred links kept in
their own graph with kind and rule, never reported as asserted. Numbers: docs/analysis.md, "Coverage"."""

from __future__ import annotations

from pathlib import Path

import pytest

from mfmkg.analysis.api import coverage_report, infer_report
from mfmkg.analysis.coverage import BASIS_KEY, RULES, infer, load_coverage
from mfmkg.errors import BadRequest
from mfmkg.namespaces import INFERRED_GRAPH, MFM, ONTOLOGY_GRAPH, source_graph

DATA = Path(__file__).resolve().parent / "data" / "analysis"
EX = "https://example.org/mini#"


@pytest.fixture
def mini():
    from mfmkg.store.embedded import EmbeddedStore

    s = EmbeddedStore(None)
    s.load((DATA / "mini.ttl").read_text(), "text/turtle", ONTOLOGY_GRAPH)
    s.load((DATA / "literature.ttl").read_text(), "text/turtle", source_graph("test"))
    yield s
    s.close()


def covers(store, threat: str, inferred: bool) -> dict[str, tuple]:
    cov = load_coverage(store, inferred)
    return {d.split("#")[-1]: (float(c.value), c.kind, c.via.split("#")[-1], c.rule and c.rule.split(":")[0])
            for d, c in cov.covers(EX + threat).items()}


# -- asserted coverage and inheritance ----------------------------------------------------------------------------
@pytest.mark.parametrize("threat, expected", [
    ("A1", {"Purifier": (0.5, "asserted", "A1", None)}),
    ("A2", {}),
    ("A3", {"Filter": (1.0, "asserted", "A3", None)}),
    ("B1", {"Guard": (0.5, "asserted", "FamB", None), "Sandbox": (1.0, "asserted", "B1", None)}),
    ("B2", {"Guard": (0.5, "asserted", "FamB", None)}),  # inherited from the family
])
def test_asserted_coverage_with_inheritance(mini, threat, expected):
    assert covers(mini, threat, inferred=False) == expected


def test_threat_set_is_the_leaves_and_grouping_defenses_are_not_deployable(mini):
    cov = load_coverage(mini, False)
    assert [t.split("#")[-1] for t in cov.kg.leaves] == ["A1", "A2", "A3", "A4", "B1", "B2"]
    assert [d.split("#")[-1] for d in cov.kg.candidates] == ["Filter", "Guard", "Monitor", "Purifier", "Sandbox"]


def test_several_links_take_the_maximum_and_prefer_the_direct_one(mini):
    # two more links: Guard directly on B1 (partial, like its family link), Sandbox on the family FamB (partial)
    mini.load(f"""@prefix mfm: <{MFM}> . <urn:x:g> a mfm:Coverage ; mfm:coveringDefense <{EX}Guard> ;
                  mfm:coveredThreat <{EX}B1> ; mfm:degree mfm:PartialCoverage ; mfm:linkKind mfm:Asserted .
                  <urn:x:h> a mfm:Coverage ; mfm:coveringDefense <{EX}Sandbox> ; mfm:coveredThreat <{EX}FamB> ;
                  mfm:degree mfm:PartialCoverage ; mfm:linkKind mfm:Asserted .""", "text/turtle", ONTOLOGY_GRAPH)
    got = covers(mini, "B1", False)
    assert got["Guard"] == (0.5, "asserted", "B1", None)  # equal weights: the link on the threat itself wins
    assert got["Sandbox"] == (1.0, "asserted", "B1", None)  # full beats the inherited partial
    assert covers(mini, "B2", False)["Sandbox"] == (0.5, "asserted", "FamB", None)


def test_shipped_ontology_inherits_family_coverage(store):
    cov = load_coverage(store, False)
    hijack = str(MFM.AgentActionGoalHijacking)
    breaker = cov.covers(hijack)[str(MFM.CircuitBreaker)]
    assert breaker.via == str(MFM.AgentActionThreat) and breaker.inherited and breaker.kind == "asserted"
    assert breaker.value == 0.5
    assert str(MFM.InformationFlowControl) in cov.covers(hijack)


# -- inferred coverage -----------------------------------------------------------------------------------------------
EXPECTED_INFERRED = {
    ("Purifier", "A2"): "flow-axis-sibling",  # sibling A1: same (F1, Noise), shares Image
    ("Sandbox", "B2"): "flow-axis-sibling",  # sibling B1 is covered fully, the inferred link is capped at partial
    ("Monitor", "B1"): "flow-axis-declared",  # no asserted link; declared on (F4, Bandwidth)
    ("Monitor", "B2"): "flow-axis-declared",
}


def test_inference_rules_give_exactly_the_documented_links(mini):
    rep = infer_report(mini)
    got = {(lk["defense"], lk["threat"]): lk["rule"] for lk in rep["links"]}
    assert got == EXPECTED_INFERRED
    assert ("Purifier", "A4") not in got  # same flow and axis as A1, but A4 is audio-only: no shared modality
    assert rep["by_rule"] == {"flow-axis-sibling": 2, "flow-axis-declared": 2}


def test_inferred_links_live_in_their_own_graph_with_kind_rule_and_partial_degree(mini):
    infer(mini)
    res = mini.query(f"""PREFIX mfm: <{MFM}>
        SELECT ?g ?d ?t ?deg ?kind ?rule WHERE {{ GRAPH ?g {{ ?c a mfm:Coverage ; mfm:coveringDefense ?d ;
          mfm:coveredThreat ?t ; mfm:degree ?deg ; mfm:linkKind ?kind ; mfm:rule ?rule }} }}""")
    rows = [tuple(str(x) for x in r) for r in res.rows]
    inferred = [r for r in rows if r[4] == str(MFM.Inferred)]
    assert {(r[1].split("#")[-1], r[2].split("#")[-1]) for r in inferred} == set(EXPECTED_INFERRED)
    assert all(r[0] == INFERRED_GRAPH for r in inferred)
    assert all(r[3] == str(MFM.PartialCoverage) for r in inferred)
    for r in inferred:
        rule_id, _, text = r[5].partition(": ")
        assert text == RULES[rule_id]
    assert not [r for r in rows if r[0] == INFERRED_GRAPH and r[4] != str(MFM.Inferred)]


def test_inferred_links_are_never_reported_as_asserted(mini):
    infer(mini)
    assert covers(mini, "A2", inferred=False) == {}
    assert covers(mini, "A2", inferred=True) == {"Purifier": (0.5, "inferred", "A2", "flow-axis-sibling")}
    with_inferred = coverage_report(mini, True)["rows"]
    kinds = {(r["defense"], r["threat"]): r["kind"] for r in with_inferred}
    assert {k for k, v in kinds.items() if v == "inferred"} == set(EXPECTED_INFERRED)
    asserted_only = coverage_report(mini, False)["rows"]
    assert all(r["kind"] == "asserted" and r["rule"] is None for r in asserted_only)
    assert not {(r["defense"], r["threat"]) for r in asserted_only} & set(EXPECTED_INFERRED)
    assert coverage_report(mini, False)["uncovered"] == ["A2", "A4"]


def test_recompute_replaces_the_graph_and_follows_new_asserted_links(mini):
    infer(mini)
    first = mini.stats()[INFERRED_GRAPH]
    infer(mini)
    assert mini.stats()[INFERRED_GRAPH] == first  # replaced, not appended
    # an asserted link for (Purifier, A2) makes the inferred one unnecessary; the answer notices the change itself
    mini.load(f"""@prefix mfm: <{MFM}> . <urn:x:p> a mfm:Coverage ; mfm:coveringDefense <{EX}Purifier> ;
                  mfm:coveredThreat <{EX}A2> ; mfm:degree mfm:FullCoverage .""", "text/turtle", ONTOLOGY_GRAPH)
    assert covers(mini, "A2", inferred=True) == {"Purifier": (1.0, "asserted", "A2", None)}
    assert mini.stats()[INFERRED_GRAPH] < first and mini.get_meta(BASIS_KEY)


def test_coverage_report_resolves_names_and_names_bad_ones(mini):
    rep = coverage_report(mini, True, threat="b2", defense="sandbox")
    assert [(r["defense"], r["kind"]) for r in rep["rows"]] == [("Sandbox", "inferred")]
    with pytest.raises(BadRequest, match=r"^threat: unknown threat 'Nope'"):
        coverage_report(mini, False, threat="Nope")
    with pytest.raises(BadRequest, match=r"^defense: unknown defense"):
        coverage_report(mini, False, defense="Nope")


def test_cli_infer_and_coverage(runner):
    from mfmkg.cli import main

    res = runner.invoke(main, ["analyze", "infer", "--memory"])
    assert res.exit_code == 0, res.output
    count = int(res.output.split()[0])
    assert count > 0 and "flow-axis-sibling" in res.output
    res = runner.invoke(main, ["analyze", "coverage", "--memory", "--threat", "AgentActionGoalHijacking",
                               "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0] == "threat,defense,degree,value,kind,rule,via,inherited,sources"
    assert "CircuitBreaker,PartialCoverage,0.5,asserted,,AgentActionThreat,true" in res.output
    res = runner.invoke(main, ["analyze", "coverage", "--memory", "--threat", "Nope"])
    assert res.exit_code == 1 and "threat: unknown threat 'Nope'" in res.output
