"""Attack capacity of the shipped example deployment against a hand computation (docs/analysis.md, "Attack
capacity"), the circuit breaker on the shipped session log, and bad deployments rejected with the field named."""

from __future__ import annotations

import copy
import json
from fractions import Fraction
from importlib.resources import files

import pytest
import yaml

from mfmkg.analysis.api import flow_report
from mfmkg.analysis.breaker import circuit_breaker, parse_session
from mfmkg.analysis.deployment import DeploymentError, load_deployment, validate
from mfmkg.analysis.flow import capacities, max_flow

EXAMPLES = files("mfmkg.analysis") / "examples"
YAML_TEXT = (EXAMPLES / "multimodal-agent.yaml").read_text()
SESSION = (EXAMPLES / "multimodal-agent-session.jsonl").read_text()


@pytest.fixture
def dep():
    return load_deployment(YAML_TEXT)


@pytest.fixture
def doc():
    return copy.deepcopy(yaml.safe_load(YAML_TEXT))


# -- max-flow and min cut ----------------------------------------------------------------------------------------
# Undefended: into the model the untrusted sources push visual_tokens 9000 + page_text 24000 + retrieval 8000 +
# peer_messages 4000 = 45000; out of it to the sink tool_calls 32000 + min(code_calls 8000, code_actions 4000) =
# 36000, so max-flow 36000 with the cut {tool_calls, code_actions}. Deployed (all four defenses): in 4500 + 4000 =
# 8500, out 16000 + 0: max-flow 8500, cut {visual_tokens, peer_messages}.
def test_example_max_flow_and_min_cut(dep):
    rep = flow_report(dep)
    assert rep["untrusted_sources"] == ["user_image", "web", "rag_corpus", "peer_agent"]
    assert rep["undefended"] == {"max_flow": 36000, "min_cut": ["code_actions", "tool_calls"],
                                 "min_cut_capacity": 36000}
    assert rep["deployed"] == {"max_flow": 8500, "min_cut": ["peer_messages", "visual_tokens"],
                               "min_cut_capacity": 8500}


@pytest.mark.parametrize("defense, after, cut_after, changed, without, marginal", [
    ("jpeg", 36000, ["code_actions", "tool_calls"], False, 13000, 4500),
    ("tool_allowlist", 20000, ["code_actions", "tool_calls"], False, 8500, 0),
    ("sandbox", 32000, ["tool_calls"], True, 8500, 0),
    ("ifc", 13000, ["peer_messages", "visual_tokens"], True, 16000, 7500),
])
def test_example_effect_of_each_defense(dep, defense, after, cut_after, changed, without, marginal):
    eff = {e["defense"]: e for e in flow_report(dep)["defenses"]}[defense]
    assert (eff["flow_before"], eff["flow_after"], eff["reduction"]) == (36000, after, 36000 - after)
    assert eff["cut_after"] == cut_after and eff["cut_changed"] is changed
    assert (eff["flow_without_it"], eff["marginal"]) == (without, marginal)


def test_cut_capacity_equals_flow_and_trusted_sources_are_not_attackers(dep):
    caps = capacities(dep, set())
    res = max_flow(dep, caps)
    assert sum(caps[e] for e in res.cut) == res.value
    trusting = validate({**yaml.safe_load(YAML_TEXT),
                         "sources": [{**s, "trusted": True} for s in yaml.safe_load(YAML_TEXT)["sources"]]})
    assert max_flow(trusting, capacities(trusting, set())).value == 0


def test_parallel_edges_stay_distinct():
    dep = validate({"sink": "m", "sources": [{"id": "s", "kind": "web", "trusted": False}],
                    "components": [{"id": "m", "kind": "model"}],
                    "edges": [{"id": "a", "from": "s", "to": "m", "bandwidth": 3},
                              {"id": "b", "from": "s", "to": "m", "bandwidth": 4}]})
    res = max_flow(dep, capacities(dep, set()))
    assert res.value == 7 and res.cut == ["a", "b"]


