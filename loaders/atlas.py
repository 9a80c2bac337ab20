"""MITRE ATLAS (``ATLAS.yaml``, the ``dist/`` file of mitre-atlas/atlas-data) as SKOS concepts in its own graph.

ATLAS is not a literature source: it is another framework that ``ontology/crosswalk.ttl`` maps our threat and
defense classes to. So this loader is not registered with the literature loaders; ``mfmkg atlas load`` calls
:func:`load_atlas`, which replaces the named graph ``https://w3id.org/mfmkg/graph/source/atlas`` as a whole.

Every ATLAS object (tactic, technique and sub-technique, mitigation, case study) becomes one ``skos:Concept`` of
the concept scheme ``https://w3id.org/mfmkg/id/scheme/atlas``, with the IRI ``https://w3id.org/mfmkg/id/atlas/<id>``
(``.../atlas/AML.T0051``), ``skos:notation`` the ATLAS id, ``skos:prefLabel``/``rdfs:label`` its name,
``skos:definition`` its description (summary for case studies) and ``mfm:atlasObjectType`` the YAML's
``object-type``. Links: ``skos:broader`` (sub-technique -> technique), ``mfm:atlasTactic`` (technique -> tactic),
``mfm:atlasMitigates`` (mitigation -> technique), ``mfm:atlasUsesTechnique`` (case study -> each technique of its
procedure); ``rdfs:seeAlso`` points at the object's page on atlas.mitre.org.

A YAML syntax error or a malformed object is a :class:`LoadError` naming ``file:line``; references to ids the file
does not define are kept and reported as warnings. The upstream defect noted in ``data/atlas/NOTICE.md``
(technique links of AML.M0018 and AML.M0034 misplaced inside ``ml-lifecycle``) is repaired, with a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SKOS

from mfmkg.errors import LoadError
from mfmkg.namespaces import ID, MFM, source_graph
from mfmkg.store.base import Store

#: The named graph the ATLAS concepts live in.
ATLAS_GRAPH = source_graph("atlas")
#: Concept IRIs are this prefix plus the ATLAS id.
ATLAS_PREFIX = str(ID) + "atlas/"
ATLAS_SCHEME = URIRef(str(ID) + "scheme/atlas")
ATLAS_WEB = "https://atlas.mitre.org/"
UPSTREAM = URIRef("https://github.com/mitre-atlas/atlas-data")
APACHE_2 = URIRef("https://www.apache.org/licenses/LICENSE-2.0")

#: object-type -> (id pattern, web path)
KINDS = {
    "tactic": (re.compile(r"^AML\.TA\d{4}$"), "tactics"),
    "technique": (re.compile(r"^AML\.T\d{4}(\.\d{3})?$"), "techniques"),
    "mitigation": (re.compile(r"^AML\.M\d{4}$"), "mitigations"),
    "case-study": (re.compile(r"^AML\.CS\d{4}$"), "studies"),
}
_LINE = "__line__"
_RELATIVE_LINK = re.compile(r"\]\(/(tactics|techniques|mitigations|studies)/")


def atlas_iri(atlas_id: str) -> URIRef:
    """The concept IRI minted for an ATLAS id (``AML.T0051`` -> ``https://w3id.org/mfmkg/id/atlas/AML.T0051``)."""
    return URIRef(ATLAS_PREFIX + atlas_id)


def atlas_id(iri: str) -> str | None:
    """The ATLAS id of a concept IRI minted by :func:`atlas_iri`, or None for any other IRI."""
    return iri[len(ATLAS_PREFIX):] if str(iri).startswith(ATLAS_PREFIX) else None


def atlas_url(atlas_id_: str) -> str:
    """The object's page on the ATLAS website."""
    for pattern, path in KINDS.values():
        if pattern.match(atlas_id_):
            return f"{ATLAS_WEB}{path}/{atlas_id_}"
    raise ValueError(f"not an ATLAS id: {atlas_id_!r}")


@dataclass
class AtlasObject:
    id: str
    kind: str
    name: str
    description: str
    line: int
    tactics: list[str] = field(default_factory=list)
    parent: str | None = None
    maturity: str | None = None
    techniques: list[str] = field(default_factory=list)  # mitigations: mitigated; case studies: used


@dataclass
class AtlasData:
    """What one ATLAS.yaml holds, in file order; ``warnings`` are ``file:line: message`` strings."""

    path: str
    version: str
    objects: list[AtlasObject] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[AtlasObject]:
        return [o for o in self.objects if o.kind == kind]

    def counts(self) -> dict[str, int]:
        techniques = self.of_kind("technique")
        return {
            "tactics": len(self.of_kind("tactic")),
            "techniques": len(techniques),
            "subtechniques": sum(1 for t in techniques if t.parent),
            "mitigations": len(self.of_kind("mitigation")),
            "case_studies": len(self.of_kind("case-study")),
            "mitigation_links": sum(len(m.techniques) for m in self.of_kind("mitigation")),
        }


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader that records the 1-based line of every mapping under ``__line__``."""


def _construct_mapping(loader, node, deep=False):
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=True)
    mapping[_LINE] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | Path) -> dict:
    """Parse ATLAS.yaml; syntax errors become LoadError(file, line, ...)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LoadError(str(p), None, None, "file not found") from None
    except UnicodeDecodeError as exc:
        raise LoadError(str(p), None, None, f"not UTF-8 text ({exc.reason})") from None
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(x for x in (exc.context, exc.problem) if x) or str(exc)
        if exc.context_mark is not None and exc.problem_mark is not None \
                and exc.context_mark.line != exc.problem_mark.line:
            reason += f" (the construct started at line {exc.context_mark.line + 1})"
        raise LoadError(str(p), line, None, f"invalid YAML: {reason}") from None
    except yaml.YAMLError as exc:
        raise LoadError(str(p), None, None, f"invalid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise LoadError(str(p), 1, None, "expected a mapping with 'matrices' (an ATLAS.yaml file)")
    return doc


def parse_atlas(path: str | Path) -> AtlasData:
    """Read and check an ATLAS.yaml file (schema of atlas-data ``dist/``)."""
    path = str(path)
    doc = read_yaml(path)
    matrices = doc.get("matrices")
    if not isinstance(matrices, list) or not matrices:
        raise LoadError(path, doc.get(_LINE), "matrices", "expected a non-empty list of matrices")
    data = AtlasData(path, str(doc.get("version") or ""))
    seen: dict[str, int] = {}

    def add(obj: AtlasObject) -> None:
        if obj.id in seen:
            if seen[obj.id] != obj.line:  # matrices may repeat shared objects; same line is the same object
                data.warnings.append(f"{path}:{obj.line}: {obj.id} defined again (first at line {seen[obj.id]}); "
                                     "the first definition is kept")
            return
        seen[obj.id] = obj.line
        data.objects.append(obj)

    for matrix in matrices:
        if not isinstance(matrix, dict):
            raise LoadError(path, doc.get(_LINE), "matrices", "every matrix must be a mapping")
        for key, kind in (("tactics", "tactic"), ("techniques", "technique"), ("mitigations", "mitigation")):
            for item in _list(matrix, key, path):
                add(_object(item, kind, path, data))
    for item in _list(doc, "case-studies", path):
        add(_object(item, "case-study", path, data))
    _check_references(data, path)
    return data


def _list(container: dict, key: str, path: str) -> list:
    value = container.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise LoadError(path, container.get(_LINE), key, "expected a list")
    return value


def _object(item, kind: str, path: str, data: AtlasData) -> AtlasObject:
    if not isinstance(item, dict):
        raise LoadError(path, None, kind, f"expected a mapping for each {kind}, got {type(item).__name__}")
    line = item.get(_LINE)
    oid = item.get("id")
    pattern, _ = KINDS[kind]
    if not isinstance(oid, str) or not pattern.match(oid):
        raise LoadError(path, line, "id", f"{kind} id {oid!r} does not look like {pattern.pattern}")
    declared = item.get("object-type")
    if declared is not None and declared != kind:
        raise LoadError(path, line, "object-type", f"{oid} is listed as a {kind} but says object-type {declared!r}")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise LoadError(path, line, "name", f"{oid} has no name")
    text = item.get("summary" if kind == "case-study" else "description") or ""
    if not isinstance(text, str):
        raise LoadError(path, line, "description", f"{oid}: expected text")
    obj = AtlasObject(oid, kind, name.strip(), text.strip(), line)
    if kind == "technique":
        obj.maturity = item.get("maturity")
        obj.parent = item.get("subtechnique-of")
        obj.tactics = [str(t) for t in item.get("tactics") or []]
        if obj.parent is None and not obj.tactics:
            data.warnings.append(f"{path}:{line}: technique {oid} has neither tactics nor subtechnique-of")
    elif kind == "mitigation":
        obj.techniques = _technique_refs(item.get("techniques") or [], path, line, oid)
        misplaced = [x for x in item.get("ml-lifecycle") or [] if isinstance(x, dict)]
        if misplaced:
            obj.techniques += _technique_refs(misplaced, path, line, oid)
            data.warnings.append(f"{path}:{line}: {oid}: {len(misplaced)} technique link(s) found inside "
                                 "ml-lifecycle (an upstream defect); kept as mitigated techniques")
        obj.techniques = list(dict.fromkeys(obj.techniques))
    elif kind == "case-study":
        steps = item.get("procedure") or []
        if not isinstance(steps, list):
            raise LoadError(path, line, "procedure", f"{oid}: expected a list of steps")
        refs = []
        for step in steps:
            if not isinstance(step, dict) or not isinstance(step.get("technique"), str):
                raise LoadError(path, step.get(_LINE, line) if isinstance(step, dict) else line,
                                "procedure", f"{oid}: every step needs a technique id")
            refs.append(step["technique"])
        obj.techniques = list(dict.fromkeys(refs))
    return obj


def _technique_refs(items: list, path: str, line: int, oid: str) -> list[str]:
    refs = []
    for x in items:
        ref = x.get("id") if isinstance(x, dict) else x
        if not isinstance(ref, str):
            raise LoadError(path, x.get(_LINE, line) if isinstance(x, dict) else line, "techniques",
                            f"{oid}: every technique link needs an id")
        refs.append(ref)
    return refs


def _check_references(data: AtlasData, path: str) -> None:
    known = {o.id: o.kind for o in data.objects}
    for o in data.objects:
        targets = ([("tactic", t) for t in o.tactics] + ([("technique", o.parent)] if o.parent else [])
                   + [("technique", t) for t in o.techniques])
        for kind, ref in targets:
            if known.get(ref) != kind:
                data.warnings.append(f"{path}:{o.line}: {o.id} refers to {ref}, which is not a {kind} of this file")


def atlas_graph(data: AtlasData) -> Graph:
    """The RDF of an ATLAS file (see the module docstring for the shape)."""
    g = Graph()
    s = ATLAS_SCHEME
    g.add((s, RDF.type, SKOS.ConceptScheme))
    g.add((s, RDF.type, OWL.NamedIndividual))
    g.add((s, RDFS.label, Literal("MITRE ATLAS")))
    g.add((s, SKOS.prefLabel, Literal("MITRE ATLAS")))
    g.add((s, SKOS.definition, Literal(
        "Adversarial Threat Landscape for AI Systems: MITRE's knowledge base of adversary tactics, techniques, "
        "mitigations and case studies against AI-enabled systems, loaded from its ATLAS.yaml distribution file.")))
    g.add((s, DCTERMS.source, UPSTREAM))
    g.add((s, DCTERMS.license, APACHE_2))
    if data.version:
        g.add((s, OWL.versionInfo, Literal(data.version)))
    for o in data.objects:
        c = atlas_iri(o.id)
        g.add((c, RDF.type, SKOS.Concept))
        g.add((c, RDF.type, OWL.NamedIndividual))
        g.add((c, SKOS.inScheme, s))
        g.add((c, SKOS.notation, Literal(o.id)))
        g.add((c, SKOS.prefLabel, Literal(o.name)))
        g.add((c, RDFS.label, Literal(o.name)))
        if o.description:
            g.add((c, SKOS.definition, Literal(_absolute_links(o.description))))
        g.add((c, MFM.atlasObjectType, Literal(o.kind)))
        g.add((c, RDFS.seeAlso, URIRef(atlas_url(o.id))))
        if o.kind == "tactic":
            g.add((c, SKOS.topConceptOf, s))
        for t in o.tactics:
            g.add((c, MFM.atlasTactic, atlas_iri(t)))
        if o.parent:
            g.add((c, SKOS.broader, atlas_iri(o.parent)))
        if o.maturity:
            g.add((c, MFM.atlasMaturity, Literal(str(o.maturity))))
        link = MFM.atlasMitigates if o.kind == "mitigation" else MFM.atlasUsesTechnique
        for t in o.techniques:
            g.add((c, link, atlas_iri(t)))
    return g


def _absolute_links(text: str) -> str:
    """ATLAS descriptions link with site-relative paths; make them absolute so they work anywhere."""
    return _RELATIVE_LINK.sub(lambda m: f"]({ATLAS_WEB}{m.group(1)}/", text)


@dataclass
class AtlasSummary:
    path: str
    version: str
    graph: str
    triples: int
    counts: dict[str, int]
    warnings: list[str]

    def as_dict(self) -> dict:
        return {"path": self.path, "version": self.version, "graph": self.graph, "triples": self.triples,
                **self.counts, "warnings": self.warnings}


def load_atlas(store: Store, path: str | Path) -> AtlasSummary:
    """Parse ``path`` and make the ATLAS graph hold exactly its concepts (nothing is written on an error)."""
    data = parse_atlas(path)
    g = atlas_graph(data)
    n = store.replace_graph(ATLAS_GRAPH, g)
    return AtlasSummary(str(path), data.version, ATLAS_GRAPH, n, data.counts(), data.warnings)


def shipped_atlas_file() -> Path | None:
    """``data/atlas/ATLAS.yaml`` of a source checkout, or None when this installation has no copy."""
    candidate = Path(__file__).resolve().parent.parent / "data" / "atlas" / "ATLAS.yaml"
    return candidate if candidate.is_file() else None
