"""Content negotiation for SPARQL results: which media type answers a query of a given kind, given an Accept header.

Plain functions over the header text. Werkzeug's ``best_match`` is not used: it cannot tell "no Accept header" from
"nothing matches", and it lets ``*/*`` win over an explicit ``q=0`` for the same type; here the most specific media
range that matches an offer decides its quality (RFC 9110, section 12.5.1), and ties go to our order of preference.
"""

from __future__ import annotations

from dataclasses import dataclass

from mfmkg.errors import NotAcceptable
from mfmkg.results import CSV, JSON, TSV, XML

#: (media type answered, media type the store writes), in order of preference; the first is the default.
RESULT_OFFERS = ((JSON, JSON), (XML, XML), (CSV, CSV), (TSV, TSV),
                 ("application/json", JSON))  # plain JSON clients get the SPARQL JSON results under their type
GRAPH_OFFERS = tuple((t, t) for t in ("text/turtle", "application/n-triples", "application/ld+json",
                                      "application/rdf+xml"))


@dataclass(frozen=True)
class Choice:
    content_type: str  # the Content-Type header of the response
    store_type: str  # the media type the store serialises to


def offers_for(kind: str | None) -> tuple[tuple[str, str], ...]:
    """Offers for a query kind (select, ask, graph); an unknown kind gets the results offers."""
    return GRAPH_OFFERS if kind == "graph" else RESULT_OFFERS


def parse_accept(header: str | None) -> list[tuple[str, str, float]]:
    """(type, subtype, q) per media range, lower-cased; malformed ranges are skipped. A bare ``*`` means ``*/*``."""
    ranges = []
    for part in (header or "").split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        if media == "*":
            media = "*/*"
        kind, _, sub = media.partition("/")
        if not kind or not sub or (kind == "*" and sub != "*"):
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = -1.0
        if q >= 0:
            ranges.append((kind, sub, q))
    return ranges


def quality(media_type: str, ranges: list[tuple[str, str, float]]) -> float:
    """The q the client gives ``media_type``: that of the most specific matching range, 0 if none matches."""
    kind, _, sub = media_type.partition("/")
    best_specificity, best_q = -1, 0.0
    for rkind, rsub, q in ranges:
        if (rkind, rsub) == (kind, sub):
            specificity = 2
        elif (rkind, rsub) == (kind, "*"):
            specificity = 1
        elif (rkind, rsub) == ("*", "*"):
            specificity = 0
        else:
            continue
        if specificity > best_specificity or (specificity == best_specificity and q > best_q):
            best_specificity, best_q = specificity, q
    return best_q


def choose(accept: str | None, kind: str | None) -> Choice:
    """The representation for a query of ``kind``; the default without an Accept header, NotAcceptable (406)
    when the header accepts none of the offers."""
    offers = offers_for(kind)
    if not (accept or "").strip():
        return Choice(*offers[0])
    ranges = parse_accept(accept)
    best, best_q = None, 0.0
    for answered, written in offers:
        q = quality(answered, ranges)
        if q > best_q:
            best, best_q = Choice(answered, written), q
    if best is None:
        names = ", ".join(answered for answered, _ in offers)
        what = "CONSTRUCT/DESCRIBE" if kind == "graph" else "SELECT/ASK"
        raise NotAcceptable(f"a {what} query can be answered as {names}; the request accepts none of them "
                            f"(Accept: {accept})")
    return best


def content_type_header(media_type: str) -> str:
    """Content-Type value: text types say their charset (UTF-8), so clients do not fall back to Latin-1."""
    return f"{media_type}; charset=utf-8" if media_type.startswith("text/") else media_type
