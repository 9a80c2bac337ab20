"""Figures: coverage heatmaps, the deployment flow network with its min cut, and Defense Coverage Index bars.

Each figure is a function of the store (``heatmap_figure``, ``flow_figure``, ``dci_figure``) returning a
matplotlib ``Figure``; ``render`` turns one into SVG or PNG bytes and ``heatmap_svg`` / ``flow_svg`` / ``dci_svg``
return SVG text for the web pages to inline. Only the object-oriented API and the Agg canvas are used (no pyplot,
no global backend), and rendering holds a lock, so figures can be drawn from the service's worker threads.

Colours are colour-blind safe: the cividis map for shares, the Okabe-Ito palette for categories. SVG keeps text
as ``<text>`` (searchable, accessible, styleable) and carries no date, so the same graph gives the same SVG.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import matplotlib
import networkx as nx
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from mfmkg.exports.common import local, rows
from mfmkg.named_queries import get_query, run_named
from mfmkg.store.base import Store

#: Okabe-Ito palette (Wong, Nature Methods 2011): distinguishable with the common colour-vision deficiencies.
OKABE_ITO = {"orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000", "grey": "#999999"}
HEATMAPS = {
    "modality-family": ("coverage-modality-family", "modality", "family"),
    "flow-axis": ("coverage-flow-axis", "flow", "axis"),
}
FORMATS = ("svg", "png")
_RC = {"svg.fonttype": "none", "svg.hashsalt": "mfmkg", "font.size": 10, "font.family": "DejaVu Sans",
       "axes.titlesize": 12, "axes.titleweight": "bold"}
_LOCK = threading.RLock()
_MODALITY_ORDER = ("Text", "Image", "Audio", "Video")
_AXIS_ORDER = ("Signal", "Noise", "Bandwidth")


# -- rendering ---------------------------------------------------------------------------------------------

def render(fig: Figure, fmt: str = "svg") -> bytes:
    """The figure as SVG or PNG bytes (no timestamps, text kept as text in SVG)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    buf = io.BytesIO()
    with _LOCK, matplotlib.rc_context(_RC):
        FigureCanvasAgg(fig)
        meta = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(buf, format=fmt, metadata=meta, dpi=150 if fmt == "png" else 72, bbox_inches="tight")
    return buf.getvalue()


def save(fig: Figure, path: str | Path) -> Path:
    """Write the figure to ``path``; the format is the suffix (.svg or .png)."""
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"{p}: the file name must end in .svg or .png")
    p.write_bytes(render(fig, fmt))
    return p


