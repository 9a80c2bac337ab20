"""Entries and their links as RDF: N-Triples lines written straight into a source graph (docs/loading.md).

Built as text, not as rdflib terms: N-Triples lines cost a few string joins each and pyoxigraph parses them
far faster than terms can be converted one by one (the 100k-entry benchmark depends on it). No line is written
twice (evidence nodes once per source, a repeated paper only with its new links), so the lines written are the
triples stored.
``triples()`` turns lines back into rdflib triples for tests and callers that want terms.

Per publication (IRI from ``identity.publication_iri``), in the graph of the source that read it:
    <pub> a mfm:Publication ; dcterms:title ; dcterms:issued (xsd:gYear | xsd:gYearMonth) ; mfm:venue ;
          bibo:doi ; dcterms:identifier "arXiv:..." ; mfm:url (xsd:anyURI) ; dcterms:abstract ;
          dcterms:subject (each keyword) ; bibo:authorList <pub/authors> ; mfm:sourceLocation "file:line" ;
          mfm:linkEvidence <evidence> (one per link and field it rests on) .
    <pub/authors> rdf:_1 "First Author" ; rdf:_2 "Second Author" ...
Per source and reason (shared by every publication of the source linked for that reason):
    <evidence> a mfm:LinkEvidence ; mfm:topic <threat class | defense class | modality | paper kind> ;
               mfm:linkKind mfm:Asserted|mfm:Inferred ; mfm:evidence "title: jailbreak" ; mfm:confidence 0.9 ;
               prov:wasDerivedFrom <source> .
A paper's topics are the path ``mfm:linkEvidence/mfm:topic``; nothing else is materialised, which keeps a
publication at about 17 triples (the 100k-entry benchmark's memory budget depends on it).
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote
from datetime import datetime, timezone

from rdflib import Graph

from .classify import ASSERTED, Classification
from .identity import EVIDENCE_BASE, source_iri
from .vocabulary import Vocabulary

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
DCT = "http://purl.org/dc/terms/"
BIBO = "http://purl.org/ontology/bibo/"
PROV = "http://www.w3.org/ns/prov#"
MFM = "https://w3id.org/mfmkg/ont#"

A = f"<{RDF}type>"
P_TITLE, P_ISSUED, P_ID, P_ABSTRACT, P_SUBJECT = (f"<{DCT}{n}>" for n in
                                                   ("title", "issued", "identifier", "abstract", "subject"))
P_DOI, P_AUTHORS = f"<{BIBO}doi>", f"<{BIBO}authorList>"
P_DERIVED = f"<{PROV}wasDerivedFrom>"
(P_VENUE, P_URL, P_LOCATION, P_EVIDENCE, P_TOPIC, P_LINK_KIND, P_EVIDENCE_TEXT, P_CONFIDENCE) = (
    f"<{MFM}{n}>" for n in ("venue", "url", "sourceLocation", "linkEvidence", "topic", "linkKind", "evidence",
                            "confidence"))
C_PUBLICATION, C_EVIDENCE, C_SOURCE = f"<{MFM}Publication>", f"<{MFM}LinkEvidence>", f"<{MFM}LiteratureSource>"
K_ASSERTED, K_INFERRED = f"<{MFM}Asserted>", f"<{MFM}Inferred>"
T_GYEAR, T_GYEARMONTH, T_URI, T_DECIMAL, T_INT, T_DATETIME = (
    f"^^<{XSD}{n}>" for n in ("gYear", "gYearMonth", "anyURI", "decimal", "integer", "dateTime"))

_MEMBERS = 64
_MEMBER = [f"<{RDF}_{i}>" for i in range(_MEMBERS)]  # rdf:_1, rdf:_2, ... written once

_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})
_LOCAL = re.compile(r"[^A-Za-z0-9_-]+")


def literal(text: str) -> str:
    """An N-Triples string literal."""
    if '"' in text or "\\" in text or "\n" in text or "\r" in text:
        text = text.translate(_ESCAPES)
    return f'"{text}"'


def issued(year: int, month: int | None) -> str:
    if month:
        return f'"{year:04d}-{month:02d}"{T_GYEARMONTH}'
    return f'"{year:04d}"{T_GYEAR}'


class GraphBuilder:
    """Lines for one source: publications with their links, each evidence node once, the source description."""

    def __init__(self, source: str, vocab: Vocabulary):
        self.source = source
        self.source_ref = f"<{source_iri(source)}>"
        self.vocab = vocab
        self._evidence: dict = {}      # Evidence -> the link line's "<linkEvidence> <node> .\n"
        self._node_iris: set[str] = set()

    def publication(self, iri: str, entry, where: str) -> str:
        """The metadata lines of one publication (no links), as one string (pieces joined once: faster than
        formatting line by line, which the 100k-entry benchmark measures)."""
        s = f"<{iri}> "
        out = [s, A, " ", C_PUBLICATION, " .\n", s, P_TITLE, " ", literal(entry.title), " .\n"]
        if entry.year:
            out += (s, P_ISSUED, " ", issued(entry.year, entry.month), " .\n")
        if entry.venue:
            out += (s, P_VENUE, " ", literal(entry.venue), " .\n")
        if entry.doi:
            out += (s, P_DOI, " ", literal(entry.doi), " .\n")
        if entry.arxiv_id:
            out += (s, P_ID, " ", literal("arXiv:" + entry.arxiv_id), " .\n")
        if entry.url:
            out += (s, P_URL, " ", literal(entry.url), T_URI, " .\n")
        if entry.abstract:
            out += (s, P_ABSTRACT, " ", literal(entry.abstract), " .\n")
        for kw in dict.fromkeys(entry.keywords) if entry.keywords else ():
            out += (s, P_SUBJECT, " ", literal(kw), " .\n")
        if entry.authors:
            seq = f"<{iri}/authors> "
            out += (s, P_AUTHORS, " ", seq, ".\n")
            for i, name in enumerate(entry.authors, 1):
                out += (seq, _MEMBER[i] if i < _MEMBERS else f"<{RDF}_{i}>", " ", literal(name), " .\n")
        out += (s, P_LOCATION, " ", literal(where), " .\n")
        return "".join(out)

    def links(self, iri: str, cls: Classification, topics=None) -> tuple[str, int, int]:
        """Link lines (and the lines of evidence nodes not written before) for ``topics`` (default: all links),
        as one string; returns (lines, asserted links, inferred links)."""
        s = f"<{iri}> "
        out = ""
        n_asserted = n_inferred = 0
        links, nodes = cls.links, self._evidence
        for topic in (links if topics is None else topics):
            evidence = links[topic]
            if evidence[0].kind == ASSERTED:
                n_asserted += 1
            else:
                n_inferred += 1
            for ev in evidence:
                line = nodes.get(ev)
                if line is None:
                    line, node_lines = self._evidence_node(ev)
                    out += node_lines
                out += s + line
        return out, n_asserted, n_inferred

    def _evidence_node(self, ev) -> tuple[str, str]:
        """(the link line's predicate and object, the node's own lines) for a new evidence."""
        local = _LOCAL.sub("-", ev.topic.rsplit("#", 1)[-1].rsplit("/", 1)[-1]).strip("-") or "topic"
        text = quote(ev.text.lower().replace(" ", "-"), safe="")
        if len(text) > 60:  # long tags: a readable prefix and a digest of the whole
            text = text[:40] + "-" + hashlib.sha1(ev.text.encode()).hexdigest()[:12]
        if ev.topic.rsplit("#", 1)[0] + "#" != MFM:  # a topic from an extension namespace
            local += "-" + hashlib.sha1(ev.topic.encode()).hexdigest()[:8]
        node = f"{EVIDENCE_BASE}{self.source}/{local}-{ev.kind}-{ev.field}-{text}"
        if node in self._node_iris:  # another evidence with the same name (other case or confidence): its own node
            node += "-" + hashlib.sha1(repr(tuple(ev)).encode()).hexdigest()[:8]
        self._node_iris.add(node)
        line = self._evidence[ev] = f"{P_EVIDENCE} <{node}> .\n"
        e = f"<{node}> "
        return line, (f"{e}{A} {C_EVIDENCE} .\n{e}{P_TOPIC} <{ev.topic}> .\n"
                      f"{e}{P_LINK_KIND} {K_ASSERTED if ev.kind == ASSERTED else K_INFERRED} .\n"
                      f"{e}{P_EVIDENCE_TEXT} {literal(ev.description)} .\n"
                      f'{e}{P_CONFIDENCE} "{ev.confidence:g}"{T_DECIMAL} .\n'
                      f"{e}{P_DERIVED} {self.source_ref} .\n")

    def source_description(self, *, files: list[str], entries: int, publications: int, asserted: int,
                           inferred: int, digest: str, loaded_at: datetime | None = None) -> list[str]:
        s = f"{self.source_ref} "
        when = (loaded_at or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
        out = [f"{s}{A} {C_SOURCE} .\n", f"{s}<{RDFS}label> {literal(self.source)} .\n",
               f'{s}<{MFM}loadedAt> "{when}"{T_DATETIME} .\n',
               f'{s}<{MFM}entryCount> "{entries}"{T_INT} .\n',
               f'{s}<{MFM}publicationCount> "{publications}"{T_INT} .\n',
               f'{s}<{MFM}assertedLinkCount> "{asserted}"{T_INT} .\n',
               f'{s}<{MFM}inferredLinkCount> "{inferred}"{T_INT} .\n',
               f"{s}<{MFM}contentDigest> {literal(digest)} .\n"]
        out.extend(f"{s}<{MFM}inputFile> {literal(f)} .\n" for f in dict.fromkeys(files))
        return out


def triples(lines) -> set:
    """rdflib triples of N-Triples lines (for tests and small callers)."""
    g = Graph()
    g.parse(data="".join(lines), format="nt")
    return set(g)
