"""The deterministic minimax defense portfolio: the defender picks D (total cost within the budget) to minimise
max_t R(t, D), R(t, D) = v_t * prod_{d in D} (1 - c(d, t)); the attacker answers with the argmax threat.

Exact method (docs/analysis.md): a mixed-integer program solved by HiGHS through ``scipy.optimize.milp``, in three
lexicographic phases: (1) the game value, linear in log space, log R(t) = log v_t + sum_d x_d log(1 - c(d,t)), with
a binary z_t that drops a threat once a fully covering defense is chosen; (2) among portfolios with that value, the
least total residual sum_t R(t, D), linear in value space through the exact product linearisation of binary x
times a bounded residual; (3) among those, the least cost. The chosen portfolio is then evaluated exactly with
fractions. Very large inputs use a greedy heuristic with the LP relaxation of phase 1 as a certified lower bound.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix

#: Above this many (defense, threat) pairs the auto method switches from the MILP to greedy.
EXACT_LIMIT = 250_000
LOG_TOL = 1e-6  # phase-1 value tolerance in log space (a relative 1e-6 on the game value)


@dataclass
class Problem:
    """Threats with impacts v_t, defenses with costs k_d, coverage c(d, t) in [0, 1] (absent = 0)."""

    threats: list[str]
    impact: dict[str, Fraction]
    defenses: list[str]
    cost: dict[str, Fraction]
    cover: dict[tuple[str, str], Fraction]

    def residual(self, t: str, portfolio) -> Fraction:
        r = Fraction(self.impact[t])
        for d in portfolio:
            r *= 1 - self.cover.get((d, t), Fraction(0))
        return r

    def value(self, portfolio) -> Fraction:
        return max((self.residual(t, portfolio) for t in self.threats), default=Fraction(0))

    def total(self, portfolio) -> Fraction:
        return sum((self.residual(t, portfolio) for t in self.threats), Fraction(0))

    def spent(self, portfolio) -> Fraction:
        return sum((Fraction(self.cost[d]) for d in portfolio), Fraction(0))


@dataclass
class Solution:
    portfolio: list[str]
    value: Fraction
    total: Fraction
    cost: Fraction
    method: str
    status: str
    exact: bool
    seconds: float
    lower_bound: float | None = None
    residuals: dict[str, Fraction] = field(default_factory=dict)
    best_response: list[str] = field(default_factory=list)
    marginal: dict[str, Fraction] = field(default_factory=dict)


def solve(p: Problem, budget, method: str = "auto", time_limit: float = 30.0) -> Solution:
    """The minimax portfolio for ``budget`` (method ``auto``, ``exact`` or ``greedy``)."""
    start = time.perf_counter()
    budget = Fraction(budget)
    if method == "auto":
        method = "exact" if len(p.defenses) * max(len(p.threats), 1) <= EXACT_LIMIT else "greedy"
    if method == "exact":
        chosen, status, bound = _exact(p, budget, time_limit)
    else:
        chosen, status, bound = _greedy(p, budget), "heuristic", _lp_bound(p, budget)
    return finish(p, chosen, "milp" if method == "exact" else "greedy", status, status == "optimal",
                  time.perf_counter() - start, bound)


def finish(p: Problem, chosen, method, status, exact, seconds, bound=None) -> Solution:
    """Exact figures for a chosen portfolio: value, residuals, best response (all ties) and marginal values."""
    chosen = [d for d in p.defenses if d in set(chosen)]
    res = {t: p.residual(t, chosen) for t in p.threats}
    value = max(res.values(), default=Fraction(0))
    marginal = {d: p.value([e for e in chosen if e != d]) - value for d in chosen}
    return Solution(chosen, value, sum(res.values(), Fraction(0)), p.spent(chosen), method, status, exact,
                    seconds, bound, res, [t for t in p.threats if res[t] == value], marginal)


def brute_force(p: Problem, budget) -> tuple[Fraction, Fraction, Fraction]:
    """(value, total residual, cost) of the lexicographically best portfolio, by enumeration: for tests."""
    from itertools import combinations

    budget, best = Fraction(budget), None
    for n in range(len(p.defenses) + 1):
        for combo in combinations(p.defenses, n):
            if p.spent(combo) <= budget:
                key = (p.value(combo), p.total(combo), p.spent(combo))
                best = key if best is None or key < best else best
    return best


# -- the exact method ----------------------------------------------------------------------------------------------
class _Model:
    """Variables: x_d (binary) per usable defense, z_t (binary) per threat with a full coverer, y (log value),
    w_{t,i} (continuous, the product linearisation) per (threat, coverer)."""

    def __init__(self, p: Problem, budget: Fraction):
        self.p = p
        self.threats = [t for t in p.threats if p.impact[t] > 0]
        self.defs = [d for d in p.defenses if Fraction(p.cost[d]) <= budget
                     and any(p.cover.get((d, t), 0) > 0 for t in self.threats)]
        self.x = {d: i for i, d in enumerate(self.defs)}
        n = len(self.defs)
        self.full = {t: [d for d in self.defs if p.cover.get((d, t), 0) >= 1] for t in self.threats}
        self.part = {t: [d for d in self.defs if 0 < p.cover.get((d, t), 0) < 1] for t in self.threats}
        self.z = {}
        for t in self.threats:
            if self.full[t]:
                self.z[t] = n
                n += 1
        self.y = n
        n += 1
        self.w = {}
        for t in self.threats:
            for d in self.full[t] + self.part[t]:
                self.w[(t, d)] = n
                n += 1
        self.n = n
        self.logv = {t: math.log(float(p.impact[t])) for t in self.threats}
        self.lam = {(t, d): math.log1p(-float(p.cover[(d, t)])) for t in self.threats for d in self.part[t]}
        floor = min((self.logv[t] + sum(self.lam[(t, d)] for d in self.part[t]) for t in self.threats), default=0.0)
        self.L = floor - 1.0
        self.budget = float(budget)

    def integrality(self) -> np.ndarray:
        kinds = np.zeros(self.n)
        kinds[: len(self.defs)] = 1
        for j in self.z.values():
            kinds[j] = 1
        return kinds

    def constraints(self, y_max: float | None, total_max: float | None, all_full: bool):
        rows, lo, hi = [], [], []

        def add(coefs: dict[int, float], lb: float, ub: float):
            rows.append(coefs)
            lo.append(lb)
            hi.append(ub)

        add({self.x[d]: float(self.p.cost[d]) for d in self.defs}, -np.inf, self.budget + 1e-9)
        for t in self.threats:  # y >= log v_t + sum lam x - M z_t
            coefs = {self.y: 1.0}
            for d in self.part[t]:
                coefs[self.x[d]] = -self.lam[(t, d)]
            if t in self.z:
                coefs[self.z[t]] = self.logv[t] - self.L
                add({self.z[t]: 1.0, **{self.x[d]: -1.0 for d in self.full[t]}}, -np.inf, 0.0)
            add(coefs, self.logv[t], np.inf)
        for t in self.threats:  # w_i = x_d * r_{i-1}, r_{i-1} = v_t - sum_{j<i} c_j w_j
            v, prev = float(self.p.impact[t]), []
            for d in self.full[t] + self.part[t]:
                wi, xi = self.w[(t, d)], self.x[d]
                add({wi: 1.0, xi: -v}, -np.inf, 0.0)
                add({wi: 1.0, **{self.w[(t, e)]: float(self.p.cover[(e, t)]) for e in prev}}, -np.inf, v)
                add({wi: 1.0, xi: -v, **{self.w[(t, e)]: float(self.p.cover[(e, t)]) for e in prev}}, 0.0, np.inf)
                prev.append(d)
        if total_max is not None:  # sum_t r_t <= total_max, i.e. -sum c w <= total_max - sum v
            add({self.w[k]: -float(self.p.cover[(k[1], k[0])]) for k in self.w},
                -np.inf, total_max - sum(float(self.p.impact[t]) for t in self.threats))
        matrix = lil_matrix((len(rows), self.n))
        for i, coefs in enumerate(rows):
            for j, a in coefs.items():
                matrix[i, j] += a
        lb = np.zeros(self.n)
        ub = np.ones(self.n)
        ub[len(self.defs):] = np.inf
        for j in self.z.values():
            ub[j] = 1.0
            if all_full:
                lb[j] = 1.0
        lb[self.y], ub[self.y] = self.L, (y_max if y_max is not None else np.inf)
        for t in self.threats:
            for d in self.full[t] + self.part[t]:
                ub[self.w[(t, d)]] = float(self.p.impact[t])
        return LinearConstraint(matrix.tocsr(), np.array(lo), np.array(hi)), Bounds(lb, ub)

    def run(self, objective: np.ndarray, time_limit: float, relax: bool = False, **limits):
        cons, bounds = self.constraints(**limits)
        return milp(objective, constraints=cons, bounds=bounds,
                    integrality=np.zeros(self.n) if relax else self.integrality(),
                    options={"time_limit": time_limit, "mip_rel_gap": 0.0, "presolve": True})

    def chosen(self, res) -> list[str]:
        return [d for d in self.defs if res.x[self.x[d]] > 0.5]


_STATUS = {0: "optimal", 1: "time_limit", 2: "infeasible", 3: "unbounded", 4: "error"}


def _exact(p: Problem, budget: Fraction, time_limit: float):
    m = _Model(p, budget)
    if not m.threats or not m.defs:
        return [], "optimal", None
    deadline = time.perf_counter() + time_limit
    obj = np.zeros(m.n)
    obj[m.y] = 1.0
    res = m.run(obj, time_limit, y_max=None, total_max=None, all_full=False)
    if res.x is None:
        return _greedy(p, budget), _STATUS.get(res.status, "error"), _lp_bound(p, budget)
    status = _STATUS.get(res.status, "error")
    bound = None
    if status != "optimal" and res.mip_dual_bound is not None:
        bound = math.exp(res.mip_dual_bound) if res.mip_dual_bound > m.L + 1e-9 else 0.0
    best = m.chosen(res)
    if p.spent(best) > budget:  # a tolerance artefact; never report an over-budget portfolio
        return _greedy(p, budget), "heuristic", _lp_bound(p, budget)
    if status != "optimal":
        return best, status, bound
    value = p.value(best)
    limits = {"y_max": math.log(float(value)) + LOG_TOL if value > 0 else m.L, "all_full": value == 0}
    # phase 2: least total residual among portfolios with the game value
    obj = np.zeros(m.n)
    for (t, d), j in m.w.items():
        obj[j] = -float(p.cover[(d, t)])
    res2 = m.run(obj, max(deadline - time.perf_counter(), 1.0), total_max=None, **limits)
    if res2.status == 0 and p.value(m.chosen(res2)) <= value:
        best = m.chosen(res2)
        total = float(p.total(best))
        # phase 3: least cost among those
        obj = np.zeros(m.n)
        for d in m.defs:
            obj[m.x[d]] = float(p.cost[d])
        res3 = m.run(obj, max(deadline - time.perf_counter(), 1.0), total_max=total + 1e-6 * max(1.0, total),
                     **limits)
        if res3.status == 0:
            cand = m.chosen(res3)
            if p.value(cand) <= value and p.total(cand) <= p.total(best):
                best = cand
    return best, "optimal", None


# -- very large inputs ---------------------------------------------------------------------------------------------
def _greedy(p: Problem, budget: Fraction) -> list[str]:
    """Add, while the budget allows, the defense with the largest drop of (max residual, total residual) per unit
    cost (cost 0 counts as 1e-9); stop when no affordable defense lowers either. Floats, for speed."""
    idx = {t: i for i, t in enumerate(p.threats)}
    r = np.array([float(p.impact[t]) for t in p.threats])
    cols = {d: (np.array([idx[t] for (e, t) in p.cover if e == d], dtype=int),
                np.array([1 - float(c) for (e, t), c in p.cover.items() if e == d])) for d in p.defenses}
    chosen, spent = [], Fraction(0)
    while True:
        best, best_key = None, None
        cur_max, cur_sum = (r.max() if r.size else 0.0), r.sum()
        for d in p.defenses:
            if d in chosen or spent + Fraction(p.cost[d]) > budget or cols[d][0].size == 0:
                continue
            r2 = r.copy()
            r2[cols[d][0]] *= cols[d][1]
            gain = (cur_max - (r2.max() if r2.size else 0.0), cur_sum - r2.sum())
            if gain[0] <= 1e-12 and gain[1] <= 1e-12:
                continue
            k = max(float(p.cost[d]), 1e-9)
            key = (gain[0] / k, gain[1] / k)
            if best_key is None or key > best_key:
                best, best_key = d, key
        if best is None:
            return chosen
        chosen.append(best)
        spent += Fraction(p.cost[best])
        r[cols[best][0]] *= cols[best][1]


def _lp_bound(p: Problem, budget: Fraction) -> float:
    """A lower bound on the game value: exp of the LP relaxation of phase 1 (0 when it can reach the floor)."""
    m = _Model(p, budget)
    if not m.threats:
        return 0.0
    if not m.defs:
        return float(max(p.impact[t] for t in m.threats))
    obj = np.zeros(m.n)
    obj[m.y] = 1.0
    res = m.run(obj, 60.0, relax=True, y_max=None, total_max=None, all_full=False)
    if res.x is None or res.fun <= m.L + 1e-9:
        return 0.0
    return math.exp(res.fun)
