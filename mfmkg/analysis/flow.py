"""Attack capacity of a deployment: max-flow from the untrusted sources to the sensitive sink, the min cut (the
channels to constrain), and what each defense changes (docs/analysis.md).

Each edge becomes two arcs through a node of its own (u -> edge -> v, the first with the edge's bandwidth, the
second unbounded), so parallel edges stay distinct and a cut arc is exactly one edge of the deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import networkx as nx

from .deployment import Deployment

SUPER = ("super-source",)


@dataclass
class FlowResult:
    value: float
    cut: list[str]  # edge ids, in deployment order
    flows: dict[str, float]  # edge id -> flow in one maximum flow
    capacities: dict[str, Fraction]

    def as_dict(self) -> dict:
        return {"max_flow": self.value, "min_cut": self.cut,
                "min_cut_capacity": float(sum((self.capacities[e] for e in self.cut), Fraction(0)))}


def capacities(dep: Deployment, applied) -> dict[str, Fraction]:
    """Bandwidth per edge with the defenses named in ``applied`` in force (factors multiply; 0 removes)."""
    caps = {e.id: e.bandwidth for e in dep.edges}
    for d in dep.defenses:
        if d.id in applied:
            for edge_id, f in d.factors.items():
                caps[edge_id] *= f
    return caps


def max_flow(dep: Deployment, caps: dict[str, Fraction]) -> FlowResult:
    """The maximum flow from a super-source over every untrusted source to the sink, and the minimum cut found
    on the source side (the edges leaving the nodes still reachable in the residual network)."""
    g = nx.DiGraph()
    g.add_node(SUPER)
    g.add_nodes_from(("node", n) for n in dep.nodes)
    for s in dep.untrusted:
        g.add_edge(SUPER, ("node", s))  # no capacity attribute: unbounded
    for e in dep.edges:
        if caps[e.id] > 0:
            g.add_edge(("node", e.src), ("edge", e.id), capacity=float(caps[e.id]))
            g.add_edge(("edge", e.id), ("node", e.dst))
    sink = ("node", dep.sink)
    value, flow = nx.maximum_flow(g, SUPER, sink)
    _, (reach, _) = nx.minimum_cut(g, SUPER, sink)
    cut = [e.id for e in dep.edges if caps[e.id] > 0 and ("node", e.src) in reach and ("edge", e.id) not in reach]
    flows = {e.id: float(flow.get(("node", e.src), {}).get(("edge", e.id), 0.0)) for e in dep.edges}
    return FlowResult(float(value), cut, flows, caps)


def analyse(dep: Deployment) -> dict:
    """Max-flow and min cut without defenses, with all of them, and per defense: alone (flow before/after, cut
    change) and left out of the full set (its marginal effect). Per-edge bandwidths and flows."""
    base = max_flow(dep, capacities(dep, set()))
    every = {d.id for d in dep.defenses}
    deployed = max_flow(dep, capacities(dep, every))
    effects = []
    for d in dep.defenses:
        alone = max_flow(dep, capacities(dep, {d.id}))
        without = max_flow(dep, capacities(dep, every - {d.id}))
        effects.append({
            "defense": d.id, "label": d.label, "class": d.cls, "constrains": sorted(d.factors),
            "flow_before": base.value, "flow_after": alone.value, "reduction": base.value - alone.value,
            "cut_before": base.cut, "cut_after": alone.cut, "cut_changed": base.cut != alone.cut,
            "flow_without_it": without.value, "marginal": without.value - deployed.value,
        })
    edges = [{"id": e.id, "from": e.src, "to": e.dst, "bandwidth": float(e.bandwidth),
              "deployed_bandwidth": float(deployed.capacities[e.id]), "flow_undefended": base.flows[e.id],
              "flow_deployed": deployed.flows[e.id], "in_cut_undefended": e.id in base.cut,
              "in_cut_deployed": e.id in deployed.cut} for e in dep.edges]
    return {"name": dep.name, "sink": dep.sink, "untrusted_sources": dep.untrusted,
            "undefended": base.as_dict(), "deployed": deployed.as_dict(), "defenses": effects, "edges": edges}
