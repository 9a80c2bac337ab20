"""Conversion between rdflib terms (our public model) and pyoxigraph terms (the embedded engine's)."""

from __future__ import annotations

import pyoxigraph as ox
from rdflib.namespace import XSD
from rdflib.term import BNode, Literal, Node, URIRef

_XSD_STRING = str(XSD.string)


def to_rdflib(term) -> Node | None:
    """A pyoxigraph term as an rdflib term (xsd:string literals become plain literals, as rdflib expects)."""
    if term is None:
        return None
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.Literal):
        if term.language:
            return Literal(term.value, lang=term.language)
        dt = term.datatype.value
        return Literal(term.value) if dt == _XSD_STRING else Literal(term.value, datatype=URIRef(dt))
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    return Literal(str(term))  # RDF-star quoted triples: shown as text, never produced by mfmkg itself


def to_oxigraph(term: Node):
    """An rdflib term as a pyoxigraph term."""
    if isinstance(term, URIRef):
        return ox.NamedNode(str(term))
    if isinstance(term, BNode):
        return ox.BlankNode(str(term))
    if isinstance(term, Literal):
        if term.language:
            return ox.Literal(str(term), language=term.language)
        if term.datatype is not None:
            return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)))
        return ox.Literal(str(term))
    raise TypeError(f"not an RDF term: {term!r}")
