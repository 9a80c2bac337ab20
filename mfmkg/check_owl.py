"""The one place mfmkg touches owlready2: load the ontology for OWL checks and run HermiT on it.

owlready2 does not read Turtle and can load garbage with only a warning (docs: engineering notes), so it is
handed N-Triples written by rdflib, in a fresh World, and the classes it finds are compared with the classes
rdflib sees: a shortfall means the load went wrong, and is an error rather than a quiet pass.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import Graph, URIRef
from rdflib.namespace import OWL, RDF

#: owlready2 treats these vocabularies as built in and does not list their terms as classes.
_BUILTIN = (str(OWL), str(RDF), "http://www.w3.org/2000/01/rdf-schema#")


@dataclass
class OwlResult:
    """What the OWL stage learned; errors and warnings are (iri or None, message) pairs."""

    rdflib_classes: int = 0
    owl_classes: int = 0
    reasoner: str = "SKIPPED"          # OK, FAILED or SKIPPED
    reasoner_note: str = ""
    load_errors: list[tuple[str | None, str]] = field(default_factory=list)
    reasoner_errors: list[tuple[str | None, str]] = field(default_factory=list)
    warnings: list[tuple[str | None, str]] = field(default_factory=list)


def our_classes(graph: Graph) -> set[str]:
    """IRIs of the named ``owl:Class`` subjects as rdflib sees them (ours, extensions', declared standard ones)."""
    return {str(s) for s in graph.subjects(RDF.type, OWL.Class)
            if isinstance(s, URIRef) and not str(s).startswith(_BUILTIN)}


def check_owl(graph: Graph, reasoner: str = "auto") -> OwlResult:
    """Load ``graph`` into owlready2, compare class counts, and run HermiT unless ``reasoner`` says not to."""
    import owlready2

    expected = our_classes(graph)
    result = OwlResult(rdflib_classes=len(expected))
    with tempfile.TemporaryDirectory(prefix="mfmkg-owl-") as tmp:
        world = owlready2.World()
        try:
            loaded = _load(world, graph, Path(tmp) / "ontology.nt", result)
            if loaded is None:
                return result
            result.owl_classes = len(loaded)
            missing = sorted(expected - loaded)
            if missing:
                result.load_errors.append((None, _shortfall(len(expected), missing)))
                result.reasoner_note = "HermiT consistency check skipped: the owlready2 load is incomplete"
                return result
            _reason(world, reasoner, result, owlready2)
        finally:
            world.close()
    return result


def _load(world, graph: Graph, path: Path, result: OwlResult) -> set[str] | None:
    """Write N-Triples, load them; the set of our class IRIs owlready2 found, or None when loading failed."""
    graph.serialize(path, format="nt", encoding="utf-8")
    printed = io.StringIO()  # owlready2 prints some warnings ("belongs to more than one entity types")
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(printed):
        warnings.simplefilter("always")
        try:
            world.get_ontology(path.as_uri()).load(format="ntriples")
        except Exception as exc:  # owlready2's parsers raise assorted types; all mean "not loaded"
            result.load_errors.append((None, f"owlready2 could not load the ontology: {exc}"))
            result.reasoner_note = "HermiT consistency check skipped: the ontology did not load"
            return None
    said = [str(w.message) for w in caught] + [ln.strip() for ln in printed.getvalue().splitlines() if ln.strip()]
    result.warnings += [(None, f"owlready2: {msg.removeprefix('* Owlready2 * ')}") for msg in said]
    return {c.iri for c in world.classes() if not c.iri.startswith(_BUILTIN)}


def _shortfall(expected: int, missing: list[str]) -> str:
    shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
    return (f"owlready2 loaded {expected - len(missing)} of the {expected} owl:Class terms rdflib sees; "
            f"missing: {shown}")


def _reason(world, reasoner: str, result: OwlResult, owlready2) -> None:
    """Run HermiT on ``world``: inconsistency and unsatisfiable classes are errors."""
    if reasoner == "none":
        result.reasoner_note = "HermiT consistency check skipped: --no-reasoner"
        return
    java = shutil.which("java")
    if java is None:
        note = "HermiT consistency check skipped: java not found"
        if reasoner == "hermit":
            result.reasoner_errors.append((None, note))
            result.reasoner = "FAILED"
        else:
            result.reasoner_note = note
        return
    owlready2.JAVA_EXE = java
    try:
        owlready2.sync_reasoner_hermit(world, infer_property_values=False, debug=0)
    except owlready2.OwlReadyInconsistentOntologyError:
        result.reasoner_errors.append((None, "HermiT: the ontology is inconsistent (it has no model); "
                                    "look for individuals typed by disjoint classes"))
        result.reasoner = "FAILED"
        return
    except owlready2.OwlReadyJavaError as exc:
        result.reasoner_errors.append((None, f"HermiT failed: {_java_message(str(exc))}"))
        result.reasoner = "FAILED"
        return
    unsat = sorted(c.iri for c in world.inconsistent_classes() if c is not owlready2.Nothing)
    for iri in unsat:
        result.reasoner_errors.append((iri, "unsatisfiable class (HermiT infers it equivalent to owl:Nothing)"))
    result.reasoner = "FAILED" if unsat else "OK"
    result.reasoner_note = "HermiT: consistent" + (f", {len(unsat)} unsatisfiable classes" if unsat else "")


def _java_message(text: str, n: int = 3) -> str:
    """Java's message without the stack trace: its first few lines that are not ``at ...`` frames."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("at ")]
    lines = [ln for ln in lines if ln != "Java error message is:"]
    return " | ".join(lines[:n]) or "no output"
