"""The Defense Coverage Index: DCI(d) = sum_t w_t c(d, t) / sum_t w_t over the goal-level threat set T, for one
defense or a portfolio (c(D, t) = max over d in D), overall and broken down by axis, flow and modality."""

from __future__ import annotations

from fractions import Fraction

from mfmkg.namespaces import MFM

from .coverage import Coverage
from .model import INFERRED, evidence_counts, local

WEIGHTS = ("uniform", "evidence")
AXIS_ORDER = [str(MFM[n]) for n in ("Signal", "Noise", "Bandwidth")]
MODALITY_ORDER = [str(MFM[n]) for n in ("Text", "Image", "Audio", "Video")]


def threat_weights(store, cov: Coverage, scheme: str) -> dict[str, Fraction]:
    """w_t per goal-level threat: 1 (uniform) or attacks + papers (evidence; see model.evidence_counts)."""
    if scheme == "uniform":
        return {t: Fraction(1) for t in cov.kg.leaves}
    counts = evidence_counts(store)
    return {t: Fraction(sum(counts.get(t, (0, 0)))) for t in cov.kg.leaves}


def groups(cov: Coverage) -> list[tuple[str, str, list[str]]]:
    """(dimension, group name, threats) for every axis, flow and modality that some threat in T carries."""
    kg, out = cov.kg, []
    for dim, attr, order, name in (("axis", "axes", AXIS_ORDER, local), ("flow", "flows", None, kg.flow_label),
                                   ("modality", "modalities", MODALITY_ORDER, local)):
        members: dict[str, list[str]] = {}
        for t in kg.leaves:
            for v in kg.descriptor(t, attr):
                members.setdefault(v, []).append(t)
        rank = {v: i for i, v in enumerate(order or [])}
        for v in sorted(members, key=lambda v: (rank.get(v, len(rank)), name(v))):
            out.append((dim, name(v), members[v]))
    return out


def index(cov: Coverage, weights: dict[str, Fraction], defenses: list[str], threats: list[str]) -> Fraction | None:
    """DCI of ``defenses`` (max over them per threat) over ``threats``; None when the weights sum to 0."""
    total = sum((weights[t] for t in threats), Fraction(0))
    if total == 0:
        return None
    covered = sum((weights[t] * max((cov.c(d, t) for d in defenses), default=Fraction(0)) for t in threats),
                  Fraction(0))
    return covered / total


def entry(cov: Coverage, weights: dict[str, Fraction], defenses: list[str], dims) -> dict:
    """One row of the report: the overall DCI, the breakdowns, and how many threats are covered and how."""
    leaves = cov.kg.leaves
    best = {t: max((cov.covers(t)[d] for d in defenses if d in cov.covers(t)), key=lambda c: c.value, default=None)
            for t in leaves}
    row = {
        "dci": _f(index(cov, weights, defenses, leaves)),
        "covered": sum(1 for c in best.values() if c),
        "full": sum(1 for c in best.values() if c and c.value == 1),
        "partial": sum(1 for c in best.values() if c and 0 < c.value < 1),
        "inferred": sum(1 for c in best.values() if c and c.kind == INFERRED),
    }
    for dim, name, members in dims:
        row.setdefault(f"by_{dim}", {})[name] = _f(index(cov, weights, defenses, members))
    return row


def report(store, cov: Coverage, scheme: str, portfolio: list[str] | None = None) -> dict:
    """DCI of every deployable defense (highest first) and, when given, of a portfolio."""
    kg = cov.kg
    weights = threat_weights(store, cov, scheme)
    dims = groups(cov)
    rows = []
    for d in kg.candidates:
        info = kg.defenses[d]
        rows.append({"id": info.id, "iri": d, "label": info.label, "cost": float(kg.cost(d)),
                     **entry(cov, weights, [d], dims)})
    rows.sort(key=lambda r: (-(r["dci"] or 0), r["id"]))
    out = {
        "weights": scheme, "include_inferred": cov.include_inferred, "threats": len(kg.leaves),
        "total_weight": float(sum(weights.values(), Fraction(0))),
        "threat_weights": {local(t): float(w) for t, w in weights.items()},
        "groups": {dim: [name for d_, name, _ in dims if d_ == dim] for dim in ("axis", "flow", "modality")},
        "defenses": rows, "portfolio": None,
    }
    if portfolio:
        out["portfolio"] = {"defenses": [local(d) for d in portfolio], "iris": list(portfolio),
                            "cost": float(sum((kg.cost(d) for d in portfolio), Fraction(0))),
                            **entry(cov, weights, list(portfolio), dims)}
    return out


def flat_rows(rep: dict) -> tuple[list[str], list[dict]]:
    """Columns and rows for CSV and tables: one row per defense, then the portfolio (id ``portfolio``)."""
    cols = ["id", "cost", "dci", "covered", "full", "partial", "inferred"]
    for dim in ("axis", "flow", "modality"):
        cols += [f"{dim}:{name}" for name in rep["groups"][dim]]
    items = list(rep["defenses"])
    if rep["portfolio"]:
        items.append({"id": "portfolio(" + "+".join(rep["portfolio"]["defenses"]) + ")", **rep["portfolio"]})
    rows = []
    for it in items:
        row = {c: it.get(c) for c in cols[:7]}
        for dim in ("axis", "flow", "modality"):
            for name, value in it[f"by_{dim}"].items():
                row[f"{dim}:{name}"] = value
        rows.append(row)
    return cols, rows


def _f(x: Fraction | None) -> float | None:
    return None if x is None else float(x)
