"""The Defense Coverage Index on the miniature ontology, computed by hand (docs/analysis.md, "DCI"), and the
``mfmkg analyze dci`` command in its three formats."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from mfmkg.analysis.api import dci_report, dci_rows
from mfmkg.errors import BadRequest
from mfmkg.namespaces import ONTOLOGY_GRAPH, source_graph

DATA = Path(__file__).resolve().parent / "data" / "analysis"


@pytest.fixture
def mini():
    from mfmkg.store.embedded import EmbeddedStore

    s = EmbeddedStore(None)
    s.load((DATA / "mini.ttl").read_text(), "text/turtle", ONTOLOGY_GRAPH)
    s.load((DATA / "literature.ttl").read_text(), "text/turtle", source_graph("test"))
    yield s
    s.close()


def by_id(rep: dict) -> dict[str, dict]:
    return {r["id"]: r for r in rep["defenses"]}


# Hand computation: T = {A1, A2, A3, A4, B1, B2}; c(Purifier, A1) = .5, c(Filter, A3) = 1, c(Guard, B1) = c(Guard, B2)
# = .5 (inherited from FamB), c(Sandbox, B1) = 1. Inferred: (Purifier, A2), (Sandbox, B2), (Monitor, B1), (Monitor, B2).
# Evidence: w = A1 4 (2 attacks + p1, p2), A2 2, A3 1 (p5 by mfm:about), A4 0, B1 2 (p3 once), B2 3; sum 12.
@pytest.mark.parametrize("weights, inferred, expected, portfolio", [
    ("uniform", False, {"Purifier": 1 / 12, "Filter": 1 / 6, "Guard": 1 / 6, "Sandbox": 1 / 6, "Monitor": 0}, 0.25),
    ("uniform", True, {"Purifier": 1 / 6, "Filter": 1 / 6, "Guard": 1 / 6, "Sandbox": 1 / 4, "Monitor": 1 / 6}, 0.25),
    ("evidence", False, {"Purifier": 2 / 12, "Filter": 1 / 12, "Guard": 2.5 / 12, "Sandbox": 2 / 12, "Monitor": 0},
     3.5 / 12),
    ("evidence", True, {"Purifier": 3 / 12, "Filter": 1 / 12, "Guard": 2.5 / 12, "Sandbox": 3.5 / 12,
                        "Monitor": 2.5 / 12}, 3.5 / 12),
])
def test_dci_hand_computed(mini, weights, inferred, expected, portfolio):
    rep = dci_report(mini, weights, inferred, "Guard,Sandbox")
    got = {k: r["dci"] for k, r in by_id(rep).items()}
    assert got == pytest.approx(expected)
    assert rep["portfolio"]["dci"] == pytest.approx(portfolio)  # B1: max(.5, 1) = 1, B2: .5
    assert rep["total_weight"] == (6 if weights == "uniform" else 12)
    ordered = [r["dci"] for r in rep["defenses"]]
    assert ordered == sorted(ordered, reverse=True)


def test_evidence_weights_count_attacks_and_distinct_papers(mini):
    rep = dci_report(mini, "evidence", False)
    assert rep["threat_weights"] == {"A1": 4, "A2": 2, "A3": 1, "A4": 0, "B1": 2, "B2": 3}


def test_breakdowns_by_axis_flow_and_modality(mini):
    rows = by_id(dci_report(mini, "uniform", False))
    assert rows["Purifier"]["by_axis"] == pytest.approx({"Signal": 0, "Noise": 1 / 6, "Bandwidth": 0})
    assert rows["Purifier"]["by_flow"] == pytest.approx({"F1": 1 / 8, "F4": 0})
    assert rows["Purifier"]["by_modality"] == pytest.approx({"Text": 0, "Image": 1 / 6, "Audio": 0})
    assert rows["Guard"]["by_axis"]["Bandwidth"] == pytest.approx(0.5)
    assert rows["Guard"]["by_modality"]["Text"] == pytest.approx(1 / 3)  # A2, B1, B2
    assert (rows["Sandbox"]["covered"], rows["Sandbox"]["full"], rows["Sandbox"]["partial"]) == (1, 1, 0)


def test_flat_rows_have_one_column_per_group(mini):
    rep = dci_report(mini, "uniform", True, "Purifier")
    cols, rows = dci_rows(rep)
    assert cols == ["id", "cost", "dci", "covered", "full", "partial", "inferred", "axis:Signal", "axis:Noise",
                    "axis:Bandwidth", "flow:F1", "flow:F4", "modality:Text", "modality:Image", "modality:Audio"]
    assert rows[-1]["id"] == "portfolio(Purifier)" and rows[-1]["inferred"] == 1


@pytest.mark.parametrize("portfolio, message", [
    ("Guard,Nope", r"^portfolio: unknown defense 'Nope'"),
    ("Guard,,Sandbox", r"^portfolio: empty name"),
    ("ModelDef", r"^portfolio: unknown defense 'ModelDef'"),  # a grouping class is not deployable
])
def test_bad_portfolio_names_the_parameter(mini, portfolio, message):
    with pytest.raises(BadRequest, match=message):
        dci_report(mini, "uniform", False, portfolio)


def test_shipped_ontology_dci_is_bounded_and_portfolio_dominates(store):
    rep = dci_report(store, "evidence", True, "CircuitBreaker,PoisoningDetection")
    rows = by_id(rep)
    assert rep["threats"] >= 25 and all(0 <= r["dci"] <= 1 for r in rows.values())
    assert rep["portfolio"]["dci"] >= max(rows["CircuitBreaker"]["dci"], rows["PoisoningDetection"]["dci"])


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_cli_dci_formats(runner, fmt):
    from mfmkg.cli import main

    res = runner.invoke(main, ["analyze", "dci", "--memory", "--portfolio", "CircuitBreaker,JpegCompression",
                               "--format", fmt])
    assert res.exit_code == 0, res.output
    if fmt == "json":
        data = json.loads(res.output)
        assert data["portfolio"]["defenses"] == ["CircuitBreaker", "JpegCompression"]
        breaker = next(r for r in data["defenses"] if r["id"] == "CircuitBreaker")
        assert breaker["by_flow"]["F4"] == pytest.approx(0.5)  # every F4 threat inherits its partial family link
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(res.output)))
        assert rows[-1]["id"] == "portfolio(CircuitBreaker+JpegCompression)"
        assert {"axis:Signal", "flow:F6", "modality:Audio"} <= set(rows[0])
    else:
        assert res.output.startswith("DCI over ") and "CircuitBreaker" in res.output


def test_cli_dci_bad_portfolio_exits_with_the_message(runner):
    from mfmkg.cli import main

    res = runner.invoke(main, ["analyze", "dci", "--memory", "--portfolio", "Nope"])
    assert res.exit_code == 1 and "portfolio: unknown defense 'Nope'" in res.output
