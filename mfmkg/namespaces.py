"""IRIs used everywhere: our one term namespace, our data IRIs, the named graphs and standard vocabularies."""

from rdflib import Namespace
from rdflib.namespace import DCTERMS, OWL, PROV, RDF, RDFS, SKOS, XSD

#: Our terms (classes, properties, taxonomy individuals) live in this one namespace.
MFM = Namespace("https://w3id.org/mfmkg/ont#")
#: The ontology IRI; the version IRI appends the version number.
ONTOLOGY_IRI = "https://w3id.org/mfmkg/ont"
#: Instance data (attacks, publications, coverage assertions) minted by us.
ID = Namespace("https://w3id.org/mfmkg/id/")
BIBO = Namespace("http://purl.org/ontology/bibo/")
SH = Namespace("http://www.w3.org/ns/shacl#")

#: Named graphs.
GRAPH = Namespace("https://w3id.org/mfmkg/graph/")
ONTOLOGY_GRAPH = str(GRAPH["ontology"])
INFERRED_GRAPH = str(GRAPH["inferred"])
SOURCE_GRAPH_PREFIX = str(GRAPH["source/"])
META_GRAPH = str(GRAPH["meta"])

PREFIXES = {
    "mfm": str(MFM),
    "id": str(ID),
    "rdf": str(RDF),
    "rdfs": str(RDFS),
    "owl": str(OWL),
    "xsd": str(XSD),
    "skos": str(SKOS),
    "dcterms": str(DCTERMS),
    "prov": str(PROV),
    "bibo": str(BIBO),
    "sh": str(SH),
}


def sparql_prefixes() -> str:
    """PREFIX lines for every prefix above, for queries built in code."""
    return "".join(f"PREFIX {p}: <{iri}>\n" for p, iri in PREFIXES.items())


def source_graph(name: str) -> str:
    """The named graph holding everything one literature source added."""
    return SOURCE_GRAPH_PREFIX + name
