"""The minimax portfolio: the MILP equals brute force on random small instances (value, and the documented tie
breaks: least total residual, then least cost), ties in the attacker's answer, zero budget, the greedy bound, and
the worked example of docs/analysis.md on the miniature ontology."""

from __future__ import annotations

import random
import time
from fractions import Fraction
from pathlib import Path

import pytest

from mfmkg.analysis.api import minimax_report
from mfmkg.analysis.minimax import Problem, brute_force, solve
from mfmkg.analysis.params import number
from mfmkg.errors import BadRequest
from mfmkg.namespaces import ONTOLOGY_GRAPH, source_graph

DATA = Path(__file__).resolve().parent / "data" / "analysis"
HALF = Fraction(1, 2)


def random_problem(seed: int, n_def: int = 6, n_threat: int = 8, degrees=(HALF, Fraction(1))) -> tuple[Problem, int]:
    rng = random.Random(seed)
    defenses = [f"d{i}" for i in range(n_def)]
    threats = [f"t{j}" for j in range(n_threat)]
    cover = {}
    for d in defenses:
        for t in threats:
            r = rng.random()
            if r < 0.4:
                cover[(d, t)] = degrees[0] if r < 0.3 else rng.choice(degrees)
    impact = {t: Fraction(rng.randint(0 if seed % 5 == 0 else 1, 6)) for t in threats}
    cost = {d: Fraction(rng.randint(0 if seed % 7 == 0 else 1, 4)) for d in defenses}
    return Problem(threats, impact, defenses, cost, cover), rng.randint(0, 12)


@pytest.mark.parametrize("seed", range(30))
def test_milp_equals_brute_force(seed):
    p, budget = random_problem(seed)
    sol = solve(p, budget, method="exact")
    assert sol.status == "optimal" and sol.exact
    assert (sol.value, sol.total, sol.cost) == brute_force(p, budget)
    assert sol.cost <= budget
    assert sol.value == p.value(sol.portfolio)


@pytest.mark.parametrize("seed", range(100, 110))
def test_milp_equals_brute_force_with_other_degrees(seed):
    # the log-space phase does not need degrees in {.5, 1}: quarter steps, value only (ties may differ below 1e-6)
    p, budget = random_problem(seed, 7, 10, degrees=(Fraction(1, 4), Fraction(3, 4), Fraction(1)))
    assert solve(p, budget, method="exact").value == brute_force(p, budget)[0]


@pytest.mark.parametrize("seed", range(200, 210))
def test_greedy_is_feasible_and_its_lower_bound_holds(seed):
    p, budget = random_problem(seed)
    best = brute_force(p, budget)[0]
    g = solve(p, budget, method="greedy")
    assert g.method == "greedy" and not g.exact and g.cost <= budget
    assert g.value >= best
    assert g.lower_bound is not None and g.lower_bound <= float(best) + 1e-9


def test_zero_budget_buys_nothing_unless_free():
    p = Problem(["a", "b"], {"a": Fraction(3), "b": Fraction(2)}, ["x", "free"],
                {"x": Fraction(1), "free": Fraction(0)}, {("x", "a"): Fraction(1), ("free", "b"): HALF})
    sol = solve(p, 0)
    assert sol.portfolio == ["free"] and sol.value == 3 and sol.best_response == ["a"]
    assert sol.marginal == {"free": 0}


def test_zero_budget_value_is_the_largest_impact_with_ties_listed():
    p = Problem(["a", "b", "c"], {"a": Fraction(2), "b": Fraction(1), "c": Fraction(2)}, ["x"],
                {"x": Fraction(1)}, {("x", "a"): Fraction(1)})
    sol = solve(p, 0)
    assert sol.portfolio == [] and sol.value == 2 and sol.best_response == ["a", "c"]


def test_ties_in_the_attackers_answer_and_marginal_values():
    # x covers a fully, y halves b and c: with both, residuals a 0, b 1, c 1 (value 1, tie b/c)
    p = Problem(["a", "b", "c"], {"a": Fraction(4), "b": Fraction(2), "c": Fraction(2)}, ["x", "y"],
                {"x": Fraction(1), "y": Fraction(1)},
                {("x", "a"): Fraction(1), ("y", "b"): HALF, ("y", "c"): HALF})
    sol = solve(p, 2)
    assert sol.portfolio == ["x", "y"] and sol.value == 1 and sol.best_response == ["b", "c"]
    assert sol.marginal == {"x": 3, "y": 1}  # without x: a = 4; without y: b = c = 2
    one = solve(p, 1)
    assert one.portfolio == ["x"] and one.value == 2 and one.best_response == ["b", "c"]


