"""The gaps query's evidence count (rewritten for speed) against a plain Python count over the raw links.

Evidence of a threat class = distinct papers linked to it or to one of its subclasses: papers the literature
loaders linked (``<paper> mfm:linkEvidence <ev> . <ev> mfm:topic <class>``) and papers cited by its attacks
(``<attack> a <class> ; dcterms:source <paper>``). The generated links include the cases a wrong rewrite would
count twice: one paper linked to the same class by two evidence nodes, to two classes of one family, to a family
and its subclass, and a loaded paper that is also an attack's source.
"""

from __future__ import annotations

import random
from collections import defaultdict

from mfmkg.named_queries import get_query, run_named
from mfmkg.namespaces import source_graph

MFM = "https://w3id.org/mfmkg/ont#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
PUB = "https://w3id.org/mfmkg/id/pub/t-evidence-test-"
EV = "https://w3id.org/mfmkg/id/evidence/evidence-test/"


def superclasses(store) -> dict[str, set[str]]:
    """Each class with all its superclasses and itself."""
    parents = defaultdict(set)
    for c, p in store.query(f"SELECT ?c ?p {{ ?c <{RDFS}subClassOf> ?p }}").rows:
        parents[str(c)].add(str(p))
    closure = {}

    def up(c: str, seen: set[str]) -> set[str]:
        if c in closure:
            return closure[c]
        out = {c}
        for p in parents.get(c, ()):
            if p not in seen:
                out |= up(p, seen | {p})
        closure[c] = out
        return out

    for c in list(parents):
        up(c, {c})
    return closure


def expected_evidence(store, distinct: bool = True) -> dict[str, int]:
    """Papers per threat class; ``distinct=False`` counts (paper, link) pairs, what a wrong rewrite would do."""
    ups = superclasses(store)
    threats = {c for c, above in ups.items() if MFM + "Threat" in above and c != MFM + "Threat"}
    links = store.query(f"SELECT ?paper ?cls {{ ?paper <{MFM}linkEvidence> ?e . ?e <{MFM}topic> ?cls }}").rows
    links += store.query(f"SELECT ?paper ?cls {{ ?a a <{MFM}Attack> , ?cls ; "
                         "<http://purl.org/dc/terms/source> ?paper }").rows
    papers, pairs = defaultdict(set), defaultdict(int)
    for paper, cls in links:
        for t in ups.get(str(cls), {str(cls)}) & threats:
            papers[t].add(str(paper))
            pairs[t] += 1
    return {t: len(papers[t]) if distinct else pairs[t] for t in threats}


def write_links(store) -> list[str]:
    """Generated publications and evidence nodes in the loaders' shape; returns the threat classes used."""
    ups = superclasses(store)
    threats = sorted(c for c, above in ups.items() if MFM + "Threat" in above and c != MFM + "Threat")
    families = sorted(c for c in threats if MFM + "Threat" in {p for p in ups[c] if p != c} and
                      len(ups[c] & set(threats)) == 1)
    leaves = [t for t in threats if t not in families]
    cited = [str(p) for (p,) in store.query(f"SELECT DISTINCT ?p {{ ?a a <{MFM}Attack> ; "
                                            "<http://purl.org/dc/terms/source> ?p }").rows]
    rnd = random.Random(5)
    lines = []

    def link(paper: str, topic: str, field: str) -> None:
        ev = f"{EV}{topic.rsplit('#', 1)[1]}-{field}"
        lines.append(f"<{paper}> <{MFM}linkEvidence> <{ev}> .\n")
        lines.append(f"<{ev}> <{MFM}topic> <{topic}> .\n")
        lines.append(f"<{ev}> <{MFM}linkKind> <{MFM}{'Asserted' if field == 'tag' else 'Inferred'}> .\n")

    for i in range(400):
        paper = PUB + str(i)
        lines.append(f"<{paper}> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{MFM}Publication> .\n")
        kind = i % 5
        leaf = rnd.choice(leaves)
        if kind == 0:    # the same class through two evidence nodes (title and abstract)
            link(paper, leaf, "title")
            link(paper, leaf, "abstract")
        elif kind == 1:  # two classes, possibly of one family
            link(paper, leaf, "title")
            link(paper, rnd.choice(leaves), "tag")
        elif kind == 2:  # a family and one of its classes
            link(paper, leaf, "title")
            link(paper, next(f for f in families if f in ups[leaf]), "tag")
        elif kind == 3:  # a family only
            link(paper, rnd.choice(families), "abstract")
        # kind 4: no link at all
    for paper in cited[:10]:  # papers attacks cite, loaded as literature too
        link(paper, rnd.choice(leaves), "title")
    store.load("".join(lines), "application/n-triples", source_graph("evidence-test"))
    return threats


def test_evidence_counts_match_a_plain_count(store):
    threats = write_links(store)
    rows = run_named(store, get_query("gaps"), {}).values()
    got = {r["threat"]: r["evidence"] for r in rows}
    assert set(got) == set(threats)
    assert got == expected_evidence(store)
    naive = expected_evidence(store, distinct=False)
    assert 0 < sum(got.values()) < sum(naive.values())  # papers linked twice are there, and counted once


def test_filters_keep_the_same_counts(store):
    write_links(store)
    all_rows = {r["threat"]: r["evidence"] for r in run_named(store, get_query("gaps"), {}).values()}
    for args in ({"modality": "Image"}, {"family": "MisleadingThreat"}, {"inferred": "true"}):
        rows = run_named(store, get_query("gaps"), args).values()
        assert rows and all(all_rows[r["threat"]] == r["evidence"] for r in rows), args
