"""``mfmkg check``: is the hand-edited ontology well formed, consistent, valid and complete?

Four stages, each reported: (a) every file parses (rdflib; ``file:line`` errors; later stages need a parsed
graph, so they are skipped after a parse error), (b) OWL: owlready2 loads the merged graph with the expected
classes and HermiT finds it consistent (reported as the ``owl`` and ``reasoner`` lines), (c) SHACL validation
against ``shapes.ttl``, (d) the quality queries in ``queries/checks/``. Findings name ``file:line`` where the
offending subject is written, else its IRI.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import Graph

from mfmkg.errors import OntologyError
from mfmkg.onto import SHAPES_FILE, ontology_files, shipped_dir
from mfmkg.sourcemap import SourceMap, compact, parse_located

STAGES = ("parse", "owl", "reasoner", "shacl", "queries")
REASONER_MODES = ("auto", "hermit", "none")


@dataclass
class Finding:
    """One problem (or note) found by a stage; ``file``/``line``/``iri`` say where, when known."""

    severity: str  # "error", "warning" or "info"
    stage: str
    message: str
    file: str | None = None
    line: int | None = None
    iri: str | None = None

    def render(self) -> str:
        """``file:line: IRI: message`` with whatever parts are known; non-errors say their severity."""
        where = f"{self.file}:{self.line}" if self.file and self.line else self.file
        parts = [p for p in (where, compact(self.iri) if self.iri else None) if p]
        text = self.message if self.severity == "error" else f"{self.severity}: {self.message}"
        return ": ".join([*parts, text])


@dataclass
class CheckReport:
    """All findings plus per-stage status (OK, FAILED or SKIPPED) and a note, and the sizes the summary shows."""

    files: list[Path]
    findings: list[Finding] = field(default_factory=list)
    stages: dict[str, tuple[str, str]] = field(default_factory=dict)
    triples: int = 0
    classes: int = 0
    owl_classes: int | None = None
    seconds: float = 0.0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> list[str]:
        """The lines printed after the findings."""
        parsed = self.stages.get("parse", ("FAILED", ""))[0] == "OK"
        sizes = f": {self.triples} triples, {self.classes} classes" if parsed else ""
        lines = [f"checked {len(self.files)} files{sizes}"]
        for name in STAGES:
            status, note = self.stages.get(name, ("SKIPPED", ""))
            lines.append(f"  {name:<9} {status:<7} {note}".rstrip())
        warnings = sum(f.severity == "warning" for f in self.findings)
        lines.append(f"{len(self.errors)} errors, {warnings} warnings in {self.seconds:.1f} s")
        return lines


def check_paths(ontology_dir: str | Path | None = None,
                extensions_dir: str | Path | None = None) -> tuple[list[Path], Path | None]:
    """The files to check (ontology files in name order, then extensions) and the shapes file, if any."""
    if ontology_dir is None:
        paths = ontology_files(extensions_dir)
        base = shipped_dir()
    else:
        base = Path(ontology_dir)
        if not base.is_dir():
            raise OntologyError(str(base), None, "ontology directory does not exist")
        paths = sorted(base.glob("*.ttl")) + _extension_files(extensions_dir)
    if not paths:
        raise OntologyError(str(base), None, "no Turtle (.ttl) files to check")
    shapes = base / SHAPES_FILE
    return paths, shapes if shapes in paths else None


def _extension_files(extensions_dir: str | Path | None) -> list[Path]:
    if not extensions_dir:
        return []
    ext = Path(extensions_dir)
    if not ext.is_dir():
        raise OntologyError(str(ext), None, "extensions directory does not exist")
    return sorted(ext.rglob("*.ttl"))


def run_checks(paths: list[Path], *, reasoner: str = "auto", shapes: Path | None = None) -> CheckReport:
    """Run every stage over ``paths``; ``shapes`` (default: the first ``shapes.ttl`` in ``paths``) holds SHACL.

    ``reasoner``: "auto" runs HermiT when java is on PATH, "hermit" makes a missing java an error, "none" skips.
    """
    if reasoner not in REASONER_MODES:
        raise ValueError(f"reasoner must be one of {REASONER_MODES}")
    started = time.monotonic()
    paths = [Path(p) for p in paths]
    shapes = shapes or next((p for p in paths if p.name == SHAPES_FILE), None)
    report = CheckReport(paths)
    onto, shapes_graph = _parse_stage(report, paths, shapes)
    if onto is not None:
        smap = SourceMap.build([p for p in paths if p != shapes])
        _owl_stage(report, onto, reasoner, smap)
        _shacl_stage(report, onto, shapes_graph, shapes, smap)
        _queries_stage(report, onto, smap)
    report.seconds = time.monotonic() - started
    return report


def _parse_stage(report: CheckReport, paths: list[Path], shapes: Path | None) -> tuple[Graph | None, Graph]:
    """Parse every file (all of them, to report every syntax error at once); None when any failed."""
    from mfmkg.check_owl import our_classes

    onto, shapes_graph, failed = Graph(), Graph(), False
    for path in paths:
        try:
            parse_located(path, shapes_graph if path == shapes else onto)
        except OntologyError as exc:
            failed = True
            report.findings.append(Finding("error", "parse", exc.message, _display(exc.path), exc.line))
    if failed:
        report.stages["parse"] = ("FAILED", "later stages need every file to parse")
        return None, shapes_graph
    report.triples, report.classes = len(onto), len(our_classes(onto))
    report.stages["parse"] = ("OK", f"{len(paths)} files")
    return onto, shapes_graph


def _owl_stage(report: CheckReport, onto: Graph, reasoner: str, smap: SourceMap) -> None:
    from mfmkg.check_owl import check_owl

    started = time.monotonic()
    res = check_owl(onto, reasoner)
    report.owl_classes = res.owl_classes
    for iri, msg in res.load_errors:
        report.findings.append(_located("error", "owl", msg, iri, smap))
    for iri, msg in res.warnings:
        report.findings.append(_located("warning", "owl", msg, iri, smap))
    report.stages["owl"] = ("FAILED" if res.load_errors else "OK",
                            f"owlready2 loaded {res.owl_classes} of {res.rdflib_classes} classes")
    for iri, msg in res.reasoner_errors:
        report.findings.append(_located("error", "reasoner", msg, iri, smap))
    if res.reasoner == "SKIPPED" and res.reasoner_note:
        report.findings.append(Finding("warning", "reasoner", res.reasoner_note))
    took = f" ({time.monotonic() - started:.1f} s)" if res.reasoner != "SKIPPED" else ""
    report.stages["reasoner"] = (res.reasoner, res.reasoner_note + took)


def _shacl_stage(report: CheckReport, onto: Graph, shapes_graph: Graph, shapes: Path | None,
                 smap: SourceMap) -> None:
    from mfmkg.check_shacl import validate

    if shapes is None:
        report.findings.append(Finding("warning", "shacl", f"no {SHAPES_FILE}: SHACL validation skipped"))
        report.stages["shacl"] = ("SKIPPED", f"no {SHAPES_FILE}")
        return
    try:
        results = validate(onto, shapes_graph, _display(str(shapes)))
    except OntologyError as exc:
        report.findings.append(Finding("error", "shacl", exc.message, exc.path))
        report.stages["shacl"] = ("FAILED", "the shapes could not be used")
        return
    for r in results:
        message = f"{r.path}: {r.message}" if r.path else r.message
        report.findings.append(_located(r.severity, "shacl", message, r.focus, smap))
    errors = sum(r.severity == "error" for r in results)
    report.stages["shacl"] = ("FAILED" if errors else "OK", f"{len(results)} results, {errors} violations")


def _queries_stage(report: CheckReport, onto: Graph, smap: SourceMap) -> None:
    from mfmkg.check_queries import load_queries, run_queries

    try:
        queries = load_queries()
        violations = run_queries(onto, queries)
    except OntologyError as exc:
        report.findings.append(Finding("error", "queries", exc.message, _display(exc.path)))
        report.stages["queries"] = ("FAILED", "a check query is broken")
        return
    for v in violations:
        message = f"{v.query.title} [{v.query.name}]" + (f" ({v.detail})" if v.detail else "")
        report.findings.append(_located(v.query.severity, "queries", message, v.iri, smap))
    failing = sorted({v.query.name for v in violations if v.query.severity == "error"})
    status = "FAILED" if failing else "OK"
    report.stages["queries"] = (status, f"{len(queries)} checks, {len(violations)} rows"
                                + (f"; failing: {', '.join(failing)}" if failing else ""))


def _located(severity: str, stage: str, message: str, iri: str | None, smap: SourceMap) -> Finding:
    where = smap.locate(iri) if iri else None
    if where is None:
        return Finding(severity, stage, message, iri=iri)
    return Finding(severity, stage, message, _display(str(where[0])), where[1], iri)


def _display(path: str) -> str:
    """A path relative to the working directory when it lies below it (shorter, still clickable)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if rel.startswith("..") else rel
