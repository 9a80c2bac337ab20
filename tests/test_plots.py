"""Figures: valid SVG (parsed as XML, labels kept as text) and PNG, the right numbers behind them, and the CLI."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import networkx as nx
import pytest

from conftest import REPO

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"
TINY = REPO / "tests" / "data" / "crosswalk" / "tiny.ttl"


@pytest.fixture(scope="module")
def shipped():
    from mfmkg.onto import ensure_loaded, ontology_files
    from mfmkg.store.embedded import EmbeddedStore

    s = EmbeddedStore(None)
    ensure_loaded(s, ontology_files())
    yield s
    s.close()


def svg_texts(svg: str) -> str:
    """All text of an SVG document, after checking that it parses as XML with an <svg> root."""
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == SVG_NS + "svg"
    return " ".join(t for el in root.iter() for t in [el.text or ""] if t.strip())


@pytest.mark.parametrize("kind, labels", [
    ("modality-family", ["Text", "Image", "Audio", "misleading", "agent memory", "(F6)", "manipulated modality",
                         "Coverage of threat classes by modality and threat family", "covered"]),
    ("flow-axis", ["F1 prediction flow", "F6 agent memory flow", "Signal", "Noise", "Bandwidth", "channel axis",
                   "Coverage of threat classes by information flow and channel axis"]),
])
def test_heatmap_svg(shipped, kind, labels):
    from mfmkg.exports.plots import heatmap_svg

    text = svg_texts(heatmap_svg(shipped, kind))
    for label in labels:
        assert label in text, label


def test_heatmap_cells_are_the_coverage_query(shipped):
    """The flow x axis cells agree with the coverage-flow-axis named query, and every cell adds up."""
    from mfmkg.exports.plots import heatmap_data
    from mfmkg.named_queries import get_query, run_named

    data = heatmap_data(shipped, "flow-axis")
    rows = run_named(shipped, get_query("coverage-flow-axis"), {}).values()
    assert len(data["cells"]) == len(rows) == 18
    for r in rows:
        assert data["cells"][(r["flow"], r["axis"])] == (r["covered"], r["threats"])
    assert [label for _, label in data["rows"]][0].startswith("F1")
    assert [label for _, label in data["cols"]] == ["Signal", "Noise", "Bandwidth"]


@pytest.mark.parametrize("fmt", ["svg", "png"])
@pytest.mark.parametrize("figure", ["heatmap", "flow", "dci"])
def test_formats(shipped, figure, fmt):
    from mfmkg.exports import plots

    fig = {"heatmap": lambda: plots.heatmap_figure(shipped, "flow-axis"), "flow": lambda: plots.flow_figure(shipped),
           "dci": lambda: plots.dci_figure(shipped)}[figure]()
    data = plots.render(fig, fmt)
    if fmt == "png":
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    else:
        svg_texts(data.decode("utf-8"))


def test_svg_is_deterministic(shipped):
    from mfmkg.exports.plots import dci_svg

    assert dci_svg(shipped) == dci_svg(shipped)


@pytest.mark.parametrize("deployed", [False, True])
def test_flow_deployment_cut_is_the_analysis_cut(shipped, deployed):
    """The figure highlights exactly the min cut mfmkg.analysis.flow finds for the shipped example deployment."""
    from mfmkg.analysis.flow import capacities, max_flow
    from mfmkg.exports.plots import example_deployment, flow_figure, render

    dep = example_deployment()
    result = max_flow(dep, capacities(dep, {d.id for d in dep.defenses} if deployed else set()))
    fig = flow_figure(shipped, deployed=deployed)
    assert fig.mfmkg_max_flow == result.value
    assert fig.mfmkg_cut == sorted((dep.edge(i).src, dep.edge(i).dst) for i in result.cut)
    text = svg_texts(render(fig, "svg").decode())
    for label in ("max flow = min cut", "min-cut channels", "attacker", "privileged", "encoder",
                  "with defenses" if deployed else "without defenses"):
        assert label in text, label


@pytest.mark.parametrize("edges, cut, value", [
    ([("s", "a", 3), ("s", "b", 2), ("a", "t", 1), ("b", "t", 5)], [("a", "t"), ("s", "b")], 3),
    ([("s", "a", 10), ("a", "b", 1), ("b", "t", 10)], [("a", "b")], 1),
])
def test_flow_any_networkx_graph(edges, cut, value):
    from mfmkg.exports.plots import flow_figure, render

    g = nx.DiGraph()
    g.add_weighted_edges_from(edges, weight="capacity")
    fig = flow_figure(graph=g, source="s", sink="t")
    assert fig.mfmkg_cut == cut and fig.mfmkg_max_flow == value
    assert f"max flow = min cut = {value} bits/interaction" in svg_texts(render(fig, "svg").decode())


def test_dci_values_tiny():
    """tiny.ttl: DefX fully covers ThreatA1, DefY partially covers ThreatE; six goal-level classes."""
    from mfmkg.exports.plots import dci_svg, dci_values
    from mfmkg.store.embedded import EmbeddedStore

    s = EmbeddedStore(None)
    s.load(TINY.read_bytes(), "text/turtle", "https://w3id.org/mfmkg/graph/ontology")
    got = {d["label"]: d["dci"] for d in dci_values(s)}
    assert got == pytest.approx({"defense x": 1 / 6, "defense y": 0.5 / 6})
    assert pytest.approx(dci_values(s, inferred=True)[0]["dci"]) == (1 + 0.5) / 6  # + ThreatA2 via FamA
    assert [d["level"] for d in dci_values(s)] == ["ModelLevel", "SystemLevel"]
    text = svg_texts(dci_svg(s))
    assert "defense x" in text and "0.17" in text and "Defense Coverage Index per defense class" in text


def test_dci_values_are_the_analysis_report(shipped):
    from mfmkg.analysis.api import dci_report
    from mfmkg.exports.plots import dci_values

    report = {r["iri"]: r["dci"] for r in dci_report(shipped, "uniform", False)["defenses"]}
    assert {d["defense"]: d["dci"] for d in dci_values(shipped)} == report


def test_dci_shipped_names_every_defense(shipped):
    from mfmkg.exports.plots import dci_svg, dci_values

    values = dci_values(shipped)
    assert len(values) >= 15 and all(0 <= v["dci"] <= 1 for v in values)
    text = svg_texts(dci_svg(shipped))
    assert all(v["label"] in text for v in values)
    assert "model-level defense" in text and "system-level defense" in text


@pytest.mark.parametrize("args, suffix", [(["heatmap", "--by", "flow-axis"], "png"), (["heatmap"], "svg"),
                                          (["flow"], "svg"), (["flow", "--deployed"], "png"), (["dci"], "png")])
def test_cli_plot(runner, tmp_path, args, suffix):
    from mfmkg.cli import main

    out = tmp_path / f"figure.{suffix}"
    result = runner.invoke(main, ["plot", *args, "--memory", "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) if suffix == "png" else svg_texts(data.decode())


def test_cli_plot_rejects_other_formats(runner, tmp_path):
    from mfmkg.cli import main

    result = runner.invoke(main, ["plot", "dci", "--memory", "-o", str(tmp_path / "figure.pdf")])
    assert result.exit_code == 2 and "svg or .png" in result.output


def test_cli_plot_flow_of_a_deployment_file(runner, tmp_path):
    from mfmkg.cli import main

    dep = tmp_path / "dep.json"
    dep.write_text('{"name": "two-hop", "sink": "act", "sources": [{"id": "web", "kind": "web", "trusted": false}],'
                   ' "components": [{"id": "llm", "kind": "model"}, {"id": "act", "kind": "sink"}],'
                   ' "edges": [{"id": "in", "from": "web", "to": "llm", "bandwidth": 100},'
                   ' {"id": "out", "from": "llm", "to": "act", "bandwidth": 7}]}')
    out = tmp_path / "flow.svg"
    result = runner.invoke(main, ["plot", "flow", "--memory", "--deployment", str(dep), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "two-hop without defenses: max flow = min cut = 7 bits/interaction" in svg_texts(out.read_text())
    dep.write_text("{}")
    result = runner.invoke(main, ["plot", "flow", "--memory", "--deployment", str(dep), "-o", str(out)])
    assert result.exit_code == 1 and result.stderr.startswith("error:")
