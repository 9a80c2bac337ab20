"""Coverage reasoning: c(d, t) from asserted links (inherited down the threat hierarchy) and, on request, from
inferred links computed by two documented rules and stored in their own named graph (docs/analysis.md).

Inferred links never outrank asserted ones: they are computed only where no asserted link covers the pair, their
degree is capped at partial, and every answer carries the link's kind and rule.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from fractions import Fraction

from rdflib import Literal, URIRef
from rdflib.namespace import OWL, PROV, RDF, SKOS

from mfmkg.errors import StoreError
from mfmkg.namespaces import ID, INFERRED_GRAPH, MFM
from mfmkg.store.base import Store

from .model import ASSERTED, DEFAULT_WEIGHTS, INFERRED, PARTIAL, Knowledge, Link, load_knowledge, local

#: Rule ids and texts, stored as ``mfm:rule "<id>: <text>"``. Bump RULES_VERSION when a rule changes.
RULES = {
    "flow-axis-sibling": "a defense asserted to cover a goal-level threat partially covers every other goal-level "
                         "threat that shares one of its (flow, axis) pairs and one of its manipulated modalities",
    "flow-axis-declared": "a defense declared on flow F and axis A (mfm:onFlow, mfm:onAxis) partially covers every "
                          "goal-level threat on F and A that manipulates a modality of the threats the defense is "
                          "asserted to cover (any modality when it is asserted to cover none)",
}
RULES_VERSION = "1"
BASIS_KEY = "analysis-inferred-basis"


def rule_text(rule_id: str) -> str:
    return f"{rule_id}: {RULES[rule_id]}"


@dataclass(frozen=True)
class Cover:
    """c(d, t) > 0 for one pair, with the link that gives it: ``via`` is the class the link is stated on (the
    threat itself or a superclass), ``kind`` asserted or inferred, ``rule`` set for inferred links."""

    defense: str
    threat: str
    value: Fraction
    degree: str | None
    kind: str
    rule: str | None
    via: str
    link: str
    sources: tuple[str, ...]
    note: str | None = None

    @property
    def inherited(self) -> bool:
        return self.via != self.threat

    def as_dict(self) -> dict:
        return {"defense": self.defense, "threat": self.threat, "value": float(self.value),
                "degree": local(self.degree) if self.degree else None, "kind": self.kind, "rule": self.rule,
                "via": self.via, "inherited": self.inherited, "link": self.link, "sources": list(self.sources),
                "note": self.note}


def resolve(kg: Knowledge, links: list[Link], threat: str) -> dict[str, Cover]:
    """Per defense, the strongest link covering ``threat`` or a superclass of it: the largest weight, then a
    link stated on the threat itself before an inherited one, then the nearest class, then IRI order."""
    up = kg.ancestors(threat)
    rank = {c: i for i, c in enumerate(up)}
    best: dict[str, tuple] = {}
    for lk in links:
        if lk.threat in rank and lk.weight > 0:
            key = (-lk.weight, rank[lk.threat], lk.iri)
            if lk.defense not in best or key < best[lk.defense][0]:
                best[lk.defense] = (key, lk)
    return {d: Cover(d, threat, lk.weight, lk.degree, lk.kind, lk.rule, lk.threat, lk.iri, lk.sources, lk.note)
            for d, (_, lk) in best.items()}


class Coverage:
    """c(d, t) for every defense and threat class, asserted only or with inferred links."""

    def __init__(self, kg: Knowledge, inferred: list[Link] | None, include_inferred: bool):
        self.kg = kg
        self.include_inferred = include_inferred
        asserted = [lk for lk in kg.links if lk.kind == ASSERTED]
        self.links = asserted + (list(inferred or []) if include_inferred else [])
        self._cache: dict[str, dict[str, Cover]] = {}

    def covers(self, threat: str) -> dict[str, Cover]:
        """Defense IRI -> Cover for ``threat`` (any threat class)."""
        if threat not in self._cache:
            self._cache[threat] = resolve(self.kg, self.links, threat)
        return self._cache[threat]

    def c(self, defense: str, threat: str) -> Fraction:
        cov = self.covers(threat).get(defense)
        return cov.value if cov else Fraction(0)

    def matrix(self, defenses: list[str], threats: list[str]) -> dict[tuple[str, str], Fraction]:
        return {(d, t): self.c(d, t) for t in threats for d in defenses if self.c(d, t) > 0}


# -- the inference rules ------------------------------------------------------------------------------------------
def infer_links(kg: Knowledge) -> list[Link]:
    """Inferred links for every (candidate defense, goal-level threat) pair that no asserted link covers."""
    asserted = Coverage(kg, None, include_inferred=False)
    leaves = kg.leaves
    pairs = {t: kg.pairs(t) for t in leaves}
    mods = {t: kg.descriptor(t, "modalities") for t in leaves}
    partial = DEFAULT_WEIGHTS[PARTIAL]
    used_iris = {lk.iri for lk in kg.links if lk.kind == ASSERTED}
    out = []
    for d in kg.candidates:
        covered = {t: asserted.covers(t)[d] for t in leaves if d in asserted.covers(t)}
        known_mods = set().union(*(mods[t] for t in covered)) if covered else None
        info = kg.defenses[d]
        declared = {(f, a) for f in info.flows for a in info.axes}
        for t in leaves:
            if t in covered:
                continue
            basis = [b for b in sorted(covered) if pairs[t] & pairs[b] and _overlap(mods[t], mods[b])]
            if basis:
                rule = "flow-axis-sibling"
                sources = sorted({s for b in basis for s in covered[b].sources})
                note = ("inferred from the asserted coverage of " + ", ".join(local(b) for b in basis)
                        + " (same flow and axis, a shared modality)")
            elif declared & pairs[t] and (known_mods is None or _overlap(mods[t], known_mods)):
                rule = "flow-axis-declared"
                sources = sorted(info.sources)
                on = sorted(f"{kg.flow_label(f)}/{local(a)}" for f, a in declared & pairs[t])
                note = f"inferred from the defense's declared flow and axis ({', '.join(on)})"
            else:
                continue
            iri = _link_iri(d, t, used_iris)
            out.append(Link(iri, d, t, partial, PARTIAL, INFERRED, rule_text(rule), tuple(sources),
                            INFERRED_GRAPH, note))
    return out


def _overlap(a: set[str], b: set[str]) -> bool:
    """Modalities are compatible when they share one, or when either side states none."""
    return not a or not b or bool(a & b)


def _link_iri(defense: str, threat: str, used: set[str]) -> str:
    iri = str(ID[f"coverage/{local(defense)}--{local(threat)}"])
    if iri in used:  # same local names in another namespace (an extension): keep IRIs distinct
        iri += "-" + hashlib.sha256(f"{defense} {threat}".encode()).hexdigest()[:8]
    used.add(iri)
    return iri


def link_triples(links: list[Link]) -> list[tuple]:
    triples = []
    for lk in links:
        s = URIRef(lk.iri)
        triples += [(s, RDF.type, MFM.Coverage), (s, RDF.type, OWL.NamedIndividual),
                    (s, MFM.coveringDefense, URIRef(lk.defense)), (s, MFM.coveredThreat, URIRef(lk.threat)),
                    (s, MFM.degree, URIRef(lk.degree or PARTIAL)), (s, MFM.linkKind, MFM.Inferred),
                    (s, MFM.rule, Literal(lk.rule))]
        if lk.note:
            triples.append((s, SKOS.note, Literal(lk.note)))
        triples += [(s, PROV.wasDerivedFrom, URIRef(src)) for src in lk.sources]
    return triples


# -- keeping the inferred graph current ----------------------------------------------------------------------------
def basis_fingerprint(kg: Knowledge) -> str:
    """A digest of everything the rules read; the stored inferred graph is current when its digest matches."""
    data = {
        "rules": RULES_VERSION,
        "threats": sorted((t.iri, sorted(t.parents), sorted(t.flows), sorted(t.axes), sorted(t.modalities))
                          for t in kg.threats.values()),
        "defenses": sorted((d.iri, sorted(d.parents), sorted(d.flows), sorted(d.axes), sorted(d.sources))
                           for d in kg.defenses.values()),
        "links": sorted((lk.iri, lk.defense, lk.threat, str(lk.weight), lk.sources)
                        for lk in kg.links if lk.kind == ASSERTED),
        "flows": sorted(kg.flow_ids.items()),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def infer(store: Store, kg: Knowledge | None = None) -> list[Link]:
    """Recompute the inferred links and make the inferred graph hold exactly them (``mfmkg analyze infer``)."""
    kg = kg or load_knowledge(store)
    links = infer_links(kg)
    store.replace_graph(INFERRED_GRAPH, link_triples(links))
    store.set_meta(BASIS_KEY, basis_fingerprint(kg))
    return links


def current_inferred(store: Store, kg: Knowledge) -> list[Link]:
    """The inferred links for the current asserted data: those stored when the graph is current, else recomputed
    (and stored, unless the store is read-only). Inferred links kept elsewhere (linkKind Inferred) are added."""
    elsewhere = [lk for lk in kg.links if lk.kind == INFERRED and lk.graph != INFERRED_GRAPH]
    stored = [lk for lk in kg.links if lk.graph == INFERRED_GRAPH]
    if store.get_meta(BASIS_KEY) == basis_fingerprint(kg):
        return stored + elsewhere
    try:
        fresh = infer(store, kg)
    except StoreError:
        fresh = infer_links(kg)
    return fresh + elsewhere


def load_coverage(store: Store, include_inferred: bool) -> Coverage:
    """The coverage relation of the store, with the current inferred links when ``include_inferred``."""
    kg = load_knowledge(store)
    return Coverage(kg, current_inferred(store, kg) if include_inferred else None, include_inferred)
