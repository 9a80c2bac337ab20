"""REST resources over the graph: ``/threats``, ``/defenses``, ``/attacks``, ``/modalities``, ``/flows`` and
``/publications``, each a list and an item per stable id (``/threats/MisleadingJailbreak``, ``/attacks/A01``,
``/publications/arxiv-2310.04655``), as JSON or CSV (``.json``/``.csv`` suffix or ``Accept``).

A list row holds the resource's descriptors; the item holds the same fields plus its links (subclasses, attacks,
covering defenses with degree, kind and sources, papers, ...), so every list row equals the start of its item.
Item CSV is the row alone. ``/publications`` is paged (``_size``, ``_next``) in the store's order, as it grows
with the literature (see ``catalog.member_page``); the other lists are small class-level sets served whole.
"""

from __future__ import annotations

import re

from flask import Blueprint, url_for
from rdflib import URIRef

from mfmkg.errors import BadRequest, NotFound
from mfmkg.named_queries import get_query, run_named
from mfmkg.namespaces import MFM
from mfmkg.service import paging
from mfmkg.service.catalog import (KINDS, Kind, describe, json_rows, json_value, member_page, members, resolve,
                                   select)
from mfmkg.service.context import ctx
from mfmkg.service.representation import choose, columns_of, json_response, respond, rows_csv, vary_on_accept
from mfmkg.store.base import Store

bp = Blueprint("resources", __name__)
#: Papers listed in an item; the rest are counted, and a threat links to its full, paged list.
PAPERS_SHOWN = 100
vary_on_accept(bp)


def href(kind_name: str, iri: str) -> str:
    return url_for(f"resources.{kind_name}_item", id=KINDS[kind_name].id_of(iri))


def ref(kind_name: str, iri: str, label: object = None, **extra) -> dict:
    """A link to another resource: id, IRI, label and its URL here."""
    return {"id": KINDS[kind_name].id_of(iri), "iri": iri, "label": label, "href": href(kind_name, iri), **extra}


def build_rows(store: Store, kind: Kind, iris: list[str]) -> list[dict]:
    descriptors = describe(store, kind, iris)
    rows = []
    for iri in iris:
        d = descriptors[iri]
        row = {"id": kind.id_of(iri), "iri": iri, "href": href(kind.name, iri), **d}
        if kind.name == "attacks":
            row["threat"] = next((t for t in d.get("types", []) if t != str(MFM.Attack)), None)
        rows.append(row)
    return rows


def _pairs(store: Store, body: str, iri: str) -> list[tuple]:
    """Rows of a query about one resource (bound as ?s), as JSON values."""
    return [tuple(json_value(t) for t in r) for r in select(store, body, {"s": URIRef(iri)}).rows]


def threat_links(store: Store, iri: str) -> dict:
    subclasses = _pairs(store, "SELECT ?c (SAMPLE(?l) AS ?label) WHERE { ?c rdfs:subClassOf ?s "
                               "OPTIONAL { ?c rdfs:label ?l } } GROUP BY ?c ORDER BY ?c", iri)
    attacks = _pairs(store, "SELECT ?a (SAMPLE(?l) AS ?label) (SAMPLE(?cls) AS ?class) WHERE { "
                            "?cls rdfs:subClassOf* ?s . ?a a ?cls , mfm:Attack . OPTIONAL { ?a rdfs:label ?l } } "
                            "GROUP BY ?a ORDER BY ?a", iri)
    defenses = json_rows(run_named(store, get_query("defenses-for-threat"), {"threat": iri}))
    papers = json_rows(run_named(store, get_query("papers-for-threat"), {"threat": iri}))
    tid = KINDS["threats"].id_of(iri)
    return {
        "subclasses": [ref("threats", c, label) for c, label in subclasses],
        "attacks": [ref("attacks", a, label, threat=cls) for a, label, cls in attacks],
        "defenses": [ref("defenses", r["defense"], r["defenseLabel"], degree=r["degree"], weight=r["weight"],
                         kind=r["kind"], sources=_split(r["sources"]), via=r["via"], inherited=r["inherited"])
                     for r in defenses],
        "papers": [ref("publications", r["paper"], r["title"], year=r["year"], attacks=_split(r["attacks"]),
                       confidence=r["confidence"]) for r in papers[:PAPERS_SHOWN]],
        "paperCount": len(papers),
        "papersHref": url_for("queries.run_query", name="papers-for-threat", threat=tid),
    }


