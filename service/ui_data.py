"""The data behind the web UI's pages, as plain JSON-able dicts.

Every page of ``service/ui.py`` is rendered from exactly one of these dicts, and its ``.json`` twin returns that
same dict, so the two cannot disagree. Links to other things are "link" dicts::

    {"id": "MisleadingAdversarial", "iri": "https://w3id.org/mfmkg/ont#MisleadingAdversarial",
     "label": "misleading threat: adversarial", "kind": "threats", "href": "/ui/threats/MisleadingAdversarial"}

``href`` is None for terms the UI has no page for (taxonomy individuals such as mfm:Image link to the filtered
threat list instead, where a filter exists).

Threat classes, defense classes and attacks are indexed once per request (a few hundred IRIs); publications are
not (the literature may hold 100k): they are looked up by IRI, and long paper lists are paged newest first
without sorting the whole literature (``newest_first``).
"""

from __future__ import annotations

import re
from collections import defaultdict

from flask import g, url_for
from rdflib.term import Literal, URIRef

from mfmkg.binding import term_sparql
from mfmkg.errors import NotFound
from mfmkg.named_queries import get_query, local_name, run_named
from mfmkg.namespaces import ID, MFM, PREFIXES, sparql_prefixes
from mfmkg.service.context import ctx
from mfmkg.store.base import SelectResult, to_python

PUB_NS = str(ID) + "pub/"
KINDS = ("threats", "defenses", "attacks", "publications")
SINGULAR = {"threats": "threat", "defenses": "defense", "attacks": "attack", "publications": "publication"}
#: Filters of the threat list (all but ``families`` are parameters of the ``gaps`` named query).
THREAT_FILTERS = ("modality", "flow", "axis", "level", "family")
FAMILY_ORDER = ("MisleadingThreat", "MislearningThreat", "InferringThreat", "AgentActionThreat",
                "AgentInteractionThreat", "AgentMemoryThreat")
#: Descriptor properties shown on threat, defense and attack pages, in this order, with the threat-list filter
#: their values link to (None: no filter).
DESCRIPTORS = (
    ("onFlow", "flow"), ("onAxis", "axis"), ("level", "level"), ("manipulatesModality", "modality"),
    ("partiallyManipulatesModality", "modality"), ("atStage", None), ("hasGoal", None),
    ("adversaryKnowledge", None), ("adversaryCapability", None), ("targetsModelType", None),
)
PARAM_ORDER = ("modality", "family", "flow", "axis")  # order of the filters in heatmap cell links
FEW_DEFENSES = 1  # the dashboard's gap list: threat classes covered by at most this many defenses


# --- plumbing -------------------------------------------------------------------------------------------------

def select(sparql: str, **bindings) -> list[dict]:
    """Rows of a SELECT (prefixes added) as {var: rdflib term}; str bindings are IRIs."""
    terms = {k: (v if isinstance(v, (URIRef, Literal)) else URIRef(v)) for k, v in bindings.items()}
    res = ctx().store.query(sparql_prefixes() + sparql, bindings=terms)
    assert isinstance(res, SelectResult)
    return res.dicts()


def s(term) -> str | None:
    return None if term is None else str(term)


def number(term) -> int | float | None:
    """A numeric literal as int or float (xsd:decimal included), else None."""
    if term is None:
        return None
    value = term.toPython() if isinstance(term, Literal) else term
    try:
        return value if isinstance(value, int) and not isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


def compact(iri: str) -> str:
    """``mfm:Image`` for an IRI in a known namespace, else the IRI (for display: ``id:attack/A01`` too)."""
    for prefix, ns in sorted(PREFIXES.items(), key=lambda kv: -len(kv[1])):
        if iri.startswith(ns) and re.fullmatch(r"[\w./-]*", iri[len(ns):]):
            return f"{prefix}:{iri[len(ns):]}"
    return iri


SMALL_KINDS = ("threats", "defenses", "attacks")


def kind_index() -> dict[str, dict[str, str]]:
    """{kind: {id: iri}} for threat classes, defense classes and attacks, and {"_kind": {iri: kind}}; built once
    per request. Publications are not in it (the literature may hold 100k of them): they are looked up by IRI."""
    if "ui_kinds" not in g:
        rows = select("""
            SELECT DISTINCT ?x ?kind WHERE {
              { ?x rdfs:subClassOf+ mfm:Threat BIND("threats" AS ?kind) }
              UNION { ?x rdfs:subClassOf+ mfm:Defense BIND("defenses" AS ?kind) }
              UNION { ?x a mfm:Attack BIND("attacks" AS ?kind) }
              FILTER(isIRI(?x))
            }""")
        index: dict[str, dict[str, str]] = {k: {} for k in SMALL_KINDS}
        by_iri: dict[str, str] = {}
        for r in sorted(rows, key=lambda r: (str(r["x"]), str(r["kind"]))):
            iri, kind = str(r["x"]), str(r["kind"])
            if iri in by_iri:
                continue
            by_iri[iri] = kind
            index[kind].setdefault(entity_id(kind, iri), iri)
        index["_kind"] = by_iri
        g.ui_kinds = index
    return g.ui_kinds


