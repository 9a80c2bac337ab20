"""What several exports need: the ontology version, labels, crosswalk mappings and per-threat coverage."""

from __future__ import annotations

from dataclasses import dataclass, field

from rdflib import URIRef

from mfmkg.namespaces import MFM, ONTOLOGY_GRAPH, ONTOLOGY_IRI, sparql_prefixes
from mfmkg.store.base import SelectResult, Store

#: The SKOS mapping properties, strongest first; "related" is informative only.
MATCHES = ("exactMatch", "closeMatch", "broadMatch", "narrowMatch", "relatedMatch")
#: Mapping properties that make an external concept a counterpart (not relatedMatch).
COUNTERPART = MATCHES[:4]

ATLAS_PREFIX = "https://w3id.org/mfmkg/id/atlas/"
OWASP_PREFIX = "https://w3id.org/mfmkg/id/owasp-llm-2025/"
NIST_PREFIX = "https://w3id.org/mfmkg/id/nist-ai-100-2-e2025/"

#: STIX ``source_name`` and a landing URL per external framework.
FRAMEWORKS = {
    ATLAS_PREFIX: ("mitre-atlas", None),
    OWASP_PREFIX: ("owasp-llm-top-10-2025", "https://genai.owasp.org/llm-top-10/"),
    NIST_PREFIX: ("nist-ai-100-2-e2025", "https://doi.org/10.6028/NIST.AI.100-2e2025"),
}


def rows(store: Store, body: str, **bindings) -> list[dict]:
    """A SELECT with the standard prefixes, rows as plain values (IRIs as str, unbound as None)."""
    res = store.query(sparql_prefixes() + body, bindings=bindings or None)
    assert isinstance(res, SelectResult)
    return res.values()


def local(iri: str) -> str:
    """The local name of one of our IRIs (after ``#`` or the last ``/``)."""
    return iri.rsplit("#", 1)[-1] if "#" in iri else iri.rstrip("/").rsplit("/", 1)[-1]


def ontology_version(store: Store) -> str:
    """``owl:versionInfo`` of the ontology header in the ontology graph ("0.0.0" if absent)."""
    found = rows(store, "SELECT ?v WHERE { GRAPH ?g { ?o owl:versionInfo ?v } }",
                 g=URIRef(ONTOLOGY_GRAPH), o=URIRef(ONTOLOGY_IRI))
    return str(found[0]["v"]) if found else "0.0.0"


@dataclass
class Mapping:
    subject: str
    match: str       # local name of the SKOS property, e.g. "closeMatch"
    target: str      # the external concept's IRI
    notation: str    # its skos:notation (or the id derived from the IRI)
    label: str | None = None

    @property
    def counterpart(self) -> bool:
        return self.match in COUNTERPART

    @property
    def framework(self) -> str | None:
        for prefix, (name, _) in FRAMEWORKS.items():
            if self.target.startswith(prefix):
                return name
        return None


def mappings(store: Store) -> dict[str, list[Mapping]]:
    """Crosswalk mappings of our threat and defense classes, by class IRI, strongest match first."""
    found = rows(store, """
        SELECT DISTINCT ?c ?p ?t ?notation ?label WHERE {
          VALUES ?p { skos:exactMatch skos:closeMatch skos:broadMatch skos:narrowMatch skos:relatedMatch }
          ?c ?p ?t .
          { ?c rdfs:subClassOf+ mfm:Threat } UNION { ?c rdfs:subClassOf+ mfm:Defense }
          OPTIONAL { ?t skos:notation ?notation }
          OPTIONAL { ?t skos:prefLabel ?label }
        }""")
    out: dict[str, list[Mapping]] = {}
    for r in found:
        target = r["t"]
        notation = r["notation"] or (target[len(ATLAS_PREFIX):] if target.startswith(ATLAS_PREFIX) else local(target))
        out.setdefault(r["c"], []).append(Mapping(r["c"], local(r["p"]), target, str(notation), r["label"]))
    for ms in out.values():
        ms.sort(key=lambda m: (MATCHES.index(m.match), m.target))
    return out


