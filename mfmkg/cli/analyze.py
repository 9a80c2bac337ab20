"""``mfmkg analyze``: coverage (with inferred links), the Defense Coverage Index, the minimax defense portfolio and
the attack capacity of a deployment (docs/analysis.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mfmkg.cli.common import fail_on_error, open_ready_store, store_options
from mfmkg.tables import to_csv, to_text

FORMATS = click.Choice(["table", "csv", "json"])
WEIGHTS = click.Choice(["uniform", "evidence"])


def register(group: click.Group) -> None:
    group.add_command(analyze)


@click.group()
def analyze() -> None:
    """Analyses over the graph: coverage, DCI, minimax portfolio, deployment flow."""


def _emit(fmt: str, report: dict, columns: list[str], rows: list[dict], header: list[str] | None = None) -> None:
    if fmt == "json":
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    elif fmt == "csv":
        click.echo(to_csv(columns, [{k: _csv(v) for k, v in r.items()} for r in rows]), nl=False)
    else:
        for line in header or []:
            click.echo(line)
        click.echo(to_text(columns, [{k: _cell(v) for k, v in r.items()} for r in rows]))


def _csv(v):
    """CSV cells as the HTTP service writes them: true/false, lists joined with '; ', None empty."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "; ".join(map(str, v))
    return v


def _cell(v):
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
    if isinstance(v, list):
        return "; ".join(map(str, v))
    return v


@analyze.command()
@store_options
@fail_on_error
def infer(config: dict) -> None:
    """Recompute the inferred coverage links and store them in the inferred graph."""
    from mfmkg.analysis.api import infer_report

    rep = infer_report(open_ready_store(config))
    click.echo(f"{rep['inferred']} inferred coverage links: "
               + ", ".join(f"{k} {n}" for k, n in rep["by_rule"].items()))


@analyze.command()
@store_options
@click.option("--threat", help="One threat class (local name, mfm: CURIE, IRI or label); default: all goal-level.")
@click.option("--defense", help="Only this defense class.")
@click.option("--inferred", is_flag=True, help="Include inferred coverage links (reported as inferred, with rule).")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@fail_on_error
def coverage(config: dict, threat, defense, inferred: bool, fmt: str) -> None:
    """Which defenses cover which threats, with degree, kind (asserted/inferred), rule and inheritance."""
    from mfmkg.analysis.api import COVERAGE_COLUMNS, coverage_report

    rep = coverage_report(open_ready_store(config), inferred, threat, defense)
    header = [f"uncovered: {', '.join(rep['uncovered']) or '-'}"]
    _emit(fmt, rep, COVERAGE_COLUMNS, rep["rows"], header)


@analyze.command()
@store_options
@click.option("--weights", type=WEIGHTS, default="uniform", show_default=True,
              help="Threat weights: 1 each, or evidence (attacks + papers).")
@click.option("--inferred", is_flag=True, help="Count inferred coverage links too.")
@click.option("--portfolio", metavar="D1,D2", help="Also the DCI of this set of defenses (max over them).")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@fail_on_error
def dci(config: dict, weights: str, inferred: bool, portfolio, fmt: str) -> None:
    """The Defense Coverage Index of every defense (and a portfolio), by axis, flow and modality."""
    from mfmkg.analysis.api import dci_report, dci_rows

    rep = dci_report(open_ready_store(config), weights, inferred, portfolio)
    cols, rows = dci_rows(rep)
    header = [f"DCI over {rep['threats']} goal-level threats, weights {weights} (total {rep['total_weight']:g}), "
              f"{'asserted and inferred' if inferred else 'asserted'} coverage"]
    _emit(fmt, rep, cols, rows, header)


