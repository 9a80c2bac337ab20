"""The circuit breaker (self-destruction threshold) over a session log.

A session log is JSON lines, one per turn: ``{"turn": 3, "scores": {"<edge id>": <detector score in [0, 1]>}}``.
The information observed on attack-flagged channels in a turn is sum_e score_e * bandwidth_e, with the bandwidth the
edge has in the deployed system (every defense in force). The breaker fires at the first turn where the running
total exceeds share * max-flow of the deployed system.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction

from .deployment import MAX_ITEMS, Deployment, DeploymentError

DEFAULT_SHARE = Fraction(1, 2)


@dataclass(frozen=True)
class Turn:
    turn: int
    scores: dict[str, Fraction]


def parse_session(source: str | bytes | list, dep: Deployment, where: str = "session") -> list[Turn]:
    """Turns from JSON-lines text (or a list of already parsed records); every problem names line and field."""
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError:
            raise DeploymentError("(document)", "not UTF-8 text", where) from None
    if isinstance(source, str):
        records = []
        for n, line in enumerate(source.splitlines(), 1):
            if line.strip():
                try:
                    records.append((f"{where} line {n}", json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise DeploymentError("(line)", f"not valid JSON: {exc.msg}", f"{where} line {n}") from None
    elif isinstance(source, list):
        records = [(f"{where}[{i}]", r) for i, r in enumerate(source)]
    else:
        raise DeploymentError("(document)", "must be JSON lines or a list of turns", where)
    if len(records) > MAX_ITEMS * 10:
        raise DeploymentError("(document)", f"at most {MAX_ITEMS * 10} turns", where)
    edges = {e.id for e in dep.edges}
    turns, last = [], None
    for at, rec in records:
        if not isinstance(rec, dict):
            raise DeploymentError("(turn)", 'must be an object {"turn": n, "scores": {...}}', at)
        unknown = set(rec) - {"turn", "scores"}
        if unknown:
            raise DeploymentError(sorted(map(str, unknown))[0], "unknown field (expected turn, scores)", at)
        n = rec.get("turn")
        if not isinstance(n, int) or isinstance(n, bool):
            raise DeploymentError("turn", "must be an integer", at)
        if last is not None and n <= last:
            raise DeploymentError("turn", f"must increase (previous turn was {last})", at)
        scores = rec.get("scores")
        if not isinstance(scores, dict):
            raise DeploymentError("scores", "must be an object mapping edge ids to scores in [0, 1]", at)
        parsed = {}
        for edge, s in scores.items():
            if edge not in edges:
                raise DeploymentError(f"scores.{edge}", "unknown edge of the deployment", at)
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 <= s <= 1:
                raise DeploymentError(f"scores.{edge}", "must be a number in [0, 1]", at)
            parsed[edge] = Fraction(str(s)) if isinstance(s, float) else Fraction(s)
        turns.append(Turn(n, parsed))
        last = n
    return turns


def circuit_breaker(turns: list[Turn], caps: dict[str, Fraction], bound: float, share: Fraction) -> dict:
    """The turn at which the breaker fires (None if it never does), the threshold and the running totals."""
    threshold = share * Fraction(bound)
    total, fired, trace = Fraction(0), None, []
    for t in turns:
        observed = sum((s * caps[e] for e, s in t.scores.items()), Fraction(0))
        total += observed
        if fired is None and total > threshold:
            fired = t.turn
        trace.append({"turn": t.turn, "observed": float(observed), "cumulative": float(total),
                      "over": total > threshold})
    return {"share": float(share), "bound": bound, "threshold": float(threshold), "fires_at_turn": fired,
            "trace": trace}