def _locked(fn):
    """Build figures one at a time: rc_context changes matplotlib's global settings while it is active."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _LOCK:
            return fn(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height), layout="constrained")


# -- coverage heatmaps -------------------------------------------------------------------------------------

def heatmap_data(store: Store, kind: str = "modality-family", inferred: bool = False) -> dict:
    """Rows, columns and per-cell (covered, threats) counts, from the named coverage matrix queries."""
    if kind not in HEATMAPS:
        raise ValueError(f"heatmap kind must be one of {tuple(HEATMAPS)}, not {kind!r}")
    query, row_var, col_var = HEATMAPS[kind]
    result = run_named(store, get_query(query), {"inferred": "true" if inferred else "false"}).values()
    row_labels, col_labels, cells = {}, {}, {}
    for r in result:
        row_labels[r[row_var]] = _row_label(kind, r)
        col_labels[r[col_var]] = _col_label(kind, r)
        cells[(r[row_var], r[col_var])] = (int(r["covered"] or 0), int(r["threats"] or 0))
    order = _family_order(store) if kind == "modality-family" else {}
    for k, flow_id in order.items():
        if k in col_labels:
            col_labels[k] += f" ({flow_id})"
    rows_ = sorted(row_labels, key=lambda k: _rank(kind, "row", k, row_labels[k], order))
    cols = sorted(col_labels, key=lambda k: _rank(kind, "col", k, col_labels[k], order))
    return {"kind": kind, "rows": [(k, row_labels[k]) for k in rows_], "cols": [(k, col_labels[k]) for k in cols],
            "cells": cells, "inferred": inferred}


def _row_label(kind: str, r: dict) -> str:
    if kind == "modality-family":
        return (r.get("modalityLabel") or local(r["modality"])).capitalize()
    return f"{r.get('flowId') or ''} {r.get('flowLabel') or local(r['flow'])}".strip()


def _col_label(kind: str, r: dict) -> str:
    if kind == "modality-family":
        return (r.get("familyLabel") or local(r["family"])).replace(" threat", "\nthreat")
    return (r.get("axisLabel") or local(r["axis"])).capitalize()


def _family_order(store: Store) -> dict[str, str]:
    found = rows(store, "SELECT ?f ?id WHERE { ?f rdfs:subClassOf mfm:Threat ; mfm:onFlow/mfm:flowId ?id }")
    return {r["f"]: r["id"] for r in found}


def _rank(kind: str, which: str, key: str, label: str, family_flow: dict) -> tuple:
    name = local(key)
    if kind == "modality-family":
        if which == "row":
            return (_MODALITY_ORDER.index(name) if name in _MODALITY_ORDER else 99, label)
        return (family_flow.get(key, "F9"), label)
    if which == "col":
        return (_AXIS_ORDER.index(name) if name in _AXIS_ORDER else 99, label)
    return (label, "")


@_locked
def heatmap_figure(store: Store, kind: str = "modality-family", inferred: bool = False) -> Figure:
    """Share of threat classes covered per cell (cividis), each cell annotated "covered / total" and uncovered."""
    data = heatmap_data(store, kind, inferred)
    rows_, cols = data["rows"], data["cols"]
    import numpy as np

    share = np.full((len(rows_), len(cols)), np.nan)
    for i, (rk, _) in enumerate(rows_):
        for j, (ck, _) in enumerate(cols):
            covered, total = data["cells"].get((rk, ck), (0, 0))
            if total:
                share[i, j] = covered / total
    fig = _figure(1.7 * len(cols) + 2.6, 0.9 * len(rows_) + 2.2)
    with matplotlib.rc_context(_RC):
        ax = fig.add_subplot()
        cmap = matplotlib.colormaps["cividis"].with_extremes(bad="#EEEEEE")
        im = ax.imshow(np.ma.masked_invalid(share), cmap=cmap, vmin=0, vmax=1, aspect="auto")
        for i, (rk, _) in enumerate(rows_):
            for j, (ck, _) in enumerate(cols):
                covered, total = data["cells"].get((rk, ck), (0, 0))
                if not total:
                    ax.text(j, i, "no threats", ha="center", va="center", color="#555555", fontsize=8)
                    continue
                dark = share[i, j] < 0.55
                ax.text(j, i, f"{covered} / {total} covered\n{total - covered} uncovered", ha="center",
                        va="center", color="white" if dark else "black", fontsize=9)
        ax.set_xticks(range(len(cols)), [c[1] for c in cols])
        ax.set_yticks(range(len(rows_)), [r[1] for r in rows_])
        ax.tick_params(which="both", length=0)
        ax.set_xticks([x - 0.5 for x in range(1, len(cols))], minor=True)
        ax.set_yticks([y - 0.5 for y in range(1, len(rows_))], minor=True)
        ax.grid(which="minor", color="white", linewidth=2)
        for side in ax.spines.values():
            side.set_visible(False)
        if kind == "modality-family":
            ax.set_xlabel("threat family")
            ax.set_ylabel("manipulated modality")
            title = "Coverage of threat classes by modality and threat family"
        else:
            ax.set_xlabel("channel axis")
            ax.set_ylabel("information flow")
            title = "Coverage of threat classes by information flow and channel axis"
        ax.set_title(title + ("\n(asserted and inferred coverage)" if inferred else "\n(asserted coverage)"))
        bar = fig.colorbar(im, ax=ax, shrink=0.8)
        bar.set_label("share of threat classes with at least one defense")
    return fig


def heatmap_svg(store: Store, kind: str = "modality-family", inferred: bool = False) -> str:
    return render(heatmap_figure(store, kind, inferred), "svg").decode("utf-8")


# -- flow network with min cut -----------------------------------------------------------------------------

ATTACKER = "attacker"


def example_deployment():
    """The deployment shipped with the analysis package (``mfmkg/analysis/examples/multimodal-agent.yaml``)."""
    from importlib.resources import files

    from mfmkg.analysis.deployment import load_deployment

    path = files("mfmkg.analysis") / "examples" / "multimodal-agent.yaml"
    return load_deployment(path.read_bytes(), where=str(path))


def deployment_graph(dep, deployed: bool = False) -> tuple[nx.DiGraph, list[tuple[str, str]], float]:
    """A deployment (``mfmkg.analysis.deployment``) as a networkx graph for drawing, with the minimum cut and the
    maximum flow as ``mfmkg.analysis.flow`` computes them (without defenses, or with all of them when
    ``deployed``). The attacker is a node feeding every untrusted source; removed edges are left out."""
    from mfmkg.analysis.flow import capacities, max_flow

    caps = capacities(dep, {d.id for d in dep.defenses} if deployed else set())
    result = max_flow(dep, caps)
    g = nx.DiGraph(name=dep.name or "deployment")
    g.add_node(ATTACKER, role="attacker")
    for n in dep.nodes.values():
        role = "sink" if n.id == dep.sink else ("untrusted" if n.source and not n.trusted else
                                                  "trusted" if n.source else "component")
        g.add_node(n.id, role=role)
    for s in dep.untrusted:
        g.add_edge(ATTACKER, s)
    for e in dep.edges:
        if caps[e.id] <= 0:
            continue
        if g.has_edge(e.src, e.dst):  # parallel edges are drawn as one, their capacities added
            g.edges[e.src, e.dst]["capacity"] += float(caps[e.id])
        else:
            g.add_edge(e.src, e.dst, capacity=float(caps[e.id]), id=e.id)
    to_sink = nx.single_source_shortest_path_length(g.reverse(copy=False), dep.sink)
    components = [n for n, r in g.nodes(data="role") if r in ("component", "sink")]
    far = max((to_sink.get(n, 0) for n in components), default=0)
    for n, r in g.nodes(data="role"):
        g.nodes[n]["layer"] = {"attacker": 0, "untrusted": 1, "trusted": 1}.get(r, 2 + far - to_sink.get(n, far))
    cut = sorted({(dep.edge(i).src, dep.edge(i).dst) for i in result.cut})
    return g, cut, result.value


@_locked
def flow_figure(store: Store | None = None, graph: nx.DiGraph | None = None, source: str | None = None,
                sink: str | None = None, capacity: str = "capacity", deployment=None,
                deployed: bool = False) -> Figure:
    """The flow network, laid out towards the sink on the right, with the minimum cut drawn thick, dashed and
    vermillion, and the maximum flow in the title.

    With ``graph`` (any networkx DiGraph whose edges carry ``capacity``; edges without one are unbounded; nodes
    may carry an integer ``layer``) the cut is computed here between ``source`` and ``sink``. Otherwise
    ``deployment`` (a ``mfmkg.analysis.deployment.Deployment``; default: the shipped example) is analysed by
    ``mfmkg.analysis.flow``, undefended or, with ``deployed``, with all its defenses in force. ``store`` is not
    needed by either; it is accepted so that every figure function has the same first argument.
    """
    if graph is not None:
        if source is None or sink is None:
            raise ValueError("give the source and sink nodes of the graph")
        value, (reach, _) = nx.minimum_cut(graph, source, sink, capacity=capacity)
        cut = sorted((u, v) for u, v in graph.edges if u in reach and v not in reach)
        title = f"Attack capacity from {source} to {sink}"
        note = "edge labels: capacity"
    else:
        dep = deployment if deployment is not None else example_deployment()
        graph, cut, value = deployment_graph(dep, deployed)
        source, sink, capacity = ATTACKER, dep.sink, "capacity"
        applied = ", ".join(d.id for d in dep.defenses) if deployed and dep.defenses else None
        title = f"Attack capacity of {dep.name or 'the deployment'}" + (
            f" with defenses {applied}" if applied else " without defenses")
        note = "edge labels: bandwidth in bits per interaction; the attacker controls every untrusted source"
    fig = _draw_flow(graph, source, sink, cut, capacity,
                     f"{title}: max flow = min cut = {_num(value)} bits/interaction\n{note}")
    fig.mfmkg_cut = cut  # type: ignore[attr-defined]  (for callers and tests)
    fig.mfmkg_max_flow = value  # type: ignore[attr-defined]
    return fig


def _num(v: float) -> str:
    if v >= 1e6 and v % 1e5 == 0:
        return f"{v / 1e6:g}M"
    if v >= 1e4 and v % 100 == 0:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def _draw_flow(graph: nx.DiGraph, source, sink, cut: list, capacity: str, title: str) -> Figure:
    cut_set = set(cut)
    after_cut = nx.DiGraph(graph)
    after_cut.remove_edges_from(cut)
    reach = nx.descendants(after_cut, source) | {source}
    pos = layered_layout(graph, sink)
    layers = {n: x for n, (x, _) in pos.items()}
    width = max(len(set(layers.values())), 4)
    height = max(y for _, y in pos.values()) * 2 + 1
    fig = _figure(2.1 * width + 1, 1.15 * height + 2.2)
    size = 2300
    with matplotlib.rc_context(_RC):
        ax = fig.add_subplot()
        forward = [(u, v) for u, v in graph.edges if layers[v] > layers[u]]
        backward = [(u, v) for u, v in graph.edges if layers[v] <= layers[u]]
        for edges, style in ((forward, "arc3"), (backward, "arc3,rad=0.35")):
            normal = [e for e in edges if e not in cut_set]
            hot = [e for e in edges if e in cut_set]
            nx.draw_networkx_edges(graph, pos, ax=ax, edgelist=normal, edge_color=OKABE_ITO["grey"], width=1.2,
                                   arrows=True, arrowsize=12, node_size=size, connectionstyle=style)
            nx.draw_networkx_edges(graph, pos, ax=ax, edgelist=hot, edge_color=OKABE_ITO["vermillion"], width=3.5,
                                   style="dashed", arrows=True, arrowsize=16, node_size=size, connectionstyle=style)
            labels = {(u, v): _num(graph.edges[u, v][capacity]) for u, v in edges if capacity in graph.edges[u, v]}
            nx.draw_networkx_edge_labels(graph, pos, ax=ax, edge_labels=labels, font_size=7, label_pos=0.5,
                                         connectionstyle=style, node_size=size,
                                         bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"})
        role = nx.get_node_attributes(graph, "role")

        def colour(n):
            if n == source or role.get(n) in ("attacker", "untrusted"):
                return OKABE_ITO["orange"]
            if n == sink:
                return OKABE_ITO["blue"]
            if role.get(n) == "trusted":
                return "#FFFFFF"
            return OKABE_ITO["sky"] if n in reach else "#DDDDDD"

        nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=[colour(n) for n in graph.nodes], node_size=size,
                               edgecolors="black", linewidths=0.8)
        for n in graph.nodes:
            text = str(n).replace("_", " ")
            text = text.replace(" ", "\n", 1) if len(text) > 8 else text
            ax.text(*pos[n], text, ha="center", va="center", fontsize=8, color="white" if n == sink else "black")
        ax.set_axis_off()
        ax.margins(0.06)
        ax.set_title(title, fontsize=11)
        handles = [Patch(facecolor=OKABE_ITO["orange"], edgecolor="black", label="attacker and untrusted sources"),
                   Patch(facecolor=OKABE_ITO["sky"], edgecolor="black",
                         label="reached by the attacker before the cut"),
                   Patch(facecolor="#DDDDDD", edgecolor="black", label="beyond the cut, or out of reach"),
                   Patch(facecolor=OKABE_ITO["blue"], edgecolor="black", label="sensitive sink"),
                   Patch(facecolor=OKABE_ITO["vermillion"],
                         label=f"min-cut channels ({len(cut)}): cheapest to constrain")]
        if "trusted" in role.values():
            handles.insert(3, Patch(facecolor="#FFFFFF", edgecolor="black", label="trusted source"))
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, frameon=False)
    return fig


def layered_layout(graph: nx.DiGraph, sink) -> dict:
    """Left-to-right positions ending at ``sink``. x is the node's ``layer`` attribute when every node has one,
    else the longest hop distance to the sink counted backwards (so feedback loops such as model -> tool ->
    encoder -> model do not stretch the picture); within a layer, nodes are ordered by the mean height of their
    predecessors, which keeps crossings few."""
    if all("layer" in d for _, d in graph.nodes(data=True)):
        layer = {n: int(d["layer"]) for n, d in graph.nodes(data=True)}
    else:
        to_sink = nx.single_source_shortest_path_length(graph.reverse(copy=False), sink)
        far = max(to_sink.values(), default=0)
        layer = {n: far - to_sink[n] if n in to_sink else 0 for n in graph.nodes}
        for n in graph.nodes:  # a node with no predecessor (the attacker) goes left of everything it feeds
            if graph.in_degree(n) == 0 and graph.out_degree(n):
                layer[n] = min(layer[m] for m in graph.successors(n)) - 1
    return _ordered_positions(graph, layer)


def _ordered_positions(graph: nx.DiGraph, layer: dict) -> dict:
    """Positions for given layers (Sugiyama style): an edge spanning several layers gets a placeholder in each
    layer it crosses, so that no node sits on it; within each layer nodes are ordered by the barycentre of their
    neighbours in the layer before (forward sweep), then after (backward sweep), then before again."""
    aug = nx.DiGraph()
    aug.add_nodes_from(graph.nodes)
    lay = dict(layer)
    for u, v in graph.edges:
        if lay[v] - lay[u] > 1:
            prev = u
            for x in range(lay[u] + 1, lay[v]):
                dummy = ("placeholder", u, v, x)
                lay[dummy] = x
                aug.add_edge(prev, dummy)
                prev = dummy
            aug.add_edge(prev, v)
        else:
            aug.add_edge(u, v)
    xs = sorted(set(lay.values()))
    rank = {n: i for i, n in enumerate(aug.nodes)}
    members = {x: sorted((n for n in aug.nodes if lay[n] == x), key=rank.get) for x in xs}

    def place():
        out = {}
        for x in xs:
            top = (len(members[x]) - 1) / 2
            for i, n in enumerate(members[x]):
                out[n] = (float(x), top - i)
        return out

    def sweep(order, neighbours):
        pos = place()
        for x in order:
            def key(n):
                ys = [pos[m][1] for m in neighbours(n) if lay[m] != x]
                return (-(sum(ys) / len(ys)) if ys else -pos[n][1], rank[n])
            members[x].sort(key=key)
            pos = place()

    sweep(xs[1:], aug.predecessors)
    sweep(xs[-2::-1], aug.successors)
    sweep(xs[1:], aug.predecessors)
    pos = place()
    return {n: pos[n] for n in graph.nodes}


def flow_svg(store: Store | None = None, graph: nx.DiGraph | None = None, source: str | None = None,
             sink: str | None = None, deployment=None, deployed: bool = False) -> str:
    return render(flow_figure(store, graph, source, sink, deployment=deployment, deployed=deployed),
                  "svg").decode("utf-8")


# -- Defense Coverage Index bars ---------------------------------------------------------------------------

def dci_values(store: Store, inferred: bool = False) -> list[dict]:
    """DCI per deployable defense class, highest first: ``{"defense", "label", "level", "dci"}``, as
    ``mfmkg.analysis`` computes it (uniform weights w_t = 1 over the goal-level threat classes)."""
    from mfmkg.analysis.api import dci_report

    rep = dci_report(store, "uniform", inferred)
    levels = {r["d"]: local(r["level"]) for r in rows(store, """SELECT ?d ?level WHERE {
        ?d rdfs:subClassOf+ mfm:Defense ; mfm:level ?level }""")}
    return [{"defense": r["iri"], "label": r["label"], "level": levels.get(r["iri"], ""), "dci": r["dci"] or 0.0}
            for r in rep["defenses"]]


@_locked
def dci_figure(store: Store, inferred: bool = False) -> Figure:
    """Horizontal bars of DCI per defense class, coloured by level (Okabe-Ito blue / vermillion)."""
    data = dci_values(store, inferred)
    colour = {"ModelLevel": OKABE_ITO["blue"], "SystemLevel": OKABE_ITO["vermillion"]}
    fig = _figure(9, 0.38 * len(data) + 1.8)
    with matplotlib.rc_context(_RC):
        ax = fig.add_subplot()
        labels = [d["label"] for d in data][::-1]
        values = [d["dci"] for d in data][::-1]
        hatches = ["" if d["level"] == "ModelLevel" else "//" for d in data][::-1]
        bars = ax.barh(labels, values, color=[colour.get(d["level"], OKABE_ITO["grey"]) for d in data][::-1],
                       hatch=hatches, edgecolor="white")
        top = max([0.1, *values]) * 1.15
        for bar, v in zip(bars, values):
            ax.text(bar.get_width() + top * 0.01, bar.get_y() + bar.get_height() / 2, f"{v:.2f}", va="center",
                    fontsize=9, fontfamily="DejaVu Sans")
        ax.set_xlim(0, top)
        ax.set_xlabel("Defense Coverage Index (mean coverage over the goal-level threat classes, w = 1)")
        ax.set_title("Defense Coverage Index per defense class" + (" (incl. inferred links)" if inferred else ""))
        ax.legend(handles=[Patch(facecolor=colour["ModelLevel"], label="model-level defense"),
                           Patch(facecolor=colour["SystemLevel"], hatch="//", edgecolor="white",
                                 label="system-level defense")], loc="lower right")
        ax.spines[["top", "right"]].set_visible(False)
    return fig


def dci_svg(store: Store, inferred: bool = False) -> str:
    return render(dci_figure(store, inferred), "svg").decode("utf-8")
