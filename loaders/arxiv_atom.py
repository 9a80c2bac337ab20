"""arXiv API Atom feed parser (``export.arxiv.org/api/query`` responses saved to a file).

Mapping: ``id`` (``http://arxiv.org/abs/2306.13213v2``) -> arxiv_id (version stripped) and url (the abs page
without version); title and summary (whitespace collapsed: the API wraps lines); ``author/name`` in order;
``published`` -> year, month; ``arxiv:doi`` -> doi; ``arxiv:journal_ref`` -> venue; ``category/@term`` (e.g.
``cs.CR``) -> keywords. An arXiv API error entry (``id`` under ``/api/errors``) is an unreadable entry.

Safety: the document is parsed with expat directly. A DOCTYPE or any entity declaration is refused before
and during parsing (no entity expansion, so no "billion laughs"; no external entities). Expat also reports the
line of each ``<entry>``, which ElementTree does not keep.
"""

from __future__ import annotations

import re
from typing import Iterator
from xml.etree.ElementTree import TreeBuilder
from xml.parsers import expat

from mfmkg.errors import LoadError

from . import _common as c
from .record import Entry

LABEL = "an arXiv Atom feed"
ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.I)


class _Refused(Exception):
    pass


def parse(source: c.Source, name: str | None = None) -> Iterator[Entry]:
    """Entries of an arXiv Atom feed file, path or stream."""
    name = c.source_name(source, name)
    yield from parse_text(c.read_text(source, name, LABEL), name)


def _tree(text: str, name: str):
    """The feed element and the line of each ``<entry>`` start tag, in document order."""
    m = _DTD.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        raise LoadError(name, line, None, f"XML with a {m.group(1).upper()} declaration refused: "
                        "DTDs and entities are not allowed (entity-expansion attack risk)")
    builder = TreeBuilder()
    parser = expat.ParserCreate(encoding="utf-8", namespace_separator="}")
    lines: list[int] = []

    def qname(n: str) -> str:
        return "{" + n if "}" in n else n

    def start(tag, attrs):
        tag = qname(tag)
        if tag == ATOM + "entry":
            lines.append(parser.CurrentLineNumber)
        builder.start(tag, {qname(k): v for k, v in attrs.items()})

    def refuse(*_args):
        raise _Refused()

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda tag: builder.end(qname(tag))
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(text, True)
    except _Refused:
        raise LoadError(name, parser.CurrentLineNumber, None,
                        "XML with a DTD or entity declaration refused (entity-expansion attack risk)") from None
    except expat.ExpatError as e:
        raise LoadError(name, e.lineno, None,
                        f"not well-formed XML: {expat.ErrorString(e.code)} (column {e.offset + 1})") from None
    root = builder.close()
    if root.tag != ATOM + "feed":
        raise LoadError(name, 1, None, f"not an Atom feed: the root element is {root.tag!r}, not Atom 'feed'")
    return root, lines


def parse_text(text: str, name: str) -> Iterator[Entry]:
    root, lines = _tree(text, name)
    finish = c.Finisher()
    for line, el in zip(lines, root.iter(ATOM + "entry")):
        ident = (el.findtext(ATOM + "id") or "").strip()
        if "/api/errors" in ident:
            reason = c.squash(el.findtext(ATOM + "summary")) or "error"
            yield c.unreadable(name, line, f"arXiv API error entry: {reason}")
            continue
        yield finish(_entry(el, ident, name, line))


def _entry(el, ident: str, name: str, line: int) -> Entry:
    e = Entry(file=name, line=line)
    p = e.problems
    if ident:
        e.arxiv_id = c.arxiv_id(ident, p)
        e.url = f"https://arxiv.org/abs/{e.arxiv_id}" if e.arxiv_id else ident
    else:
        p.append(("arxiv_id", "entry has no <id>"))
    e.title = c.squash(el.findtext(ATOM + "title"))
    e.abstract = c.squash(el.findtext(ATOM + "summary"))
    e.authors = [n for n in (c.squash(a.findtext(ATOM + "name")) for a in el.findall(ATOM + "author")) if n]
    published = c.squash(el.findtext(ATOM + "published"))
    if published:
        e.year, e.month = c.date(published, p)
    doi = c.squash(el.findtext(ARXIV + "doi"))
    if doi:
        e.doi = c.doi(doi.split()[0], p)  # several DOIs are space-separated; the first is the paper's
    e.venue = c.squash(el.findtext(ARXIV + "journal_ref"))
    e.keywords = [t for t in (c.squash(x.get("term")) for x in el.findall(ATOM + "category")) if t]
    return e