# -- the circuit breaker ---------------------------------------------------------------------------------------------
# Deployed bandwidths: peer_messages 4000, visual_tokens 4500, page_text 0 (removed), tool_calls 16000. Observed per
# turn: 400, 900 + 200, 0, 1800, 800 + 400, 4050; running total 400, 1500, 1500, 3300, 4500, 8550.
@pytest.mark.parametrize("share, turn, threshold", [
    ("0.5", 5, 4250), ("0.9", 6, 7650), ("0.3", 4, 2550), ("2", None, 17000),
])
def test_circuit_breaker_on_the_example_log(dep, share, turn, threshold):
    cb = flow_report(dep, SESSION, Fraction(share))["circuit_breaker"]
    assert cb["fires_at_turn"] == turn and cb["threshold"] == threshold
    assert [t["cumulative"] for t in cb["trace"]] == [400, 1500, 1500, 3300, 4500, 8550]


def test_circuit_breaker_needs_strictly_more_than_the_threshold(dep):
    caps = {e.id: e.bandwidth for e in dep.edges}
    turns = parse_session([{"turn": 1, "scores": {"peer_messages": 0.5}}], dep)  # exactly 2000
    assert circuit_breaker(turns, caps, 4000.0, Fraction(1, 2))["fires_at_turn"] is None
    turns = parse_session([{"turn": 1, "scores": {"peer_messages": 0.5}}, {"turn": 2, "scores": {"tool_calls": 0}}],
                          dep)
    assert circuit_breaker(turns, caps, 3999.0, Fraction(1, 2))["fires_at_turn"] == 1


@pytest.mark.parametrize("log, where, field", [
    ('{"turn": 1, "scores": {"nope": 0.1}}', "session line 1", "scores.nope"),
    ('{"turn": 1, "scores": {"tool_calls": 1.5}}', "session line 1", "scores.tool_calls"),
    ('{"turn": 2, "scores": {}}\n{"turn": 2, "scores": {}}', "session line 2", "turn"),
    ('{"turn": "1", "scores": {}}', "session line 1", "turn"),
    ('{"turn": 1}', "session line 1", "scores"),
    ('\n{"turn": 1, "scores": {}, "extra": 1}', "session line 2", "extra"),
    ('{"turn": 1, "scores": {}\n', "session line 1", "(line)"),
])
def test_bad_session_lines_name_line_and_field(dep, log, where, field):
    with pytest.raises(DeploymentError) as err:
        parse_session(log, dep)
    assert (err.value.where, err.value.field) == (where, field)
    assert str(err.value).startswith(f"{where}: {field}: ")


