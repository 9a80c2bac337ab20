"""Serialise query results in the W3C SPARQL 1.1 result formats and the common RDF syntaxes.

rdflib has no TSV results writer, and capped results cannot go back through pyoxigraph's writer, so the four
result formats are written here, streaming-friendly and exactly as the W3C specs describe them.
"""

from __future__ import annotations

import csv
import io
import json
from xml.sax.saxutils import escape, quoteattr

from rdflib import Graph
from rdflib.term import BNode, URIRef

from mfmkg.store.base import AskResult, GraphResult, QueryResult, RawResult

JSON = "application/sparql-results+json"
XML = "application/sparql-results+xml"
CSV = "text/csv"
TSV = "text/tab-separated-values"
RDF_FORMATS = {
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "application/ld+json": "json-ld",
    "application/rdf+xml": "xml",
}
RESULT_FORMATS = (JSON, XML, CSV, TSV)


def serialize(result: QueryResult, media_type: str) -> RawResult:
    """Serialise ``result`` as ``media_type``; raises ValueError if the type does not fit the result kind."""
    if isinstance(result, GraphResult):
        if media_type not in RDF_FORMATS:
            raise ValueError(f"{media_type} is not an RDF serialisation")
        g = Graph()
        for t in result.triples:
            g.add(t)
        body = g.serialize(format=RDF_FORMATS[media_type], encoding="utf-8")
        return RawResult(body, media_type, "graph", result.truncated)
    writer = {JSON: _json, XML: _xml, CSV: _csv, TSV: _tsv}.get(media_type)
    if writer is None:
        raise ValueError(f"{media_type} is not a SPARQL results format")
    kind = "ask" if isinstance(result, AskResult) else "select"
    return RawResult(writer(result).encode("utf-8"), media_type, kind, getattr(result, "truncated", False))


def _json_term(t) -> dict:
    if isinstance(t, URIRef):
        return {"type": "uri", "value": str(t)}
    if isinstance(t, BNode):
        return {"type": "bnode", "value": str(t)}
    d = {"type": "literal", "value": str(t)}
    if t.language:
        d["xml:lang"] = t.language
    elif t.datatype is not None:
        d["datatype"] = str(t.datatype)
    return d


def _json(r) -> str:
    if isinstance(r, AskResult):
        return json.dumps({"head": {}, "boolean": r.value})
    bindings = [{v: _json_term(t) for v, t in zip(r.variables, row) if t is not None} for row in r.rows]
    return json.dumps({"head": {"vars": r.variables}, "results": {"bindings": bindings}}, ensure_ascii=False)


def _xml_term(t) -> str:
    if isinstance(t, URIRef):
        return f"<uri>{escape(str(t))}</uri>"
    if isinstance(t, BNode):
        return f"<bnode>{escape(str(t))}</bnode>"
    attr = ""
    if t.language:
        attr = f" xml:lang={quoteattr(t.language)}"
    elif t.datatype is not None:
        attr = f" datatype={quoteattr(str(t.datatype))}"
    return f"<literal{attr}>{escape(str(t))}</literal>"


def _xml(r) -> str:
    out = ['<?xml version="1.0"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">']
    if isinstance(r, AskResult):
        out.append(f"<head/><boolean>{'true' if r.value else 'false'}</boolean></sparql>")
        return "\n".join(out)
    out.append("<head>" + "".join(f"<variable name={quoteattr(v)}/>" for v in r.variables) + "</head><results>")
    for row in r.rows:
        cells = "".join(
            f"<binding name={quoteattr(v)}>{_xml_term(t)}</binding>" for v, t in zip(r.variables, row) if t is not None
        )
        out.append(f"<result>{cells}</result>")
    out.append("</results></sparql>")
    return "\n".join(out)


def _csv(r) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")  # RFC 4180 line ends, as the SPARQL CSV spec asks
    if isinstance(r, AskResult):
        w.writerow(["_askResult"])
        w.writerow(["true" if r.value else "false"])
        return buf.getvalue()
    w.writerow(r.variables)
    for row in r.rows:
        w.writerow(["" if t is None else (f"_:{t}" if isinstance(t, BNode) else str(t)) for t in row])
    return buf.getvalue()


def _tsv(r) -> str:
    if isinstance(r, AskResult):
        return "?_askResult\n" + ("true" if r.value else "false") + "\n"
    lines = ["\t".join("?" + v for v in r.variables)]
    for row in r.rows:
        lines.append("\t".join("" if t is None else _tsv_term(t) for t in row))
    return "\n".join(lines) + "\n"


def _tsv_term(t) -> str:
    """N-Triples/Turtle syntax, with tab and newline escaped as the TSV spec requires."""
    return t.n3().replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
