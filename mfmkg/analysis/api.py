"""The analyses as reports (plain dicts) with flat rows for CSV and tables: what the CLI and HTTP both serve."""

from __future__ import annotations

from fractions import Fraction

from mfmkg.store.base import Store

from . import dci as dci_mod
from .breaker import DEFAULT_SHARE, circuit_breaker, parse_session
from .coverage import RULES, Coverage, infer, load_coverage
from .deployment import Deployment
from .flow import analyse, capacities
from .minimax import Problem, solve
from .model import INFERRED, local, load_knowledge
from .params import class_list, find_class


def _fmt(x: Fraction | None) -> str | None:
    return None if x is None else str(x)


# -- coverage -------------------------------------------------------------------------------------------------------
def coverage_report(store: Store, include_inferred: bool, threat: str | None = None,
                    defense: str | None = None) -> dict:
    """Every (threat, defense) coverage of the goal-level threats (or of one threat class), with kind and rule."""
    cov = load_coverage(store, include_inferred)
    kg = cov.kg
    threats = [find_class(kg.threats, threat, "threat", noun="threat")] if threat else kg.leaves
    d_iri = find_class(kg.defenses, defense, "defense", noun="defense") if defense else None
    rows, uncovered = [], []
    for t in threats:
        covers = [c for d, c in sorted(cov.covers(t).items()) if d_iri is None or d == d_iri]
        if not covers:
            uncovered.append(local(t))
        for c in covers:
            rows.append({"threat": local(t), "defense": local(c.defense), "degree": local(c.degree or ""),
                         "value": float(c.value), "kind": c.kind, "rule": c.rule, "via": local(c.via),
                         "inherited": c.inherited, "link": c.link, "sources": list(c.sources), "note": c.note})
    return {"include_inferred": include_inferred, "threat": threat and local(threats[0]),
            "defense": d_iri and local(d_iri), "count": len(rows), "uncovered": uncovered, "rows": rows}


COVERAGE_COLUMNS = ["threat", "defense", "degree", "value", "kind", "rule", "via", "inherited", "sources"]


def infer_report(store: Store) -> dict:
    kg = load_knowledge(store)
    links = infer(store, kg)
    by_rule = {rid: sum(1 for lk in links if lk.rule.startswith(rid + ":")) for rid in RULES}
    return {"inferred": len(links), "by_rule": by_rule, "rules": {k: f"{k}: {v}" for k, v in RULES.items()},
            "links": [{"defense": local(lk.defense), "threat": local(lk.threat), "rule": lk.rule.split(":")[0],
                       "link": lk.iri} for lk in links]}


# -- DCI --------------------------------------------------------------------------------------------------------------
def dci_report(store: Store, weights: str, include_inferred: bool, portfolio: str | None = None) -> dict:
    cov = load_coverage(store, include_inferred)
    chosen = class_list(cov.kg.defenses, portfolio, "portfolio", cov.kg.candidates)
    return dci_mod.report(store, cov, weights, chosen or None)


def dci_rows(rep: dict) -> tuple[list[str], list[dict]]:
    return dci_mod.flat_rows(rep)


# -- minimax ----------------------------------------------------------------------------------------------------------
def problem_for(store: Store, cov: Coverage, weights: str, coverable_only: bool) -> tuple[Problem, list[str]]:
    """The game over the goal-level threats: impacts from the weights, costs from mfm:cost, c from ``cov``."""
    kg = cov.kg
    impact = dci_mod.threat_weights(store, cov, weights)
    defenses = kg.candidates
    cover = cov.matrix(defenses, kg.leaves)
    uncoverable = [t for t in kg.leaves if not any((d, t) in cover for d in defenses)]
    threats = [t for t in kg.leaves if not (coverable_only and t in uncoverable)]
    return Problem(threats, impact, defenses, {d: kg.cost(d) for d in defenses}, cover), uncoverable


def minimax_report(store: Store, budget: Fraction, weights: str = "uniform", include_inferred: bool = False,
                   coverable_only: bool = False, method: str = "auto", time_limit: float = 30.0) -> dict:
    cov = load_coverage(store, include_inferred)
    kg = cov.kg
    p, uncoverable = problem_for(store, cov, weights, coverable_only)
    sol = solve(p, budget, method, time_limit)
    axes = {t: kg.descriptor(t, "axes") for t in p.threats}
    by_axis = []
    for axis in [a for a in dci_mod.AXIS_ORDER if any(a in v for v in axes.values())] + \
            sorted({a for v in axes.values() for a in v} - set(dci_mod.AXIS_ORDER)):
        members = [t for t in p.threats if axis in axes[t]]
        top = max(sol.residuals[t] for t in members)
        by_axis.append({"axis": local(axis), "value": float(top), "value_exact": _fmt(top),
                        "threats": [local(t) for t in members if sol.residuals[t] == top]})
    threats = []
    for t in p.threats:
        covers = cov.covers(t)
        threats.append({"threat": local(t), "impact": float(p.impact[t]), "residual": float(sol.residuals[t]),
                        "axes": sorted(local(a) for a in axes[t]),
                        "covered_by": [{"defense": local(d), "degree": local(covers[d].degree or ""),
                                        "kind": covers[d].kind, "rule": covers[d].rule}
                                       for d in sol.portfolio if d in covers]})
    return {
        "budget": float(budget), "weights": weights, "include_inferred": include_inferred,
        "coverable_only": coverable_only, "method": sol.method, "status": sol.status, "exact": sol.exact,
        "solve_seconds": round(sol.seconds, 4), "lower_bound": sol.lower_bound,
        "value": float(sol.value), "value_exact": _fmt(sol.value),
        "cost": float(sol.cost), "residual_total": float(sol.total),
        "portfolio": [{"defense": local(d), "iri": d, "label": kg.defenses[d].label, "cost": float(p.cost[d]),
                       "marginal_value": float(sol.marginal[d]), "marginal_value_exact": _fmt(sol.marginal[d]),
                       "inferred_links_used": sum(1 for t in p.threats if d in cov.covers(t)
                                                  and cov.covers(t)[d].kind == INFERRED)}
                      for d in sol.portfolio],
        "best_response": [local(t) for t in sol.best_response],
        "by_axis": by_axis,
        "threats": threats,
        "uncoverable": [local(t) for t in uncoverable],
    }


MINIMAX_COLUMNS = ["threat", "impact", "residual", "best_response", "axes", "covered_by"]


def minimax_rows(rep: dict) -> tuple[list[str], list[dict]]:
    best = set(rep["best_response"])
    rows = [{"threat": t["threat"], "impact": t["impact"], "residual": t["residual"],
             "best_response": t["threat"] in best, "axes": "; ".join(t["axes"]),
             "covered_by": "; ".join(f"{c['defense']} ({c['degree']}, {c['kind']})" for c in t["covered_by"])}
            for t in rep["threats"]]
    return MINIMAX_COLUMNS, rows


# -- flow -------------------------------------------------------------------------------------------------------------
def flow_report(dep: Deployment, session=None, share: Fraction = DEFAULT_SHARE) -> dict:
    rep = analyse(dep)
    rep["circuit_breaker"] = None
    if session is not None:
        turns = parse_session(session, dep)
        caps = capacities(dep, {d.id for d in dep.defenses})
        rep["circuit_breaker"] = circuit_breaker(turns, caps, rep["deployed"]["max_flow"], share)
    return rep