# -- validation -------------------------------------------------------------------------------------------------------
BAD = [
    # (change, field, reason fragment)
    (lambda d: d["edges"][3].update(bandwidth=-5) or d, "edges[3].bandwidth", "must be a positive number"),
    (lambda d: d["edges"][3].update(bandwidth="lots") or d, "edges[3].bandwidth", "must be a positive number"),
    (lambda d: d["edges"][3].update(bandwidth=0) or d, "edges[3].bandwidth", "must be a positive number"),
    (lambda d: d["edges"][3].update(bandwidth=True) or d, "edges[3].bandwidth", "must be a positive number"),
    (lambda d: d["edges"][3].pop("bandwidth") and d, "edges[3].bandwidth", "must be a positive number"),
    (lambda d: d["edges"][0].update({"to": "nowhere"}) or d, "edges[0].to", "must name a source or component"),
    (lambda d: d["edges"][0].update({"to": "user_text"}) or d, "edges[0].to", "must differ"),
    (lambda d: d["edges"][2].update({"bandwith": 5}) or d, "edges[2].bandwith", "unknown field"),
    (lambda d: d["edges"][1].update({"id": "user_text_in"}) or d, "edges[1].id", "duplicate id"),
    (lambda d: d["sources"][1].update({"trusted": "no"}) or d, "sources[1].trusted", "true or false"),
    (lambda d: d["sources"][0].update({"kind": "fax"}) or d, "sources[0].kind", "must be one of"),
    (lambda d: d["components"][2].update({"id": "web"}) or d, "components[2].id", "duplicate id"),
    (lambda d: d.update(sink="web") or d, "sink", "must name a component"),
    (lambda d: d.pop("sink") and d, "sink", "required"),
    (lambda d: d.update(edges=[]) or d, "edges", "non-empty list"),
    (lambda d: d.update(sources="web") or d, "sources", "non-empty list"),
    (lambda d: d["defenses"][0]["constrains"][0].update(factor=1.5) or d, "defenses[0].constrains[0].factor",
     "in [0, 1]"),
    (lambda d: d["defenses"][0]["constrains"][0].update(edge="nope") or d, "defenses[0].constrains[0].edge",
     "must name an edge"),
    (lambda d: d["defenses"][2]["constrains"][0].update(remove=False) or d, "defenses[2].constrains[0].remove",
     "must be true"),
    (lambda d: d["defenses"][0]["constrains"][0].update(remove=True) or d, "defenses[0].constrains[0]",
     "exactly one of factor"),
    (lambda d: d["defenses"][1].update(constrains=[]) or d, "defenses[1].constrains", "non-empty list"),
    (lambda d: d.update(colour="blue") or d, "colour", "unknown field"),
    (lambda d: [1, 2], "(document)", "must be a mapping"),
]


@pytest.mark.parametrize("change, field, reason", BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_bad_deployment_names_the_field(doc, change, field, reason):
    with pytest.raises(DeploymentError) as err:
        validate(change(doc), "deployment.yaml")
    assert err.value.field == field
    assert reason in err.value.reason
    assert str(err.value).startswith(f"deployment.yaml: {field}: ")
    assert err.value.status == 400 and err.value.problem()["field"] == field


@pytest.mark.parametrize("text, fmt, fragment", [
    ("sources: [", None, "not valid YAML"),
    ('{"sources": ', "json", "not valid JSON"),
    (b"\xff\xfe", None, "not UTF-8"),
    ("", None, "must be a mapping"),
    ("[" * 100000, "json", "nested too deeply"),
    ("[" * 100000, None, "nested too deeply"),
])
def test_unparsable_files_name_the_document(text, fmt, fragment):
    with pytest.raises(DeploymentError) as err:
        load_deployment(text, fmt)
    assert err.value.field == "(document)" and fragment in err.value.reason


def test_json_and_yaml_give_the_same_analysis(dep):
    as_json = load_deployment(json.dumps(yaml.safe_load(YAML_TEXT)), "json")
    assert flow_report(as_json) == flow_report(dep)


def test_cli_flow(runner, tmp_path):
    from mfmkg.cli import main

    path = str(EXAMPLES / "multimodal-agent.yaml")
    log = tmp_path / "log.jsonl"
    log.write_text(SESSION)
    res = runner.invoke(main, ["analyze", "flow", path, "--session", str(log), "--share", "0.9", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["deployed"]["max_flow"] == 8500 and data["circuit_breaker"]["fires_at_turn"] == 6
    res = runner.invoke(main, ["analyze", "flow", path, "--session", str(log)])
    assert res.exit_code == 0 and "fires at turn 5" in res.output and "max-flow without defenses 36000" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(YAML_TEXT.replace("bandwidth: 9000", "bandwidth: -9000"))
    res = runner.invoke(main, ["analyze", "flow", str(bad)])
    assert res.exit_code == 1 and "edges[10].bandwidth: must be a positive number" in res.output
    res = runner.invoke(main, ["analyze", "flow", path, "--share", "0"])
    assert res.exit_code == 1 and "share: must be a number > 0" in res.output