def defense_links(store: Store, iri: str) -> dict:
    subclasses = _pairs(store, "SELECT ?c (SAMPLE(?l) AS ?label) WHERE { ?c rdfs:subClassOf ?s "
                               "OPTIONAL { ?c rdfs:label ?l } } GROUP BY ?c ORDER BY ?c", iri)
    threats = json_rows(run_named(store, get_query("threats-for-defense"), {"defense": iri}))
    return {
        "subclasses": [ref("defenses", c, label) for c, label in subclasses],
        "threats": [ref("threats", r["threat"], r["threatLabel"], degree=r["degree"], weight=r["weight"],
                        kind=r["kind"], sources=_split(r["sources"]), via=r["via"], inherited=r["inherited"])
                    for r in threats],
        "publications": _publications(store, "SELECT ?p (SAMPLE(?t) AS ?title) WHERE { ?s dcterms:source ?p . "
                                             "?p dcterms:title ?t } GROUP BY ?p ORDER BY ?p", iri),
        **literature(store, iri),
    }


def attack_links(store: Store, iri: str) -> dict:
    pubs = _publications(store, "SELECT ?p (SAMPLE(?t) AS ?title) WHERE { ?s dcterms:source ?p . "
                                "?p dcterms:title ?t } GROUP BY ?p ORDER BY ?p", iri)
    return {"publication": pubs[0] if pubs else None, "publications": pubs}


def publication_links(store: Store, iri: str) -> dict:
    attacks = _pairs(store, "SELECT ?a (SAMPLE(?l) AS ?label) WHERE { ?a a mfm:Attack ; dcterms:source ?s "
                            "OPTIONAL { ?a rdfs:label ?l } } GROUP BY ?a ORDER BY ?a", iri)
    threats = _pairs(store, "SELECT ?c (SAMPLE(?l) AS ?label) WHERE { ?c rdfs:subClassOf+ mfm:Threat . "
                            "{ ?c dcterms:source ?s } UNION { ?a a ?c , mfm:Attack ; dcterms:source ?s } "
                            "OPTIONAL { ?c rdfs:label ?l } } GROUP BY ?c ORDER BY ?c", iri)
    defenses = _pairs(store, "SELECT ?c (SAMPLE(?l) AS ?label) WHERE { ?c rdfs:subClassOf+ mfm:Defense ; "
                             "dcterms:source ?s OPTIONAL { ?c rdfs:label ?l } } GROUP BY ?c ORDER BY ?c", iri)
    coverages = _pairs(store, "SELECT ?c ?d ?t WHERE { ?c a mfm:Coverage ; prov:wasDerivedFrom ?s ; "
                              "mfm:coveringDefense ?d ; mfm:coveredThreat ?t } ORDER BY ?c", iri)
    defined = _pairs(store, "SELECT ?a WHERE { ?a a mfm:Attack ; rdfs:isDefinedBy ?s } ORDER BY ?a", iri)
    topics = _pairs(store, "SELECT ?topic ?kind ?confidence ?text ?source WHERE { ?s mfm:linkEvidence ?e . "
                           "?e mfm:topic ?topic OPTIONAL { ?e mfm:linkKind ?kind } "
                           "OPTIONAL { ?e mfm:confidence ?confidence } OPTIONAL { ?e mfm:evidence ?text } "
                           "OPTIONAL { ?e prov:wasDerivedFrom ?source } } ORDER BY ?topic ?kind ?text", iri)
    return {
        "attacks": [ref("attacks", a, label) for a, label in attacks],
        "threats": [ref("threats", c, label) for c, label in threats],
        "defenses": [ref("defenses", c, label) for c, label in defenses],
        "coverages": [{"iri": c, "defense": d, "threat": t} for c, d, t in coverages],
        "definesAttacks": [a for (a,) in defined],
        "topics": [{"topic": topic, "kind": kind, "confidence": conf, "evidence": text, "source": source}
                   for topic, kind, conf, text, source in topics],
    }


def literature(store: Store, iri: str) -> dict:
    """Papers the literature loaders linked to this term (docs/loading.md: mfm:linkEvidence/mfm:topic), newest
    first; the first PAPERS_SHOWN with the count of all."""
    papers = _pairs(store, "SELECT ?p (SAMPLE(?t) AS ?title) (SAMPLE(?i) AS ?issued) (MAX(?c) AS ?confidence) "
                           "WHERE { ?e mfm:topic ?s . ?p mfm:linkEvidence ?e ; dcterms:title ?t . "
                           "OPTIONAL { ?e mfm:confidence ?c } OPTIONAL { ?p dcterms:issued ?i } } "
                           "GROUP BY ?p ORDER BY DESC(STR(?issued)) ?p", iri)
    return {"papers": [ref("publications", p, title, issued=issued, confidence=c)
                       for p, title, issued, c in papers[:PAPERS_SHOWN]],
            "paperCount": len(papers)}


