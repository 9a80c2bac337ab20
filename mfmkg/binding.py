"""Bind query parameters as RDF terms through an inline ``VALUES`` block.

pyoxigraph's ``substitutions`` only accepts variables that appear in the SELECT projection (so not a variable used
in a FILTER of an aggregate query), and a remote endpoint has no such feature at all. Binding through ``VALUES``
works everywhere: the terms are serialised by rdflib (validated, escaped), never spliced in as user text. The block
goes at the start of the outermost WHERE group, so the group's FILTERs see the values; sub-selects do not.
"""

from __future__ import annotations

from typing import Mapping

from rdflib.term import BNode, Literal, Node, URIRef

_VARNAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def term_sparql(term: Node) -> str:
    """A term in SPARQL syntax; refuses IRIs that could break out of ``<...>``."""
    if isinstance(term, URIRef):
        text = str(term)
        if any(c in text for c in '<>"{}|^`\\ \t\r\n'):
            raise ValueError(f"not a valid IRI: {text!r}")
        return f"<{text}>"
    if isinstance(term, Literal):
        return term.n3()
    if isinstance(term, BNode):
        raise ValueError("blank nodes cannot be bound as query parameters")
    raise TypeError(f"not an RDF term: {term!r}")


def where_brace(sparql: str) -> int:
    """Offset of the ``{`` that opens the outermost WHERE group (skipping strings, IRIs and comments)."""
    tops = list(_top_level_braces(sparql))
    if not tops:
        raise ValueError("query has no WHERE group")
    # CONSTRUCT { template } WHERE { ... }: the template comes first, unless it is the short form CONSTRUCT WHERE
    head = sparql[: tops[0]].upper()
    if "CONSTRUCT" in _strip_noise(head) and "WHERE" not in _strip_noise(head).split("CONSTRUCT")[-1]:
        if len(tops) < 2:
            raise ValueError("CONSTRUCT query has no WHERE group")
        return tops[1]
    return tops[0]


def bind_values(sparql: str, bindings: Mapping[str, Node] | None) -> str:
    """The query with ``VALUES (?a ?b) { (t1 t2) }`` opening its WHERE group; unchanged when nothing is bound."""
    if not bindings:
        return sparql
    names = list(bindings)
    for n in names:
        if not n or set(n) - _VARNAME_OK:
            raise ValueError(f"not a variable name: {n!r}")
    row = " ".join(term_sparql(bindings[n]) for n in names)
    block = f" VALUES ({' '.join('?' + n for n in names)}) {{ ({row}) }} "
    at = where_brace(sparql) + 1
    return sparql[:at] + block + sparql[at:]


def _top_level_braces(text: str):
    """Yield offsets of ``{`` at nesting depth 0, outside strings, IRIs and comments."""
    depth, i, n = 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c in "\"'":
            i = _skip_string(text, i)
        elif c == "<" and _looks_like_iri(text, i):
            i = text.index(">", i)
        elif c == "{":
            if depth == 0:
                yield i
            depth += 1
        elif c == "}":
            depth -= 1
        i += 1


def _skip_string(text: str, i: int) -> int:
    q = text[i]
    if text.startswith(q * 3, i):
        end = text.find(q * 3, i + 3)
        return len(text) if end < 0 else end + 2
    j = i + 1
    while j < len(text) and text[j] != q:
        j += 2 if text[j] == "\\" else 1
    return j


def _looks_like_iri(text: str, i: int) -> bool:
    j = text.find(">", i)
    return j > 0 and not any(c in text[i + 1 : j] for c in ' \t\n"{}<')


def _strip_noise(head: str) -> str:
    return " ".join(line.split("#", 1)[0] for line in head.splitlines())