def test_all_threats_fully_covered_gives_value_zero_and_every_threat_ties():
    p = Problem(["a", "b"], {"a": Fraction(1), "b": Fraction(5)}, ["x", "y", "z"],
                {"x": Fraction(1), "y": Fraction(1), "z": Fraction(3)},
                {("x", "a"): Fraction(1), ("y", "b"): Fraction(1), ("z", "a"): Fraction(1), ("z", "b"): Fraction(1)})
    sol = solve(p, 3)
    assert sol.value == 0 and sol.cost == 2 and sol.portfolio == ["x", "y"]  # z also works, but costs more
    assert sol.best_response == ["a", "b"]


# -- the worked example (docs/analysis.md, "Minimax portfolio") -------------------------------------------------------
@pytest.fixture(scope="module")
def mini():
    from mfmkg.store.embedded import EmbeddedStore

    s = EmbeddedStore(None)
    s.load((DATA / "mini.ttl").read_text(), "text/turtle", ONTOLOGY_GRAPH)
    s.load((DATA / "literature.ttl").read_text(), "text/turtle", source_graph("test"))
    yield s
    s.close()


@pytest.mark.parametrize("budget, value, portfolio, best, total", [
    (0, 1.0, [], ["A1", "A3", "B1", "B2"], 4.0),
    (1, 1.0, ["Filter"], ["A1", "B1", "B2"], 3.0),
    (2, 1.0, ["Filter", "Purifier"], ["B1", "B2"], 2.5),
    (4, 0.5, ["Filter", "Guard", "Purifier"], ["A1", "B1", "B2"], 1.5),
    (7, 0.5, ["Filter", "Guard", "Purifier", "Sandbox"], ["A1", "B2"], 1.0),
])
def test_worked_example(mini, budget, value, portfolio, best, total):
    rep = minimax_report(mini, Fraction(budget), coverable_only=True)
    assert rep["value"] == value and rep["residual_total"] == total
    assert [d["defense"] for d in rep["portfolio"]] == portfolio
    assert rep["best_response"] == best
    assert rep["uncoverable"] == ["A2", "A4"] and rep["exact"]


def test_worked_example_marginals_and_axes(mini):
    rep = minimax_report(mini, Fraction(4), coverable_only=True)
    assert {d["defense"]: d["marginal_value"] for d in rep["portfolio"]} == {"Filter": .5, "Guard": .5,
                                                                            "Purifier": .5}
    assert rep["by_axis"] == [
        {"axis": "Signal", "value": 0.0, "value_exact": "0", "threats": ["A3"]},
        {"axis": "Noise", "value": 0.5, "value_exact": "1/2", "threats": ["A1"]},
        {"axis": "Bandwidth", "value": 0.5, "value_exact": "1/2", "threats": ["B1", "B2"]},
    ]
    everything = minimax_report(mini, Fraction(4))  # with the uncoverable A2, A4 the attacker always wins 1
    assert everything["value"] == 1 and everything["best_response"] == ["A2", "A4"]


def test_inferred_links_count_only_when_asked(mini):
    rep = minimax_report(mini, Fraction(5), include_inferred=True, coverable_only=True)
    assert rep["uncoverable"] == ["A4"] and rep["value"] == 0.5
    used = {c["kind"] for t in rep["threats"] for c in t["covered_by"]}
    assert "inferred" in used
    assert sum(d["inferred_links_used"] for d in rep["portfolio"]) > 0


@pytest.mark.parametrize("text", ["abc", "-1", "nan", "inf", "1e400", "", "1/0"])
def test_bad_budget_names_the_parameter(text):
    with pytest.raises(BadRequest, match=r"^budget: "):
        number("budget", text)


@pytest.mark.parametrize("budget", [0, 3, 8, 20])
def test_full_ontology_solves_quickly(store, budget):
    start = time.perf_counter()
    rep = minimax_report(store, Fraction(budget), "evidence", include_inferred=True, coverable_only=True)
    assert rep["status"] == "optimal" and rep["cost"] <= budget
    assert time.perf_counter() - start < 20
    if budget == 0:
        assert rep["portfolio"] == []


def test_cli_minimax(runner):
    from mfmkg.cli import main

    res = runner.invoke(main, ["analyze", "minimax", "--memory", "--budget", "4", "--coverable-only"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("budget 4: game value ") and "attacker's best response:" in res.output
    res = runner.invoke(main, ["analyze", "minimax", "--memory", "--budget", "lots"])
    assert res.exit_code == 1 and "budget: must be a number >= 0, got 'lots'" in res.output