@analyze.command()
@store_options
@click.option("--budget", required=True, help="Total cost allowed (defense costs from mfm:cost, default 1).")
@click.option("--weights", type=WEIGHTS, default="uniform", show_default=True, help="Threat impacts v_t.")
@click.option("--inferred", is_flag=True, help="Count inferred coverage links too.")
@click.option("--coverable-only", is_flag=True, help="Leave out threats that no defense covers at all.")
@click.option("--method", type=click.Choice(["auto", "exact", "greedy"]), default="auto", show_default=True)
@click.option("--time-limit", type=float, default=30.0, show_default=True, help="Seconds for the exact solver.")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@fail_on_error
def minimax(config: dict, budget: str, weights: str, inferred: bool, coverable_only: bool, method: str,
            time_limit: float, fmt: str) -> None:
    """The defense portfolio within the budget that minimises the worst residual threat."""
    from mfmkg.analysis.api import minimax_report, minimax_rows
    from mfmkg.analysis.params import number

    rep = minimax_report(open_ready_store(config), number("budget", budget), weights, inferred, coverable_only,
                         method, time_limit)
    cols, rows = minimax_rows(rep)
    header = [
        f"budget {rep['budget']:g}: game value {rep['value']:.6g} ({rep['value_exact']}), cost {rep['cost']:g}, "
        f"{rep['method']} {rep['status']} in {rep['solve_seconds']:.3f}s"
        + (f", lower bound {rep['lower_bound']:.6g}" if rep["lower_bound"] is not None else ""),
        "portfolio: " + (", ".join(f"{d['defense']} (cost {d['cost']:g}, marginal {d['marginal_value']:.4g})"
                                   for d in rep["portfolio"]) or "-"),
        "attacker's best response: " + ", ".join(rep["best_response"]),
        "by axis: " + ", ".join(f"{a['axis']} {a['value']:.4g}" for a in rep["by_axis"]),
    ]
    if rep["uncoverable"]:
        header.append(("left out" if coverable_only else "uncoverable") + ": " + ", ".join(rep["uncoverable"]))
    _emit(fmt, rep, cols, rows, header)


@analyze.command()
@click.argument("deployment", type=click.Path(exists=True, dir_okay=False))
@click.option("--session", type=click.Path(exists=True, dir_okay=False), help="A session log (JSON lines).")
@click.option("--share", default="0.5", show_default=True,
              help="The circuit breaker fires when observed information exceeds this share of the max-flow.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@fail_on_error
def flow(deployment: str, session, share: str, fmt: str) -> None:
    """Max-flow and min cut from untrusted sources to the sink of DEPLOYMENT (YAML or JSON), per defense."""
    from mfmkg.analysis.api import flow_report
    from mfmkg.analysis.deployment import load_deployment
    from mfmkg.analysis.params import number

    share_value = number("share", share, strict=True)
    path = Path(deployment)
    dep = load_deployment(path.read_bytes(), "json" if path.suffix == ".json" else None, where=deployment)
    rep = flow_report(dep, Path(session).read_bytes() if session else None, share_value)
    if fmt == "json":
        click.echo(json.dumps(rep, indent=2, ensure_ascii=False))
        return
    u, d = rep["undefended"], rep["deployed"]
    click.echo(f"{rep['name'] or deployment}: sink {rep['sink']}, untrusted sources "
               f"{', '.join(rep['untrusted_sources'])}")
    click.echo(f"max-flow without defenses {u['max_flow']:g}, min cut {', '.join(u['min_cut']) or '-'}")
    click.echo(f"max-flow with every defense {d['max_flow']:g}, min cut {', '.join(d['min_cut']) or '-'}")
    cols = ["defense", "flow_before", "flow_after", "reduction", "cut_after", "cut_changed", "flow_without_it",
            "marginal"]
    click.echo(to_text(cols, [{c: _cell(e[c]) for c in cols} for e in rep["defenses"]]))
    cb = rep["circuit_breaker"]
    if cb:
        fired = f"fires at turn {cb['fires_at_turn']}" if cb["fires_at_turn"] is not None else "does not fire"
        click.echo(f"circuit breaker (share {cb['share']:g}, threshold {cb['threshold']:g} bits): {fired}")
        click.echo(to_text(["turn", "observed", "cumulative", "over"],
                           [{k: _cell(v) for k, v in t.items()} for t in cb["trace"]]))
