"""SHACL validation of the ontology graph against ``shapes.ttl``, one record per validation result."""

from __future__ import annotations

from dataclasses import dataclass

from rdflib import BNode, Graph
from rdflib.namespace import RDF

from mfmkg.errors import OntologyError
from mfmkg.namespaces import SH
from mfmkg.sourcemap import compact

_SEVERITY = {SH.Violation: "error", SH.Warning: "warning", SH.Info: "info"}


@dataclass(frozen=True)
class ShaclResult:
    """One ``sh:ValidationResult``: the focus node, the path (as Turtle/SPARQL text) and the message."""

    severity: str
    focus: str
    path: str | None
    message: str


def validate(data: Graph, shapes: Graph, shapes_path: str = "shapes") -> list[ShaclResult]:
    """Validate without inference: the check judges what the files state, not what a reasoner adds.

    Broken shapes (pyshacl refuses them) raise OntologyError naming ``shapes_path``: that is a fault of the
    shapes file, not a violation by the data.
    """
    import pyshacl

    try:
        _conforms, report, _text = pyshacl.validate(
            data, shacl_graph=shapes, inference="none", advanced=True, allow_warnings=True)
    except Exception as exc:  # pyshacl raises ReportableRuntimeError, ConstraintLoadError, ...; all mean bad shapes
        raise OntologyError(shapes_path, None, f"pyshacl could not use the shapes: {exc}") from exc
    return sorted((_result(report, node) for node in report.subjects(RDF.type, SH.ValidationResult)),
                  key=lambda r: (r.focus, r.path or "", r.message))


def _result(report: Graph, node) -> ShaclResult:
    focus = report.value(node, SH.focusNode)
    path = report.value(node, SH.resultPath)
    messages = sorted(str(m) for m in report.objects(node, SH.resultMessage))
    constraint = report.value(node, SH.sourceConstraintComponent)
    message = "; ".join(messages) or (f"violates {_short(constraint)}" if constraint else "violation")
    severity = _SEVERITY.get(report.value(node, SH.resultSeverity), "error")
    return ShaclResult(severity, str(focus), _short(path) if path is not None else None, message)


def _short(term) -> str:
    """A path or constraint as a prefixed name; a blank node is a complex path with no useful name."""
    return "(complex path)" if isinstance(term, BNode) else compact(str(term))
