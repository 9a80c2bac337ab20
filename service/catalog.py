"""What the REST resources are made of: the kinds of things (threats, defenses, attacks, ...), their stable ids and
their descriptors, read from the graph with a few small SPARQL queries.

An id is the part of the IRI after the kind's base (``attack/A01``, ``pub/arxiv-2310.04655``) or, for ontology
terms, the local name (``MisleadingJailbreak``). Descriptors are every property of the resource, keyed by a short
name (the local name of ``mfm:`` properties, ``label``, ``definition``, ``title``, ...); properties that hold one
value are scalars, the others lists, so every row of a kind has the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from rdflib.namespace import DCTERMS, OWL, PROV, RDF, RDFS, SKOS
from rdflib.term import Literal, URIRef

from mfmkg.binding import term_sparql
from mfmkg.named_queries import local_name
from mfmkg.namespaces import BIBO, ID, MFM, sparql_prefixes
from mfmkg.store.base import SelectResult, Store
from mfmkg.tables import compact

#: Short keys of the standard properties; ``mfm:`` properties use their local name, others their CURIE.
KEYS = {
    str(RDFS.label): "label", str(SKOS.definition): "definition", str(SKOS.altLabel): "altLabels",
    str(SKOS.hiddenLabel): "hiddenLabels", str(SKOS.note): "notes", str(SKOS.editorialNote): "editorialNotes",
    str(RDFS.subClassOf): "superclasses", str(RDF.type): "types", str(DCTERMS.source): "sources",
    str(DCTERMS.title): "title", str(DCTERMS.issued): "issued", str(DCTERMS.identifier): "identifier",
    str(BIBO.doi): "doi", str(RDFS.isDefinedBy): "definedBy", str(PROV.wasDerivedFrom): "derivedFrom",
    str(RDFS.comment): "comment",
}
#: Keys that hold one value (the ontology's shapes allow at most one); every other key is a list.
SCALARS = {"label", "definition", "title", "issued", "identifier", "doi", "url", "venue", "sokRow", "flowId",
           "direction", "cost", "weight", "uncertainIdentification", "family", "comment"}
#: Types that say nothing about what a thing is in our model.
_NOISE_TYPES = {str(OWL.NamedIndividual), str(OWL.Class), str(SKOS.Concept)}


@dataclass(frozen=True)
class Kind:
    name: str  # the URL segment and list name: "threats"
    pattern: str  # a SPARQL group binding ?s to every member
    base: str | None = None  # the IRI prefix ids are taken after; None: the local name
    is_class: bool = False  # members are classes (types are not descriptors; superclasses are)
    paged: bool = False

    def id_of(self, iri: str) -> str:
        return iri[len(self.base):] if self.base and iri.startswith(self.base) else local_name(iri)


KINDS = {k.name: k for k in (
    Kind("threats", "?s rdfs:subClassOf+ mfm:Threat .", is_class=True),
    Kind("defenses", "?s rdfs:subClassOf+ mfm:Defense .", is_class=True),
    Kind("attacks", "?s a mfm:Attack .", base=str(ID) + "attack/"),
    Kind("modalities", "?s a mfm:Modality ."),
    Kind("flows", "?s a mfm:InformationFlow ."),
    Kind("publications", "?s a mfm:Publication .", base=str(ID) + "pub/", paged=True),
)}


def select(store: Store, body: str, bindings: dict | None = None) -> SelectResult:
    res = store.query(sparql_prefixes() + body, bindings=bindings)
    assert isinstance(res, SelectResult)
    return res


def iri_values(iris: list[str]) -> str:
    """A ``VALUES ?s { ... }`` block, each IRI serialised (and checked) by the binding module."""
    return "VALUES ?s { " + " ".join(term_sparql(URIRef(i)) for i in iris) + " }"


def members(store: Store, kind: Kind) -> list[str]:
    """Every member IRI, in id order (for the small, unpaged kinds)."""
    res = select(store, f"SELECT DISTINCT ?s WHERE {{ {kind.pattern} FILTER(isIRI(?s)) }}")
    return sorted((str(r[0]) for r in res.rows), key=lambda i: (kind.id_of(i), i))


def member_page(store: Store, kind: Kind, offset: int, limit: int) -> tuple[list[str], int]:
    """One page of members in the store's own order, and how many members there are.

    Not sorted: pyoxigraph's ORDER BY decodes and sorts every member (2.5 s at 100k papers), while the store's
    index order with OFFSET/LIMIT costs about 0.1 s. That order is stable while the data is unchanged; the total
    goes into the paging token so that a page asked for after the list changed is refused, not silently shifted.
    """
    total = select(store, f"SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE {{ {kind.pattern} FILTER(isIRI(?s)) }}")
    res = select(store, f"SELECT DISTINCT ?s WHERE {{ {kind.pattern} FILTER(isIRI(?s)) }} "
                        f"OFFSET {int(offset)} LIMIT {int(limit)}")
    return [str(r[0]) for r in res.rows], int(total.rows[0][0].toPython())


def resolve(store: Store, kind: Kind, ident: str) -> str | None:
    """The IRI of the member with this id, or None."""
    if kind.base:
        candidates = [kind.base + ident]
    else:
        candidates = [str(MFM) + ident]
    for iri in candidates:
        if _is_iri(iri) and select(store, f"SELECT ?s WHERE {{ {kind.pattern} }} LIMIT 1", {"s": URIRef(iri)}).rows:
            return iri
    if kind.paged:
        return None
    matches = [i for i in members(store, kind) if kind.id_of(i) == ident]
    return matches[0] if matches else None


def _is_iri(text: str) -> bool:
    return not any(c in text for c in '<>"{}|^`\\ \t\r\n')


def json_value(term) -> object:
    """A JSON value: IRIs as strings, numbers and booleans as such, other literals as their lexical form."""
    if isinstance(term, Literal):
        py = term.toPython()
        if isinstance(py, bool) or isinstance(py, (int, float)):
            return py
        if isinstance(py, Decimal):
            return float(py)
        return str(term)
    return None if term is None else str(term)


def json_rows(result: SelectResult) -> list[dict]:
    """SELECT rows as {variable: JSON value} (decimals as numbers, unbound as None)."""
    return [{v: json_value(t) for v, t in zip(result.variables, row)} for row in result.rows]


def key_of(pred: str) -> str:
    if pred in KEYS:
        return KEYS[pred]
    if pred.startswith(str(MFM)):
        return pred[len(str(MFM)):]
    short = compact(pred)
    return short if isinstance(short, str) else pred


def describe(store: Store, kind: Kind, iris: list[str]) -> dict[str, dict]:
    """The descriptors of each IRI (every property but noise types), as {iri: {key: value or [values]}}."""
    if not iris:
        return {}
    res = select(store, f"SELECT ?s ?p ?o WHERE {{ {iri_values(iris)} ?s ?p ?o }}")
    found: dict[str, dict[str, set]] = {i: {} for i in iris}
    for s, p, o in res.rows:
        if str(p) == str(RDF.type) and (kind.is_class or str(o) in _NOISE_TYPES):
            continue
        found[str(s)].setdefault(key_of(str(p)), set()).add(o)
    out = {}
    for iri, props in found.items():
        d = {}
        for key in sorted(props):
            vals = sorted((json_value(t) for t in props[key]), key=lambda v: (str(type(v)), str(v)))
            d[key] = vals[0] if key in SCALARS else vals
        out[iri] = d
    return out