@dataclass
class ThreatClass:
    iri: str
    label: str
    definition: str | None
    parents: list[str] = field(default_factory=list)
    flows: list[str] = field(default_factory=list)
    is_family: bool = False


def threat_classes(store: Store) -> dict[str, ThreatClass]:
    """Every class below mfm:Threat (families and goal classes) with label, definition, parents and flows."""
    found = rows(store, """
        SELECT ?c ?label ?def ?parent ?flow WHERE {
          ?c rdfs:subClassOf+ mfm:Threat . FILTER(isIRI(?c))
          OPTIONAL { ?c rdfs:label ?label }
          OPTIONAL { ?c skos:definition ?def }
          OPTIONAL { ?c rdfs:subClassOf ?parent . FILTER(isIRI(?parent)) }
          OPTIONAL { ?c mfm:onFlow ?flow }
        }""")
    out: dict[str, ThreatClass] = {}
    for r in found:
        t = out.setdefault(r["c"], ThreatClass(r["c"], r["label"] or local(r["c"]), r["def"]))
        if r["parent"] and r["parent"] not in t.parents:
            t.parents.append(r["parent"])
        if r["flow"] and r["flow"] not in t.flows:
            t.flows.append(r["flow"])
    for t in out.values():
        t.is_family = str(MFM.Threat) in t.parents
        t.parents.sort()
        t.flows.sort()
    return out


def ancestors(cls: str, classes: dict[str, ThreatClass]) -> set[str]:
    """The class and all its superclasses (within ``classes``)."""
    seen, todo = set(), [cls]
    while todo:
        c = todo.pop()
        if c in seen:
            continue
        seen.add(c)
        if c in classes:
            todo.extend(p for p in classes[c].parents if p in classes)
    return seen


def descendants(cls: str, classes: dict[str, ThreatClass]) -> set[str]:
    """The class and all its subclasses (within ``classes``)."""
    children: dict[str, list[str]] = {}
    for c in classes.values():
        for p in c.parents:
            children.setdefault(p, []).append(c.iri)
    seen, todo = set(), [cls]
    while todo:
        c = todo.pop()
        if c not in seen:
            seen.add(c)
            todo.extend(children.get(c, []))
    return seen


def coverage_links(store: Store, inferred: bool = False) -> list[dict]:
    """Coverage links: coverage IRI, defense, threat, degree, weight, kind, note (asserted only unless ``inferred``)."""
    found = rows(store, """
        SELECT ?cov ?defense ?threat ?degree ?weight ?kind ?note WHERE {
          ?cov a mfm:Coverage ; mfm:coveringDefense ?defense ; mfm:coveredThreat ?threat ; mfm:linkKind ?kind .
          OPTIONAL { ?cov mfm:degree ?degree . OPTIONAL { ?degree mfm:weight ?weight } }
          OPTIONAL { ?cov skos:note ?note }
        } ORDER BY ?cov""")
    keep = [r for r in found if inferred or r["kind"] == str(MFM.Asserted)]
    for r in keep:
        r["weight"] = float(r["weight"]) if r["weight"] is not None else 1.0
    return keep


def threat_coverage(store: Store, inferred: bool = False,
                    classes: dict[str, ThreatClass] | None = None) -> dict[str, float]:
    """c(t) per threat class: the highest coverage weight of any link on the class or one of its superclasses.

    This is the SoK's coverage (docs/reference: 1 full, 0.5 partial, 0 none; a threat inherits coverage from
    defenses of its superclasses), taken as the best single defense, as for a portfolio in the DCI.
    """
    classes = classes if classes is not None else threat_classes(store)
    direct: dict[str, float] = {}
    for link in coverage_links(store, inferred):
        direct[link["threat"]] = max(direct.get(link["threat"], 0.0), link["weight"])
    return {c: max((direct.get(a, 0.0) for a in ancestors(c, classes)), default=0.0) for c in classes}


def leaves(classes: dict[str, ThreatClass]) -> set[str]:
    """Threat classes without subclasses (the goal-level classes)."""
    parents = {p for c in classes.values() for p in c.parents}
    return {c for c in classes if c not in parents}
