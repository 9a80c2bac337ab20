"""What the analyses read from the store: threat and defense classes with their descriptors, and coverage links.

Everything is read with a few flat queries (one row per triple) and assembled in Python; the class-level part of
the graph is small (tens of classes, tens of links), so the analyses work on plain objects, not on SPARQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property

from mfmkg.namespaces import INFERRED_GRAPH, MFM, sparql_prefixes
from mfmkg.store.base import SelectResult, Store

THREAT = str(MFM.Threat)
DEFENSE = str(MFM.Defense)
FULL, PARTIAL = str(MFM.FullCoverage), str(MFM.PartialCoverage)
DEFAULT_WEIGHTS = {FULL: Fraction(1), PARTIAL: Fraction(1, 2)}
ASSERTED, INFERRED = "asserted", "inferred"

_P = {str(MFM[n]): n for n in ("onFlow", "onAxis", "manipulatesModality", "level", "cost")}
_RDFS_SUB = "http://www.w3.org/2000/01/rdf-schema#subClassOf"
_RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
_DCT_SOURCE = "http://purl.org/dc/terms/source"


def local(iri: str) -> str:
    """The local name of an IRI (after ``#``, else after the last ``/``)."""
    return iri.rsplit("#", 1)[-1] if "#" in iri else iri.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class ClassInfo:
    """A threat or defense class with the descriptors the analyses use (sets of IRIs)."""

    iri: str
    label: str | None = None
    parents: set[str] = field(default_factory=set)
    flows: set[str] = field(default_factory=set)
    axes: set[str] = field(default_factory=set)
    modalities: set[str] = field(default_factory=set)
    levels: set[str] = field(default_factory=set)
    cost: Fraction | None = None
    sources: set[str] = field(default_factory=set)

    @property
    def id(self) -> str:
        return local(self.iri)

    @property
    def name(self) -> str:
        return self.label or self.id


@dataclass(frozen=True)
class Link:
    """One stored coverage link. ``kind`` is inferred for links in the inferred graph or with mfm:linkKind
    mfm:Inferred, asserted otherwise (the model's default)."""

    iri: str
    defense: str
    threat: str
    weight: Fraction
    degree: str | None
    kind: str
    rule: str | None
    sources: tuple[str, ...]
    graph: str
    note: str | None = None


@dataclass
class Knowledge:
    """The class-level part of the graph: threat classes, defense classes, coverage links, flow ids."""

    threats: dict[str, ClassInfo]
    defenses: dict[str, ClassInfo]
    links: list[Link]
    flow_ids: dict[str, str]

    # -- threats --------------------------------------------------------------------------------------------------
    @cached_property
    def leaves(self) -> list[str]:
        """The threat set T: threat classes without threat subclasses (the goal-level classes), in IRI order."""
        has_child = {p for t in self.threats.values() for p in t.parents}
        return sorted(t for t in self.threats if t not in has_child)

    def ancestors(self, iri: str, classes: dict[str, ClassInfo] | None = None) -> list[str]:
        """``iri`` and every superclass of it among ``classes`` (threats by default), nearest first."""
        classes = self.threats if classes is None else classes
        seen, order, frontier = {iri}, [iri], [iri]
        while frontier:
            nxt = []
            for c in frontier:
                for p in sorted(classes[c].parents if c in classes else ()):
                    if p in classes and p not in seen:
                        seen.add(p)
                        order.append(p)
                        nxt.append(p)
            frontier = nxt
        return order

    def descriptor(self, iri: str, attr: str) -> set[str]:
        """A threat's flows/axes/modalities; when the class states none, those of its nearest ancestor that does."""
        for a in self.ancestors(iri):
            values = getattr(self.threats[a], attr)
            if values:
                return set(values)
        return set()

    def pairs(self, iri: str) -> set[tuple[str, str]]:
        """The (flow, axis) pairs of a threat class."""
        return {(f, a) for f in self.descriptor(iri, "flows") for a in self.descriptor(iri, "axes")}

    # -- defenses -------------------------------------------------------------------------------------------------
    @cached_property
    def candidates(self) -> list[str]:
        """Defense classes that can be deployed: every defense class except mfm:Defense and pure grouping classes
        (classes with defense subclasses and no coverage link of their own, such as mfm:ModelLevelDefense)."""
        has_child = {p for d in self.defenses.values() for p in d.parents}
        linked = {lk.defense for lk in self.links}
        return sorted(d for d in self.defenses if d != DEFENSE and (d not in has_child or d in linked))

    def cost(self, iri: str) -> Fraction:
        c = self.defenses[iri].cost if iri in self.defenses else None
        return c if c is not None else Fraction(1)

    def flow_label(self, flow: str) -> str:
        return self.flow_ids.get(flow) or local(flow)


def _select(store: Store, body: str) -> list[tuple]:
    res = store.query(sparql_prefixes() + body)
    assert isinstance(res, SelectResult)
    return res.rows


def _fraction(term, default: Fraction | None = None) -> Fraction | None:
    try:
        return Fraction(str(term))
    except (ValueError, ZeroDivisionError, TypeError):
        return default


def _classes(store: Store, root: str) -> dict[str, ClassInfo]:
    rows = _select(store, f"""
        SELECT ?c ?p ?o WHERE {{
          ?c rdfs:subClassOf+ <{root}> .
          VALUES ?p {{ rdfs:subClassOf rdfs:label mfm:onFlow mfm:onAxis mfm:manipulatesModality mfm:level
                       mfm:cost dcterms:source }}
          ?c ?p ?o .
        }}""")
    out: dict[str, ClassInfo] = {}
    for c, p, o in rows:
        info = out.setdefault(str(c), ClassInfo(str(c)))
        p, v = str(p), str(o)
        if p == _RDFS_SUB:
            info.parents.add(v)
        elif p == _RDFS_LABEL:
            info.label = min(info.label, v) if info.label else v
        elif p == _DCT_SOURCE:
            info.sources.add(v)
        elif _P.get(p) == "cost":
            c_ = _fraction(o)
            if c_ is not None and c_ >= 0:
                info.cost = c_
        elif p in _P:
            {"onFlow": info.flows, "onAxis": info.axes, "manipulatesModality": info.modalities,
             "level": info.levels}[_P[p]].add(v)
    return out


def _links(store: Store) -> list[Link]:
    rows = _select(store, """
        SELECT ?c ?g ?d ?t ?deg ?w ?k ?rule ?src ?note WHERE {
          GRAPH ?g { ?c mfm:coveringDefense ?d ; mfm:coveredThreat ?t }
          ?c a mfm:Coverage .
          OPTIONAL { ?c mfm:degree ?deg OPTIONAL { ?deg mfm:weight ?w } }
          OPTIONAL { ?c mfm:linkKind ?k }
          OPTIONAL { ?c mfm:rule ?rule }
          OPTIONAL { ?c prov:wasDerivedFrom ?src }
          OPTIONAL { ?c skos:note ?note }
        }""")
    merged: dict[tuple[str, str, str, str], dict] = {}
    for c, g, d, t, deg, w, k, rule, src, note in rows:
        key = (str(c), str(g), str(d), str(t))
        m = merged.setdefault(key, {"deg": None, "w": None, "k": None, "rule": None, "src": set(), "note": None})
        if note is not None:
            m["note"] = str(note)
        if deg is not None:
            m["deg"] = str(deg)
        if w is not None:
            m["w"] = _fraction(w)
        if k is not None:
            m["k"] = str(k)
        if rule is not None:
            m["rule"] = str(rule)
        if src is not None:
            m["src"].add(str(src))
    links = []
    for (c, g, d, t), m in sorted(merged.items()):
        weight = m["w"] if m["w"] is not None else DEFAULT_WEIGHTS.get(m["deg"], Fraction(1, 2))
        weight = min(max(weight, Fraction(0)), Fraction(1))
        kind = INFERRED if g == INFERRED_GRAPH or m["k"] == str(MFM.Inferred) else ASSERTED
        links.append(Link(c, d, t, weight, m["deg"], kind, m["rule"], tuple(sorted(m["src"])), g, m["note"]))
    return links


def load_knowledge(store: Store) -> Knowledge:
    """Read threat classes, defense classes, coverage links (every graph) and flow ids from the store."""
    flow_ids = {str(f): str(i) for f, i in _select(store, "SELECT ?f ?i WHERE { ?f mfm:flowId ?i }")}
    return Knowledge(_classes(store, THREAT), _classes(store, DEFENSE), _links(store), flow_ids)


def evidence_counts(store: Store) -> dict[str, tuple[int, int]]:
    """(attacks, papers) per threat class: attacks typed with it or a subclass; papers cited by those attacks
    (dcterms:source) or linked to it or a subclass by a literature loader (mfm:about), counted once each."""
    attacks = _select(store, """
        SELECT ?t (COUNT(DISTINCT ?a) AS ?n) WHERE {
          { SELECT DISTINCT ?t ?s WHERE { ?t rdfs:subClassOf+ mfm:Threat . ?s rdfs:subClassOf* ?t } }
          ?a a ?s , mfm:Attack .
        } GROUP BY ?t""")
    papers = _select(store, """
        SELECT ?t (COUNT(DISTINCT ?p) AS ?n) WHERE {
          { SELECT DISTINCT ?t ?s WHERE { ?t rdfs:subClassOf+ mfm:Threat . ?s rdfs:subClassOf* ?t } }
          { ?a a ?s , mfm:Attack ; dcterms:source ?p } UNION { ?p mfm:about ?s }
        } GROUP BY ?t""")
    out: dict[str, list[int]] = {}
    for t, n in attacks:
        out.setdefault(str(t), [0, 0])[0] = int(n)
    for t, n in papers:
        out.setdefault(str(t), [0, 0])[1] = int(n)
    return {t: (a, p) for t, (a, p) in out.items()}