def term_links(store: Store, iri: str, prop: str) -> dict:
    """Threat classes, defense classes and attacks that carry ``prop`` with this term as value."""
    body = ("SELECT ?x (SAMPLE(?l) AS ?label) WHERE { ?x %s ?s ; %s . OPTIONAL { ?x rdfs:label ?l } } "
            "GROUP BY ?x ORDER BY ?x")
    return {
        "threats": [ref("threats", x, label) for x, label in
                    _pairs(store, body % (prop, "rdfs:subClassOf+ mfm:Threat"), iri)],
        "defenses": [ref("defenses", x, label) for x, label in
                     _pairs(store, body % (prop, "rdfs:subClassOf+ mfm:Defense"), iri)],
        "attacks": [ref("attacks", x, label) for x, label in _pairs(store, body % (prop, "a mfm:Attack"), iri)],
        **literature(store, iri),
    }


def _publications(store: Store, body: str, iri: str) -> list[dict]:
    return [ref("publications", p, title) for p, title in _pairs(store, body, iri)]


def _split(text: object) -> list[str]:
    return str(text).split() if text else []


LINKS = {
    "threats": threat_links,
    "defenses": defense_links,
    "attacks": attack_links,
    "publications": publication_links,
    "modalities": lambda store, iri: term_links(store, iri,
                                                "mfm:manipulatesModality|mfm:partiallyManipulatesModality"),
    "flows": lambda store, iri: term_links(store, iri, "mfm:onFlow"),
}


def list_view(kind_name: str, ext: str | None):
    kind, store = KINDS[kind_name], ctx().store
    fmt = choose(ext)
    more, next_url, total = False, None, None
    if kind.paged:
        default = paging.DEFAULT_SIZE if fmt == "json" else int(ctx().config.get("MAX_ROWS") or 10000)
        size = paging.page_size(default)
        offset, expected_total = _position(paging.decode_token())
        iris, total = member_page(store, kind, offset, size)
        if expected_total is not None and total != expected_total:
            raise BadRequest(f"parameter '{paging.NEXT}': the list changed since its first page; start again")
        more = offset + len(iris) < total
        if more:
            next_url = paging.next_url(paging.encode_token(f"{offset + len(iris)}/{total}"))
    else:
        iris = members(store, kind)
    rows = build_rows(store, kind, iris)
    if fmt == "csv":
        resp = respond(rows_csv(columns_of(rows), rows), "csv", ext is None)
    else:
        body = {"kind": kind.name, "count": len(rows), "items": rows, "truncated": more, "next": next_url}
        if total is not None:
            body["total"] = total
        resp = json_response(body, ext is None)
    return paging.add_link(resp, next_url)


def _position(token: int | str | None) -> tuple[int, int | None]:
    """(offset, total when the first page was served) from a list token ``"offset/total"``."""
    if token is None:
        return 0, None
    m = re.fullmatch(r"(\d+)/(\d+)", token) if isinstance(token, str) else None
    if not m:
        raise BadRequest(f"parameter '{paging.NEXT}': not a paging token of this list")
    return int(m.group(1)), int(m.group(2))


def item_view(kind_name: str, id: str, ext: str | None):
    kind, store = KINDS[kind_name], ctx().store
    fmt = choose(ext)
    iri = resolve(store, kind, id)
    if iri is None:
        raise NotFound(f"no {kind.name[:-1] if kind.name != 'modalities' else 'modality'} with id {id!r} "
                       f"(see {url_for(f'resources.{kind.name}_list')})")
    row = build_rows(store, kind, [iri])[0]
    if fmt == "csv":
        return respond(rows_csv(columns_of([row]), [row]), "csv", ext is None)
    return json_response({**row, **LINKS[kind.name](store, iri)}, ext is None)


def _register(kind: Kind) -> None:
    singular = {"threats": "threat class", "defenses": "defense class", "attacks": "SoK attack",
                "modalities": "modality", "flows": "information flow", "publications": "publication"}[kind.name]
    converter = "path" if kind.paged else "string"

    def list_endpoint(ext: str | None = None):
        return list_view(kind.name, ext)

    def item_endpoint(id: str, ext: str | None = None):
        return item_view(kind.name, id, ext)

    list_endpoint.__doc__ = f"Every {singular} with its descriptors" + (" (paged)." if kind.paged else ".")
    item_endpoint.__doc__ = f"One {singular}: its descriptors and links."
    for fn, suffix in ((list_endpoint, "list"), (item_endpoint, "item")):
        fn.__name__ = f"{kind.name}_{suffix}"
    bp.add_url_rule(f"/{kind.name}", view_func=list_endpoint, defaults={"ext": None}, methods=["GET"])
    bp.add_url_rule(f"/{kind.name}.<any(json, csv):ext>", view_func=list_endpoint, methods=["GET"])
    bp.add_url_rule(f"/{kind.name}/<{converter}:id>", view_func=item_endpoint, defaults={"ext": None},
                    methods=["GET"])
    bp.add_url_rule(f"/{kind.name}/<{converter}:id>.<any(json, csv):ext>", view_func=item_endpoint, methods=["GET"])


for _kind in KINDS.values():
    _register(_kind)