def kind_of(iri: str) -> str | None:
    """The UI kind of an IRI (threats, defenses, attacks, publications) or None; one small query at most."""
    kind = kind_index()["_kind"].get(iri)
    if kind is None and is_publication(iri):
        kind = "publications"
    return kind


def is_publication(iri: str) -> bool:
    return valid_iri(iri) and bool(select("SELECT ?x WHERE { ?x a mfm:Publication } LIMIT 1", x=iri))


def valid_iri(text: str) -> bool:
    """Whether ``text`` can be bound as an IRI (what a URL gives may not be one)."""
    try:
        term_sparql(URIRef(text))
    except ValueError:
        return False
    return bool(re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", text))


def entity_id(kind: str, iri: str) -> str:
    """The id in UI URLs: the IRI's local name (for our publications, everything after ``.../id/pub/``)."""
    if kind == "publications" and iri.startswith(PUB_NS):
        return iri[len(PUB_NS):]
    return local_name(iri)


def lookup(kind: str, ident: str) -> str:
    """The IRI of the ``kind`` thing with this id, or a 404 problem."""
    if kind == "publications":
        iri = PUB_NS + ident
        if not is_publication(iri):
            iri = None
            if "/" not in ident and "#" not in ident:  # minted outside .../id/pub/ (an extension): by local name
                rows = select("SELECT ?x WHERE { ?x a mfm:Publication "
                              "FILTER(STRENDS(STR(?x), ?slash) || STRENDS(STR(?x), ?hash)) }",
                              slash=Literal("/" + ident), hash=Literal("#" + ident))
                iri = next((str(r["x"]) for r in rows if local_name(str(r["x"])) == ident), None)
    else:
        iri = kind_index()[kind].get(ident)
    if iri is None:
        raise NotFound(f"no {SINGULAR[kind]} with id {ident!r}")
    return iri


def page_url(kind: str, iri: str) -> str:
    return url_for("ui.entity", kind=kind, ident=entity_id(kind, iri))


def link(iri, label=None, filter_name: str | None = None, kind: str | None = None) -> dict:
    """A link dict for an IRI: to its page for threats, defenses and attacks (and publications, when ``kind``
    says so or the IRI is one of ours), to the filtered threat list for filterable taxonomy terms."""
    iri = str(iri)
    kind = kind or kind_index()["_kind"].get(iri) or ("publications" if iri.startswith(PUB_NS) else None)
    if kind:
        href = page_url(kind, iri)
    elif filter_name:
        href = url_for("ui.threats", **{filter_name: local_name(iri)})
    else:
        href = None
    return {"id": entity_id(kind, iri) if kind else local_name(iri), "iri": iri,
            "label": s(label) or compact(iri), "kind": kind, "href": href}


def values(var: str, iris: list[str]) -> str:
    """An inline ``VALUES ?var { <iri> ... }`` for IRIs read from the store (serialised by mfmkg.binding)."""
    return f"VALUES ?{var} {{ {' '.join(term_sparql(URIRef(i)) for i in iris)} }}"


def newest_first(where: str, limit: int, offset: int = 0, **bindings) -> tuple[int, list[str]]:
    """(total, IRIs) of one page of the distinct ``?p`` matched by ``where``, newest ``dcterms:issued`` first.

    Sorting 100k papers in one query takes seconds, so the papers are counted per issued date first (a few dozen
    groups) and only the dates the page falls on are fetched, each sorted by IRI: a few hundred milliseconds.
    """
    groups = select(f"""SELECT ?i (COUNT(DISTINCT ?p) AS ?n) WHERE {{ {where} OPTIONAL {{ ?p dcterms:issued ?i }} }}
                        GROUP BY ?i""", **bindings)
    dated = sorted((r for r in groups if r.get("i") is not None), key=lambda r: str(r["i"]), reverse=True)
    groups = dated + [r for r in groups if r.get("i") is None]
    total = sum(int(r["n"].toPython()) for r in groups)
    out: list[str] = []
    start = 0
    for r in groups:
        n = int(r["n"].toPython())
        lo, hi = max(offset, start), min(offset + limit, start + n)
        if lo < hi:
            if r.get("i") is None:
                rows = select(f"""SELECT DISTINCT ?p WHERE {{ {where} FILTER NOT EXISTS {{ ?p dcterms:issued ?any }} }}
                                  ORDER BY ?p LIMIT {hi - lo} OFFSET {lo - start}""", **bindings)
            else:
                rows = select(f"""SELECT DISTINCT ?p WHERE {{ {where} ?p dcterms:issued ?i }}
                                  ORDER BY ?p LIMIT {hi - lo} OFFSET {lo - start}""", i=r["i"], **bindings)
            out += [str(x["p"]) for x in rows]
        start += n
        if start >= offset + limit:
            break
    return total, out


def graph_name(iri: str | None) -> str | None:
    """A short name for a named graph: ``ontology``, ``inferred``, ``source/arxiv``..."""
    if iri is None:
        return None
    base = "https://w3id.org/mfmkg/graph/"
    return iri[len(base):] if iri.startswith(base) else iri


def _uniq(items: list[dict], key: str = "iri") -> list[dict]:
    seen, out = set(), []
    for it in items:
        if it[key] not in seen:
            seen.add(it[key])
            out.append(it)
    return out


# --- the things every page shows ------------------------------------------------------------------------------

def basics(iri: str) -> dict:
    """Label, definition, notes, keywords, sources and the graphs stating the thing (its provenance)."""
    rows = select("""
        SELECT ?p ?o WHERE {
          ?x ?p ?o
          VALUES ?p { rdfs:label dcterms:title skos:definition skos:note skos:editorialNote skos:altLabel
                      skos:hiddenLabel rdfs:comment dcterms:source rdfs:isDefinedBy }
        }""", x=iri)
    by: dict[str, list] = defaultdict(list)
    for r in rows:
        by[local_name(str(r["p"]))].append(r["o"])
    graphs = {str(r["g"]) for r in select("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?x ?p ?o } }", x=iri)}
    srcs = _labelled([o for o in by["source"] if not isinstance(o, Literal)])
    defined_by = _labelled([o for o in by["isDefinedBy"] if not isinstance(o, Literal)])
    label = next((str(o) for o in by["label"] + by["title"]), None) or compact(iri)
    return {
        "iri": iri, "compact": compact(iri), "label": label,
        "definition": next((str(o) for o in by["definition"] + by["comment"]), None),
        "notes": sorted(str(o) for o in by["note"]),
        "editorialNotes": sorted(str(o) for o in by["editorialNote"]),
        "altLabels": sorted(str(o) for o in by["altLabel"]),
        "keywords": sorted(str(o) for o in by["hiddenLabel"]),
        "sources": srcs, "definedBy": defined_by,
        "graphs": sorted(graph_name(x) for x in graphs),
    }


def _labelled(iris: list) -> list[dict]:
    """Link dicts, with labels (rdfs:label, else dcterms:title), for a list of IRIs."""
    out = []
    for iri in dict.fromkeys(str(i) for i in iris):
        rows = select("SELECT ?l WHERE { { ?x rdfs:label ?l } UNION { ?x dcterms:title ?l } } LIMIT 1", x=iri)
        out.append(link(iri, rows[0]["l"] if rows else None))
    return out


def descriptors(iri: str) -> list[dict]:
    """The descriptor properties of a class or attack: [{property, label, values: [link]}], in DESCRIPTORS order."""
    rows = select("""
        SELECT ?p ?plabel ?o ?olabel WHERE {
          ?x ?p ?o .
          VALUES ?p { mfm:onFlow mfm:onAxis mfm:level mfm:manipulatesModality mfm:partiallyManipulatesModality
                      mfm:atStage mfm:hasGoal mfm:adversaryKnowledge mfm:adversaryCapability mfm:targetsModelType }
          OPTIONAL { ?p rdfs:label ?plabel }
          OPTIONAL { ?o rdfs:label ?olabel }
          OPTIONAL { ?o mfm:flowId ?fid }
        } ORDER BY ?p ?fid ?olabel""", x=iri)
    by: dict[str, dict] = {}
    for r in rows:
        name = local_name(str(r["p"]))
        entry = by.setdefault(name, {"property": name, "label": s(r.get("plabel")) or name, "terms": []})
        entry["terms"].append(link(r["o"], r.get("olabel"), dict(DESCRIPTORS).get(name)))
    return [by[name] for name, _ in DESCRIPTORS if name in by]


def hierarchy(iri: str) -> dict:
    """Direct superclasses and subclasses, as links."""
    parents = select("""SELECT ?c ?l WHERE { ?x rdfs:subClassOf ?c FILTER(isIRI(?c) && ?c != ?x)
                        OPTIONAL { ?c rdfs:label ?l } } ORDER BY ?l""", x=iri)
    children = select("""SELECT ?c ?l WHERE { ?c rdfs:subClassOf ?x FILTER(isIRI(?c) && ?c != ?x)
                         OPTIONAL { ?c rdfs:label ?l } } ORDER BY ?l""", x=iri)
    return {"parents": _uniq([link(r["c"], r.get("l")) for r in parents]),
            "children": _uniq([link(r["c"], r.get("l")) for r in children])}


COVERAGE_COLUMNS = """
  OPTIONAL { ?coverage mfm:degree ?degree }
  OPTIONAL { ?coverage mfm:linkKind ?linkKind }
  OPTIONAL { ?coverage mfm:rule ?rule }
  OPTIONAL { ?coverage skos:note ?note }
  OPTIONAL { ?coverage prov:wasDerivedFrom ?paper OPTIONAL { ?paper dcterms:title ?paperTitle } }
"""


def _coverage_rows(rows: list[dict], other: str, other_label: str) -> list[dict]:
    """One dict per coverage link (rows repeat per paper and graph), sorted by the other end's label."""
    links: dict[str, dict] = {}
    for r in rows:
        cov = str(r["coverage"])
        entry = links.get(cov)
        if entry is None:
            kind = local_name(str(r["linkKind"])).lower() if r.get("linkKind") else "asserted"
            entry = links[cov] = {
                "coverage": cov,
                other: link(r[other], r.get(other_label)),
                "degree": local_name(str(r["degree"])).replace("Coverage", "").lower() if r.get("degree") else None,
                "linkKind": kind, "rule": s(r.get("rule")), "note": s(r.get("note")),
                "derivedFrom": [], "graphs": [],
            }
            if "via" in r:
                entry["via"] = link(r["via"], r.get("viaLabel"))
        if r.get("paper") is not None:
            entry["derivedFrom"] = _uniq(entry["derivedFrom"] + [link(r["paper"], r.get("paperTitle"))])
        gname = graph_name(s(r.get("g")))
        if gname and gname not in entry["graphs"]:
            entry["graphs"].append(gname)
    return sorted(links.values(), key=lambda e: (e[other]["label"].lower(), e.get("via", {}).get("label", "")))


# --- entity pages ---------------------------------------------------------------------------------------------

def threat_page(iri: str) -> dict:
    data = {"kind": "threat", "id": entity_id("threats", iri), **basics(iri), **hierarchy(iri),
            "descriptors": descriptors(iri)}
    rows = select(f"""
        SELECT ?coverage ?defense ?defenseLabel ?via ?viaLabel ?degree ?linkKind ?rule ?note ?paper ?paperTitle ?g
        WHERE {{
          ?x rdfs:subClassOf* ?via .
          GRAPH ?g {{ ?coverage a mfm:Coverage }}
          ?coverage mfm:coveredThreat ?via ; mfm:coveringDefense ?defense .
          OPTIONAL {{ ?defense rdfs:label ?defenseLabel }}
          OPTIONAL {{ ?via rdfs:label ?viaLabel }}
          {COVERAGE_COLUMNS}
        }}""", x=iri)
    data["defenses"] = _coverage_rows(rows, "defense", "defenseLabel")
    for d in data["defenses"]:
        d["inherited"] = d["via"]["iri"] != iri
    attacks = select("""
        SELECT ?attack ?label ?row ?cls ?clsLabel ?paper ?paperTitle WHERE {
          ?cls rdfs:subClassOf* ?x .
          ?attack a mfm:Attack , ?cls .
          OPTIONAL { ?attack rdfs:label ?label }
          OPTIONAL { ?attack mfm:sokRow ?row }
          OPTIONAL { ?cls rdfs:label ?clsLabel }
          OPTIONAL { ?attack dcterms:source ?paper OPTIONAL { ?paper dcterms:title ?paperTitle } }
        } ORDER BY ?row ?label""", x=iri)
    data["attacks"] = _attack_rows(attacks)
    data["literature"] = literature(iri)
    return data


LITERATURE_SHOWN = 50


def literature(iri: str) -> dict:
    """Papers the literature loaders linked to this class or a subclass (``mfm:linkEvidence/mfm:topic``), newest
    first: the first LITERATURE_SHOWN with each link's evidence (kind, confidence, text, source), and the total."""
    where = """?sub rdfs:subClassOf* ?x . ?e mfm:topic ?sub . ?paper mfm:linkEvidence ?e ."""
    total, iris = newest_first(where.replace("?paper", "?p"), LITERATURE_SHOWN, x=iri)
    rows = {}
    for r in _pub_details(iris):
        rows[r["iri"]] = {"paper": {k: r[k] for k in ("id", "iri", "label", "kind", "href")},
                          "issued": r["issued"], "links": []}
    if rows:
        for r in select(f"""
            SELECT ?paper ?e ?sub ?subLabel ?kind ?confidence ?text ?source ?sourceLabel WHERE {{
              {values("paper", list(rows))}
              {where}
              OPTIONAL {{ ?sub rdfs:label ?subLabel }}
              {EVIDENCE_COLUMNS}
            }} ORDER BY ?paper ?subLabel ?text""", x=iri):
            rows[str(r["paper"])]["links"].append({"topic": link(r["sub"], r.get("subLabel")), **_evidence(r)})
    return {"total": total, "shown": len(rows), "papers": list(rows.values())}


EVIDENCE_COLUMNS = """
  OPTIONAL { ?e mfm:linkKind ?kind }
  OPTIONAL { ?e mfm:confidence ?confidence }
  OPTIONAL { ?e mfm:evidence ?text }
  OPTIONAL { ?e prov:wasDerivedFrom ?source OPTIONAL { ?source rdfs:label ?sourceLabel } }
"""


def _evidence(r: dict) -> dict:
    return {"linkKind": local_name(str(r["kind"])).lower() if r.get("kind") is not None else None,
            "confidence": number(r.get("confidence")), "evidence": s(r.get("text")),
            "source": link(r["source"], r.get("sourceLabel")) if r.get("source") is not None else None}


def _attack_rows(rows: list[dict]) -> list[dict]:
    out: dict[str, dict] = {}
    for r in rows:
        a = str(r["attack"])
        if a not in out:
            out[a] = {"attack": link(a, r.get("label")), "sokRow": to_python(r.get("row")),
                      "threat": link(r["cls"], r.get("clsLabel")) if r.get("cls") is not None else None,
                      "papers": []}
        if r.get("paper") is not None:
            out[a]["papers"] = _uniq(out[a]["papers"] + [link(r["paper"], r.get("paperTitle"))])
    return list(out.values())


def defense_page(iri: str) -> dict:
    data = {"kind": "defense", "id": entity_id("defenses", iri), **basics(iri), **hierarchy(iri),
            "descriptors": descriptors(iri)}
    cost = select("SELECT ?c WHERE { ?x mfm:cost ?c }", x=iri)
    data["cost"] = number(cost[0]["c"]) if cost else None
    rows = select(f"""
        SELECT ?coverage ?threat ?threatLabel ?degree ?linkKind ?rule ?note ?paper ?paperTitle ?g WHERE {{
          GRAPH ?g {{ ?coverage a mfm:Coverage }}
          ?coverage mfm:coveringDefense ?x ; mfm:coveredThreat ?threat .
          OPTIONAL {{ ?threat rdfs:label ?threatLabel }}
          {COVERAGE_COLUMNS}
        }}""", x=iri)
    data["covers"] = _coverage_rows(rows, "threat", "threatLabel")
    data["literature"] = literature(iri)
    return data


def attack_page(iri: str) -> dict:
    data = {"kind": "attack", "id": entity_id("attacks", iri), **basics(iri), "descriptors": descriptors(iri)}
    rows = select("""
        SELECT ?row ?cls ?clsLabel ?family ?familyLabel WHERE {
          OPTIONAL { ?x mfm:sokRow ?row }
          OPTIONAL { ?x a ?cls . ?cls rdfs:subClassOf+ mfm:Threat OPTIONAL { ?cls rdfs:label ?clsLabel } }
          OPTIONAL { ?x mfm:family ?family OPTIONAL { ?family rdfs:label ?familyLabel } }
        }""", x=iri)
    r = rows[0] if rows else {}
    data["sokRow"] = to_python(r.get("row"))
    data["threats"] = _uniq([link(x["cls"], x.get("clsLabel")) for x in rows if x.get("cls") is not None])
    data["family"] = link(r["family"], r.get("familyLabel")) if r.get("family") is not None else None
    # the defenses that cover the attack's threat class (directly or through a superclass)
    cov = select(f"""
        SELECT ?coverage ?defense ?defenseLabel ?via ?viaLabel ?degree ?linkKind ?rule ?note ?paper ?paperTitle ?g
        WHERE {{
          ?x a ?cls . ?cls rdfs:subClassOf* ?via . ?via rdfs:subClassOf+ mfm:Threat .
          GRAPH ?g {{ ?coverage a mfm:Coverage }}
          ?coverage mfm:coveredThreat ?via ; mfm:coveringDefense ?defense .
          OPTIONAL {{ ?defense rdfs:label ?defenseLabel }}
          OPTIONAL {{ ?via rdfs:label ?viaLabel }}
          {COVERAGE_COLUMNS}
        }}""", x=iri)
    data["defenses"] = _coverage_rows(cov, "defense", "defenseLabel")
    return data


def publication_page(iri: str) -> dict:
    data = {"kind": "publication", "id": entity_id("publications", iri), **basics(iri)}
    rows = select("""
        SELECT ?p ?o WHERE { ?x ?p ?o
          VALUES ?p { dcterms:issued mfm:venue dcterms:identifier bibo:doi mfm:url mfm:uncertainIdentification
                      dcterms:abstract mfm:sourceLocation } }
    """, x=iri)
    meta = {local_name(str(r["p"])): to_python(r["o"]) for r in rows}
    data.update({"issued": s(meta.get("issued")), "venue": meta.get("venue"), "identifier": meta.get("identifier"),
                 "doi": meta.get("doi"), "url": s(meta.get("url")), "abstract": meta.get("abstract"),
                 "sourceLocation": meta.get("sourceLocation"),
                 "uncertain": bool(meta.get("uncertainIdentification"))})
    authors = select("""
        SELECT ?n ?name WHERE { ?x bibo:authorList ?list . ?list ?n ?name
          FILTER(STRSTARTS(STR(?n), "http://www.w3.org/1999/02/22-rdf-syntax-ns#_")) }""", x=iri)
    data["authors"] = [str(r["name"]) for r in sorted(authors, key=lambda r: int(str(r["n"]).rsplit("_", 1)[1]))]
    data["keywordsGiven"] = sorted({str(r["k"]) for r in select("SELECT ?k WHERE { ?x dcterms:subject ?k }", x=iri)})
    topics = select(f"""
        SELECT ?e ?topic ?topicLabel ?isModality ?kind ?confidence ?text ?source ?sourceLabel WHERE {{
          ?x mfm:linkEvidence ?e . ?e mfm:topic ?topic .
          OPTIONAL {{ ?topic rdfs:label ?topicLabel }}
          BIND(EXISTS {{ ?topic a mfm:Modality }} AS ?isModality)
          {EVIDENCE_COLUMNS}
        }} ORDER BY ?topicLabel ?text""", x=iri)
    data["topics"] = [{"topic": link(r["topic"], r.get("topicLabel"),
                                     "modality" if to_python(r.get("isModality")) else None), **_evidence(r)}
                      for r in topics]
    for key in ("sources",):  # a publication's own dcterms:source is not interesting next to the lists below
        data[key] = [x for x in data[key] if x["iri"] != iri]
    attacks = select("""
        SELECT ?attack ?label ?row ?cls ?clsLabel WHERE {
          ?attack a mfm:Attack ; dcterms:source ?x .
          OPTIONAL { ?attack rdfs:label ?label }
          OPTIONAL { ?attack mfm:sokRow ?row }
          OPTIONAL { ?attack a ?cls . ?cls rdfs:subClassOf+ mfm:Threat OPTIONAL { ?cls rdfs:label ?clsLabel } }
        } ORDER BY ?row ?label""", x=iri)
    data["attacks"] = _attack_rows(attacks)
    for a in data["attacks"]:
        a.pop("papers")
    cov = select(f"""
        SELECT ?coverage ?defense ?defenseLabel ?via ?viaLabel ?degree ?linkKind ?rule ?note ?paper ?paperTitle ?g
        WHERE {{
          ?coverage prov:wasDerivedFrom ?x .
          GRAPH ?g {{ ?coverage a mfm:Coverage }}
          ?coverage mfm:coveredThreat ?via ; mfm:coveringDefense ?defense .
          OPTIONAL {{ ?defense rdfs:label ?defenseLabel }}
          OPTIONAL {{ ?via rdfs:label ?viaLabel }}
          {COVERAGE_COLUMNS}
        }}""", x=iri)
    data["coverage"] = _coverage_rows(cov, "defense", "defenseLabel")
    # classes (threats, defenses, taxonomy terms) that cite this paper, and classes this paper is linked to
    cited = select("""
        SELECT DISTINCT ?c ?l WHERE { ?c dcterms:source ?x ; a owl:Class . OPTIONAL { ?c rdfs:label ?l } }
        ORDER BY ?l""", x=iri)
    data["citedBy"] = [link(r["c"], r.get("l")) for r in cited]
    defined = select("SELECT (COUNT(DISTINCT ?d) AS ?n) WHERE { ?d rdfs:isDefinedBy ?x }", x=iri)
    data["defines"] = int(defined[0]["n"].toPython()) if defined else 0
    return data


PAGES = {"threats": threat_page, "defenses": defense_page, "attacks": attack_page, "publications": publication_page}


# --- lists ----------------------------------------------------------------------------------------------------

def threat_list(args: dict) -> dict:
    """The threat list: the ``gaps`` named query with the filters in ``args``; families only with families=1."""
    filters = {k: args[k] for k in THREAT_FILTERS if args.get(k)}
    inferred = _flag(args.get("inferred"))
    families = _flag(args.get("families"))
    query_args = dict(filters, inferred="true" if inferred else "false")
    result = run_named(ctx().store, get_query("gaps"), query_args)
    family_iris = set(family_labels())
    rows = []
    for r in result.dicts():
        iri = str(r["threat"])
        parent = str(r["family"]) if r.get("family") is not None else None
        is_family = iri in family_iris
        if is_family and not families:
            continue
        rows.append({**link(r["threat"], r.get("label")),
                     "family": None if is_family or parent in (None, iri, str(MFM.Threat)) else link(parent),
                     "isFamily": is_family,
                     "defenses": int(r["defenses"].toPython()), "attacks": int(r["attacks"].toPython()),
                     "evidence": int(r["evidence"].toPython()) if r.get("evidence") is not None else None})
    _fill_family_labels(rows)
    return {"filters": filters, "inferred": inferred, "families": families, "count": len(rows),
            "uncovered": sum(1 for r in rows if r["defenses"] == 0), "rows": rows}


def family_labels() -> dict[str, str]:
    """The six threat families (the classes directly below mfm:Threat), with their labels."""
    if "ui_families" not in g:
        g.ui_families = {str(r["x"]): s(r.get("l")) or compact(str(r["x"])) for r in select(
            "SELECT ?x (SAMPLE(?lab) AS ?l) WHERE { ?x rdfs:subClassOf mfm:Threat "
            "OPTIONAL { ?x rdfs:label ?lab } } GROUP BY ?x")}
    return g.ui_families


def _fill_family_labels(rows: list[dict]) -> None:
    labels = family_labels()
    for r in rows:
        if r["family"] and r["family"]["iri"] in labels:
            r["family"]["label"] = labels[r["family"]["iri"]]


def _flag(value) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


def filter_options() -> dict:
    """For each threat-list filter, the allowed terms as [{value (local name), label}] in a sensible order."""
    query = get_query("gaps")
    out = {}
    for p in query.params:
        if p.name not in THREAT_FILTERS:
            continue
        if p.enum_terms is not None:
            iris = p.enum_terms
        else:
            iris = [str(r["m"]) for r in select(
                "SELECT DISTINCT ?m WHERE { ?m a/rdfs:subClassOf* ?c FILTER(isIRI(?m)) }", c=p.term_class)]
        opts = []
        for iri in iris:
            rows = select("SELECT ?l ?fid WHERE { OPTIONAL { ?x rdfs:label ?l } OPTIONAL { ?x mfm:flowId ?fid } }",
                          x=iri)
            r = rows[0] if rows else {}
            label = s(r.get("l")) or local_name(iri)
            if r.get("fid") is not None:
                label = f"{r['fid']} {label}"
            opts.append({"value": local_name(iri), "label": label, "sort": s(r.get("fid")) or ""})
        if p.enum_terms is None:
            opts.sort(key=lambda o: (o["sort"], o["label"]))
        for o in opts:
            o.pop("sort")
        out[p.name] = {"description": p.description, "options": opts}
    return out


def defense_list() -> dict:
    rows = select("""
        SELECT ?d (SAMPLE(?l) AS ?label) (SAMPLE(?lev) AS ?level) (SAMPLE(?levl) AS ?levelLabel)
               (SAMPLE(?c) AS ?cost) (COUNT(DISTINCT ?t) AS ?covers)
               (GROUP_CONCAT(DISTINCT ?al; SEPARATOR=", ") AS ?axes)
        WHERE {
          ?d rdfs:subClassOf+ mfm:Defense .
          FILTER NOT EXISTS { VALUES ?d { mfm:ModelLevelDefense mfm:SystemLevelDefense } }
          OPTIONAL { ?d rdfs:label ?l }
          OPTIONAL { ?d mfm:level ?lev OPTIONAL { ?lev rdfs:label ?levl } }
          OPTIONAL { ?d mfm:cost ?c }
          OPTIONAL { ?d mfm:onAxis/rdfs:label ?al }
          OPTIONAL { ?cov mfm:coveringDefense ?d ; mfm:coveredThreat ?t }
        } GROUP BY ?d ORDER BY ?levelLabel ?label""")
    items = [{**link(r["d"], r.get("label")), "level": s(r.get("levelLabel")),
              "axes": s(r.get("axes")) or "", "cost": float(r["cost"].toPython()) if r.get("cost") else None,
              "covers": int(r["covers"].toPython())} for r in rows]
    return {"count": len(items), "rows": items}


def attack_list(args: dict) -> dict:
    threat = args.get("threat")
    threat_iri = lookup("threats", threat) if threat else None
    rows = select("""
        SELECT ?a ?label ?row ?cls ?clsLabel ?paper ?paperTitle WHERE {
          ?a a mfm:Attack .
          OPTIONAL { ?a rdfs:label ?label }
          OPTIONAL { ?a mfm:sokRow ?row }
          OPTIONAL { ?a a ?cls . ?cls rdfs:subClassOf+ mfm:Threat OPTIONAL { ?cls rdfs:label ?clsLabel } }
          OPTIONAL { ?a dcterms:source ?paper OPTIONAL { ?paper dcterms:title ?paperTitle } }
          FILTER(!BOUND(?t) || EXISTS { ?a a/rdfs:subClassOf* ?t })
        } ORDER BY ?row ?label""", **({"t": threat_iri} if threat_iri else {}))
    items = []
    for r in _attack_rows([{**r, "attack": r["a"]} for r in rows]):
        items.append({**r["attack"], "sokRow": r["sokRow"], "threat": r["threat"], "papers": r["papers"]})
    return {"filters": {"threat": threat} if threat else {}, "count": len(items), "rows": items}


PUB_PAGE = 200


def publication_list(args: dict) -> dict:
    """One page of publications, newest first, optionally those whose title or identifier contains ``q``."""
    text = (args.get("q") or "").strip()
    try:
        page = max(1, int(args.get("page") or 1))
    except ValueError:
        page = 1
    offset = (page - 1) * PUB_PAGE
    if text:
        match = """?p a mfm:Publication .
                   OPTIONAL { ?p dcterms:title ?t } OPTIONAL { ?p dcterms:identifier ?id }
                   FILTER(CONTAINS(LCASE(STR(?t)), ?q) || CONTAINS(LCASE(STR(?id)), ?q))"""
        found = select(f"""SELECT ?p (SAMPLE(?i) AS ?issued) WHERE {{ {match} OPTIONAL {{ ?p dcterms:issued ?i }} }}
                           GROUP BY ?p ORDER BY DESC(STR(?issued)) ?p""", q=Literal(text.lower()))
        total, iris = len(found), [str(r["p"]) for r in found[offset:offset + PUB_PAGE]]
    else:
        total, iris = newest_first("?p a mfm:Publication .", PUB_PAGE, offset)
    items = _pub_details(iris)
    return {"filters": {"q": text} if text else {}, "page": page, "pageSize": PUB_PAGE, "total": total,
            "count": len(items), "rows": items}


def _pub_details(iris: list[str]) -> list[dict]:
    """Title, date, venue, identifier, uncertainty and SoK attack count of the given publications, in order."""
    if not iris:
        return []
    rows = {str(r["p"]): r for r in select(f"""
        SELECT ?p (SAMPLE(?t) AS ?title) (SAMPLE(?i) AS ?issued) (SAMPLE(?v) AS ?venue)
               (SAMPLE(?id) AS ?identifier) (SAMPLE(?u) AS ?uncertain) (COUNT(DISTINCT ?a) AS ?attacks)
        WHERE {{
          {values("p", iris)}
          OPTIONAL {{ ?p dcterms:title ?t }}
          OPTIONAL {{ ?p dcterms:issued ?i }}
          OPTIONAL {{ ?p mfm:venue ?v }}
          OPTIONAL {{ ?p dcterms:identifier ?id }}
          OPTIONAL {{ ?p mfm:uncertainIdentification ?u }}
          OPTIONAL {{ ?a a mfm:Attack ; dcterms:source ?p }}
        }} GROUP BY ?p""")}
    out = []
    for iri in iris:
        r = rows.get(iri, {})
        out.append({**link(iri, r.get("title"), kind="publications"), "issued": s(r.get("issued")),
                    "venue": s(r.get("venue")), "identifier": s(r.get("identifier")),
                    "uncertain": bool(to_python(r.get("uncertain"))),
                    "attacks": int(r["attacks"].toPython()) if r.get("attacks") is not None else 0})
    return out


# --- dashboard ------------------------------------------------------------------------------------------------

def matrix_modality_family(inferred: bool) -> dict:
    rows = run_named(ctx().store, get_query("coverage-modality-family"),
                     {"inferred": "true" if inferred else "false"}).values()
    order = {name: i for i, name in enumerate(FAMILY_ORDER)}
    fams = sorted({(r["family"], r["familyLabel"]) for r in rows},
                  key=lambda f: (order.get(local_name(f[0]), 99), f[1]))
    mods = sorted({(r["modality"], r["modalityLabel"]) for r in rows},
                  key=lambda m: (["Text", "Image", "Audio", "Video"] + [local_name(m[0])]).index(local_name(m[0])))
    return _matrix(rows, "family", fams, "modality", mods, inferred,
                   title="Coverage by threat family and modality",
                   row_title="threat family", col_title="modality",
                   description="For each threat family (rows) and modality (columns): how many of the family's "
                               "threat classes that manipulate the modality are covered by at least one defense.")


def matrix_flow_axis(inferred: bool) -> dict:
    rows = run_named(ctx().store, get_query("coverage-flow-axis"),
                     {"inferred": "true" if inferred else "false"}).values()
    flows = sorted({(r["flow"], f"{r['flowId']} {r['flowLabel']}") for r in rows}, key=lambda f: f[1])
    axes = sorted({(r["axis"], r["axisLabel"]) for r in rows},
                  key=lambda a: (["Signal", "Noise", "Bandwidth"] + [local_name(a[0])]).index(local_name(a[0])))
    return _matrix(rows, "flow", flows, "axis", axes, inferred,
                   title="Coverage by information flow and channel axis",
                   row_title="information flow", col_title="channel axis",
                   description="For each information flow (rows) and channel axis (columns): how many threat "
                               "classes on the flow and axis are covered by at least one defense.")


def _matrix(rows, row_key, row_terms, col_key, col_terms, inferred, **text) -> dict:
    """A matrix dict: rows/cols as (id, label) and one cell per pair with counts and the threat-list link."""
    cells = []
    for r in rows:
        params = {key: local_name(r[key]) for key in sorted((row_key, col_key), key=PARAM_ORDER.index)}
        if inferred:
            params["inferred"] = "true"
        cells.append({"row": local_name(r[row_key]), "col": local_name(r[col_key]),
                      "threats": r["threats"], "covered": r["covered"], "uncovered": r["uncovered"],
                      "attacks": r.get("attacks"), "href": url_for("ui.threats", **params)})
    return {**text, "rowParam": row_key, "colParam": col_key,
            "rows": [{"id": local_name(i), "iri": i, "label": lbl} for i, lbl in row_terms],
            "cols": [{"id": local_name(i), "iri": i, "label": lbl} for i, lbl in col_terms],
            "cells": cells}


def dashboard(args: dict) -> dict:
    inferred = _flag(args.get("inferred"))
    listing = threat_list({"inferred": "true" if inferred else "false"})
    gaps = [r for r in listing["rows"] if r["defenses"] <= FEW_DEFENSES]
    counts = select("""
        SELECT (COUNT(DISTINCT ?a) AS ?attacks) (COUNT(DISTINCT ?d) AS ?defenses) (COUNT(DISTINCT ?p) AS ?pubs)
        WHERE { { ?a a mfm:Attack } UNION { ?d rdfs:subClassOf+ mfm:Defense } UNION { ?p a mfm:Publication } }""")
    c = counts[0] if counts else {}
    return {
        "inferred": inferred, "fewDefenses": FEW_DEFENSES,
        "summary": {"threatClasses": listing["count"], "uncovered": listing["uncovered"],
                    "attacks": int(c["attacks"].toPython()) if c else 0,
                    "defenses": int(c["defenses"].toPython()) if c else 0,
                    "publications": int(c["pubs"].toPython()) if c else 0},
        "gaps": gaps,
        "heatmaps": {"modality-family": matrix_modality_family(inferred), "flow-axis": matrix_flow_axis(inferred)},
    }
